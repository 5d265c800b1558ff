"""The REST side of the rate limits (``tritontube.ratelimit``): which route spends which scope.

``upload``: ``POST /v1/videos:uploadURL``, ``POST /v1/videos:completeUpload`` and the
management calls (``PATCH``/``DELETE /v1/videos/{video_id}``, ``POST
/v1/videos/{video_id}:retryTranscode``); ``watch``: ``POST /v1/videos/{video_id}/watchEvents``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from tritontube.http.auth import USER_KEY
from tritontube.ratelimit import Rate, RateLimiter, TokenBuckets

__all__ = ["RATE_LIMITER", "SCOPED_ROUTES", "Rate", "RateLimiter", "TokenBuckets"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# (method, canonical route) -> scope
SCOPED_ROUTES: dict[tuple[str, str], str] = {
    ("POST", "/v1/videos:uploadURL"): "upload",
    ("POST", "/v1/videos:completeUpload"): "upload",
    ("PATCH", "/v1/videos/{video_id}"): "upload",
    ("DELETE", "/v1/videos/{video_id}"): "upload",
    ("POST", "/v1/videos/{video_id}:retryTranscode"): "upload",
    ("POST", "/v1/videos/{video_id}/watchEvents"): "watch",
}

RATE_LIMITER = web.AppKey("rate_limiter", RateLimiter)


@web.middleware
async def rate_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Runs after authentication (it needs the user) and before the handler."""
    resource = request.match_info.route.resource
    if resource is not None:
        scope = SCOPED_ROUTES.get((request.method, resource.canonical))
        user = request.get(USER_KEY)
        if scope is not None and isinstance(user, str):
            request.app[RATE_LIMITER].check(scope, user)
    return await handler(request)
