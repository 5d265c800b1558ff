"""Bearer tokens: JWT (HS256) naming the user, minted by ``tritontube token create``."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import jwt
from aiohttp import web

from tritontube.http.problems import ProblemError
from tritontube.settings import AuthSettings

USER_KEY = web.RequestKey("user", str)
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
    """The user a valid token names; ProblemError 401 otherwise."""
    try:
        claims = jwt.decode(
            token,
            auth.secret.get_secret_value(),
            algorithms=[_ALGORITHM],
            issuer=auth.issuer,
            options={"require": ["sub", "exp", "iat", "iss"]},
        )
    except jwt.ExpiredSignatureError:
        raise _unauthorized("token expired") from None
    except jwt.InvalidTokenError:
        raise _unauthorized("invalid token") from None
    user = claims.get("sub")
    if not isinstance(user, str) or not user:
        raise _unauthorized("token names no user")
    return user


def _unauthorized(detail: str) -> ProblemError:
    return ProblemError(
        401,
        "Unauthorized",
        detail,
        code="UNAUTHORIZED",
        headers={"WWW-Authenticate": 'Bearer realm="tritontube"'},
    )


def bearer_user(request: web.Request, auth: AuthSettings) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("missing bearer token")
    return verify_token(auth, token.strip())


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def current_user(request: web.Request) -> str:
    user = request.get(USER_KEY)
    if not isinstance(user, str):
        raise _unauthorized("missing bearer token")
    return user
