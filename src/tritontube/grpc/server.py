"""The gRPC server (``tritontube grpc``): ``tritontube.v1.Web`` on ``grpc.aio``, with the
standard health checking service (``grpc.health.v1.Health``) and server reflection
(``grpc.reflection.v1alpha.ServerReflection``), so generic tools (grpcurl, grpc_health_probe,
Postman) list, describe and call it without the proto file.

Health follows readiness: ``SERVING`` (for the server, ``""``, and for ``tritontube.v1.Web``)
while broker, object store, search and workers all answer, as the REST API's ``/readyz``;
``NOT_SERVING`` otherwise, re-checked every ``grpc.health_interval_seconds``. On SIGTERM or
SIGINT health turns ``NOT_SERVING`` and calls in flight get ``grpc.grace_seconds`` to finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection

from tritontube.deps import Deps
from tritontube.grpc.interceptors import SERVICE, ApiInterceptor
from tritontube.grpc.servicer import WebServicer
from tritontube.services import Services, open_services, readiness
from tritontube.settings import Settings
from tritontube.v1 import web_pb2_grpc

log = logging.getLogger(__name__)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name


def build_server(services: Services) -> tuple[grpc.aio.Server, health_aio.HealthServicer, int]:
    """The server with every service added and its port bound (not started): the server,
    its health servicer and the bound port."""
    settings = services.settings
    server = grpc.aio.server(
        interceptors=[ApiInterceptor(settings.auth, services.limiter)],
        # Without this, gRPC binds with SO_REUSEPORT: a second server on a taken port would
        # start and share it silently instead of failing.
        options=[("grpc.so_reuseport", 0)],
    )
    web_pb2_grpc.add_WebServicer_to_server(WebServicer(services), server)
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    reflection.enable_server_reflection((SERVICE, HEALTH_SERVICE, reflection.SERVICE_NAME), server)
    port = server.add_insecure_port(f"{settings.grpc.host}:{settings.grpc.port}")
    if port == 0:
        raise OSError(f"cannot listen on {settings.grpc.host}:{settings.grpc.port}")
    return server, health, port


async def _set_health(health: health_aio.HealthServicer, status: int) -> None:
    for name in ("", SERVICE):
        await health.set(name, status)


async def watch_readiness(
    services: Services, health: health_aio.HealthServicer, interval: float
) -> None:
    """Keep the health status equal to readiness, logging each change."""
    last: int | None = None
    while True:
        problems = {k: v for k, v in (await readiness(services)).items() if v is not None}
        status = NOT_SERVING if problems else SERVING
        if status != last:
            await _set_health(health, status)
            log.info(
                "health: %s",
                "SERVING" if status == SERVING else f"NOT_SERVING ({', '.join(problems)})",
            )
            last = status
        await asyncio.sleep(interval)


async def serve(settings: Settings, deps: Deps, stopping: asyncio.Event) -> None:
    """Serve until ``stopping`` is set, then drain within the grace period."""
    async with open_services(settings, deps) as services:
        server, health, port = build_server(services)
        await _set_health(health, NOT_SERVING)
        await server.start()
        log.info("gRPC API listening on %s:%d", settings.grpc.host, port)
        watcher = asyncio.create_task(
            watch_readiness(services, health, settings.grpc.health_interval_seconds)
        )
        try:
            await stopping.wait()
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            await _set_health(health, NOT_SERVING)
            await server.stop(settings.grpc.grace_seconds)


def run(settings: Settings, deps: Deps) -> None:
    """Run :func:`serve` in a new event loop until SIGINT/SIGTERM."""

    async def main() -> None:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stopping.set)
        await serve(settings, deps, stopping)

    asyncio.run(main())
