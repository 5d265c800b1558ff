"""The single-page app: ``/`` (index.html) and ``/static/`` (app.js, app.css, vendored dash.js).

No authentication: the page holds no data; it calls ``/v1/*`` with the bearer token the user
pastes in. ``index.html`` is rendered once at start-up with content hashes in the asset URLs, so
assets can be cached for long and a deploy still reaches every browser. The Content-Security-Policy
allows scripts, styles and media from this origin only, plus the object store's origin for the
direct upload (``connect-src``) and thumbnails signed by the store (``img-src``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web

from tritontube.http.problems import ProblemError
from tritontube.settings import Settings

STATIC_DIR = Path(__file__).resolve().parent / "static"
_ASSETS = ("app.js", "app.css", "vendor/dash.all.min.js")
INDEX_HTML = web.AppKey("spa_index_html", str)
CSP_HEADER = web.AppKey("spa_csp", str)
STATIC_FILES = web.AppKey("spa_static_files", dict)


def _origin(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def content_security_policy(settings: Settings) -> str:
    store = _origin(settings.s3.public_endpoint_url or settings.s3.endpoint_url)
    extra = f" {store}" if store else ""
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src 'self' data:{extra}",
            "media-src 'self' blob:",
            f"connect-src 'self'{extra}",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
            "form-action 'self'",
        )
    )


def render_index(static_dir: Path = STATIC_DIR) -> str:
    """index.html with ``?v=<content hash>`` on each asset URL."""
    html = (static_dir / "index.html").read_text(encoding="utf-8")
    for asset in _ASSETS:
        digest = hashlib.sha256((static_dir / asset).read_bytes()).hexdigest()[:12]
        html = html.replace(f'/static/{asset}"', f'/static/{asset}?v={digest}"')
    return html


async def index(request: web.Request) -> web.Response:
    return web.Response(
        text=request.app[INDEX_HTML],
        content_type="text/html",
        headers={
            "Cache-Control": "no-cache",
            "Content-Security-Policy": request.app[CSP_HEADER],
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
        },
    )


def static_files(static_dir: Path = STATIC_DIR) -> dict[str, Path]:
    """Every file under ``static_dir`` by its URL path (``vendor/dash.all.min.js``)."""
    return {
        path.relative_to(static_dir).as_posix(): path
        for path in sorted(static_dir.rglob("*"))
        if path.is_file()
    }


async def static(request: web.Request) -> web.FileResponse:
    """GET /static/{path}: one of the files listed at start-up, nothing else.

    The path is looked up in that list, never handed to the file system, so no request path
    (too long for the file system, traversing upwards, naming a directory) reaches ``stat``;
    every miss is the same 404 problem.
    """
    path = request.app[STATIC_FILES].get(request.match_info["path"])
    if path is None:
        raise ProblemError(404, "Not Found", "no such static file", code="NOT_FOUND")
    return web.FileResponse(path)


def register(app: web.Application, settings: Settings) -> None:
    """Serve the SPA (reads index.html and hashes the assets once, at app construction)."""
    app[INDEX_HTML] = render_index()
    app[CSP_HEADER] = content_security_policy(settings)
    app[STATIC_FILES] = static_files()
    app.router.add_get("/", index)
    app.router.add_get("/static/{path:(?s:.+)}", static, name="static")
