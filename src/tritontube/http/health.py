"""Liveness, readiness and metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tritontube.http import keys
from tritontube.http.publisher import BrokerUnavailableError
from tritontube.http.worker_client import WorkerUnavailableError
from tritontube.indexer.port import SearchUnavailable
from tritontube.storage.port import ObjectStoreError

CHECK_TIMEOUT = 3.0
_EXPECTED = (
    BrokerUnavailableError,
    WorkerUnavailableError,
    ObjectStoreError,
    SearchUnavailable,
    TimeoutError,
    OSError,
)


async def healthz(request: web.Request) -> web.Response:
    """The process is alive (no dependency is consulted)."""
    return web.json_response({"status": "ok"})


async def _check(name: str, probe: Callable[[], Awaitable[None]]) -> tuple[str, str | None]:
    try:
        await asyncio.wait_for(probe(), CHECK_TIMEOUT)
    except _EXPECTED as exc:
        return name, f"{type(exc).__name__}: {exc}"[:300]
    return name, None


async def readyz(request: web.Request) -> web.Response:
    """200 when broker, object store, search and worker all answer; 503 naming those that don't."""
    app = request.app
    results = await asyncio.gather(
        _check("broker", app[keys.PUBLISHER].ping),
        _check("objectStore", app[keys.OBJECT_STORE].ping),
        _check("search", app[keys.SEARCH].ping),
        _check("worker", app[keys.WORKER].ping),
    )
    checks = {name: ("ok" if err is None else err) for name, err in results}
    failing = [name for name, err in results if err is not None]
    body = {"ready": not failing, "checks": checks, "failing": failing}
    if failing:
        return web.json_response(body, status=503, headers={"Retry-After": "2"})
    return web.json_response(body)


async def metrics_view(request: web.Request) -> web.Response:
    resp = web.Response(body=generate_latest())
    resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return resp
