"""Bearer tokens on the REST API: the ``Authorization`` header, checked by ``tritontube.tokens``."""

from __future__ import annotations

from aiohttp import web

from tritontube import tokens
from tritontube.settings import AuthSettings
from tritontube.tokens import mint_token, verify_token

USER_KEY = web.RequestKey("user", str)

__all__ = ["USER_KEY", "bearer_user", "current_user", "mint_token", "verify_token"]


def bearer_user(request: web.Request, auth: AuthSettings) -> str:
    return tokens.bearer_user(request.headers.get("Authorization", ""), auth)


def current_user(request: web.Request) -> str:
    user = request.get(USER_KEY)
    if not isinstance(user, str):
        raise tokens.unauthorized("missing bearer token")
    return user
