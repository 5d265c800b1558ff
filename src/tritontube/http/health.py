"""Liveness, readiness and metrics."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tritontube.http.keys import services
from tritontube.services import readiness


async def healthz(request: web.Request) -> web.Response:
    """The process is alive (no dependency is consulted)."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """200 when broker, object store, search and worker all answer; 503 naming those that don't."""
    results = await readiness(services(request))
    checks = {name: ("ok" if err is None else err) for name, err in results.items()}
    failing = [name for name, err in results.items() if err is not None]
    body = {"ready": not failing, "checks": checks, "failing": failing}
    if failing:
        return web.json_response(body, status=503, headers={"Retry-After": "2"})
    return web.json_response(body)


async def metrics_view(request: web.Request) -> web.Response:
    resp = web.Response(body=generate_latest())
    resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return resp
