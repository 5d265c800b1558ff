"""Browser-facing safety: CORS for configured origins only, and security headers on everything.

CORS: ``settings.http.cors_origins`` lists the origins (scheme://host[:port], exact match)
allowed to call the API from a browser; empty means same-origin only. Requests from other
origins get no ``Access-Control-Allow-*`` header (the browser then blocks the response) and
their preflights are refused with 403. Credentials are bearer tokens in ``Authorization``,
never cookies, so ``Access-Control-Allow-Credentials`` is never sent. The exception is
``/media/``: signed media URLs are their own authorisation, so any origin may read them
(``Access-Control-Allow-Origin: *``) and preflight them, as on a CDN.

Header injection: every value this service puts in a header is either a constant, a value it
generated itself (etags, Retry-After seconds) or an origin copied from the allow-list, never
raw request input; aiohttp refuses CR/LF in incoming header values (400) and in outgoing ones.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from tritontube.http.media_tokens import MEDIA_HEADERS, MEDIA_ROUTE
from tritontube.http.problems import problem_response

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ALLOWED_METHODS = "GET, POST, OPTIONS"
ALLOWED_HEADERS = "Authorization, Content-Type, If-Match, If-None-Match, Range"
EXPOSED_HEADERS = "ETag, Retry-After, Content-Range, Location, X-Request-Id"
PREFLIGHT_MAX_AGE = "600"

# Paths the SPA serves as HTML/JS: their CSP is the SPA's business (it talks to the object
# store's origin for uploads); /media/ has its own fixed headers (``MEDIA_HEADERS``: any origin,
# sandboxed); everything else is JSON and gets the strictest policy.
_SPA_PREFIXES = ("/static/",)
_MEDIA_PREFIX = MEDIA_ROUTE + "/"
_API_CSP = "default-src 'none'; frame-ancestors 'none'"
MEDIA_PREFLIGHT = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
    "Access-Control-Allow-Headers": "Range, If-None-Match",
    "Access-Control-Max-Age": PREFLIGHT_MAX_AGE,
}

ALLOWED_ORIGINS = web.AppKey("cors_origins", frozenset)


def _is_spa(path: str) -> bool:
    return path == "/" or path.startswith(_SPA_PREFIXES)


def _is_preflight(request: web.Request) -> bool:
    return (
        request.method == "OPTIONS"
        and "Origin" in request.headers
        and "Access-Control-Request-Method" in request.headers
    )


@web.middleware
async def cors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer preflights; the actual CORS headers are added in :func:`add_security_headers`."""
    if not _is_preflight(request):
        return await handler(request)
    if request.path.startswith(_MEDIA_PREFIX):
        return web.Response(status=204, headers=MEDIA_PREFLIGHT)
    origin = request.headers["Origin"]
    if origin not in request.app[ALLOWED_ORIGINS]:
        return problem_response(
            403,
            "Forbidden",
            "cross-origin requests from this origin are not allowed",
            code="CORS_ORIGIN",
            instance=request.path,
        )
    return web.Response(
        status=204,
        headers={
            "Access-Control-Allow-Methods": ALLOWED_METHODS,
            "Access-Control-Allow-Headers": ALLOWED_HEADERS,
            "Access-Control-Max-Age": PREFLIGHT_MAX_AGE,
        },
    )


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: runs for every response, errors and static files included."""
    headers = response.headers
    if request.path.startswith(_MEDIA_PREFIX):
        headers.update(MEDIA_HEADERS)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("Cross-Origin-Resource-Policy", "same-site")
    if not _is_spa(request.path):
        headers.setdefault("Content-Security-Policy", _API_CSP)
    origin = request.headers.get("Origin")
    if "Access-Control-Allow-Origin" in headers:
        pass  # /media/: any origin, already said
    elif origin is not None and origin in request.app[ALLOWED_ORIGINS]:
        headers["Access-Control-Allow-Origin"] = origin
        headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
    if request.app[ALLOWED_ORIGINS]:
        vary = headers.get("Vary")
        if vary is None:
            headers["Vary"] = "Origin"
        elif "origin" not in vary.lower():
            headers["Vary"] = f"{vary}, Origin"


def install(app: web.Application, origins: tuple[str, ...]) -> None:
    """Register the allow-list and the response hook (the middleware is listed in app.py)."""
    app[ALLOWED_ORIGINS] = frozenset(o.rstrip("/") for o in origins)
    app.on_response_prepare.append(add_security_headers)
