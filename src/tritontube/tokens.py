"""Bearer tokens: JWT (HS256) naming the user, minted by ``tritontube token create``.

Transport-neutral: the REST middleware (``http/auth.py``) and the gRPC interceptor
(``grpc/interceptors.py``) both verify with :func:`verify_token`.
"""

from __future__ import annotations

import time

import jwt

from tritontube.problems import Problem
from tritontube.settings import AuthSettings

_ALGORITHM = "HS256"


def mint_token(auth: AuthSettings, user: str, ttl_seconds: int | None = None) -> str:
    if not user or len(user) > 64 or not all(c.isalnum() or c in "-_.@" for c in user):
        raise ValueError("user must be 1-64 characters of letters, digits, - _ . @")
    now = int(time.time())
    claims = {
        "sub": user,
        "iss": auth.issuer,
        "iat": now,
        "exp": now + (ttl_seconds or auth.token_ttl_seconds),
    }
    return jwt.encode(claims, auth.secret.get_secret_value(), algorithm=_ALGORITHM)


def verify_token(auth: AuthSettings, token: str) -> str:
    """The user a valid token names; a 401 :class:`Problem` otherwise."""
    try:
        claims = jwt.decode(
            token,
            auth.secret.get_secret_value(),
            algorithms=[_ALGORITHM],
            issuer=auth.issuer,
            options={"require": ["sub", "exp", "iat", "iss"]},
        )
    except jwt.ExpiredSignatureError:
        raise unauthorized("token expired") from None
    except jwt.InvalidTokenError:
        raise unauthorized("invalid token") from None
    user = claims.get("sub")
    if not isinstance(user, str) or not user:
        raise unauthorized("token names no user")
    return user


def bearer_user(header: str, auth: AuthSettings) -> str:
    """The user of an ``Authorization`` value (``Bearer <token>``); a 401 otherwise."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("missing bearer token")
    return verify_token(auth, token.strip())


def unauthorized(detail: str) -> Problem:
    return Problem(
        401,
        "Unauthorized",
        detail,
        code="UNAUTHORIZED",
        headers={"WWW-Authenticate": 'Bearer realm="tritontube"'},
    )
