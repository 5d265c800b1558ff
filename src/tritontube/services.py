"""What the use cases talk to, built once per API process (REST or gRPC) from settings.

:class:`Services` is the one argument every use case takes besides its input: the typed
client of the workers, the event publisher, the object store, the search index (read-only),
the media URL signer, the rate limiter, the clock and the settings. :func:`open_services`
builds them and closes them again; ``http/app.py`` runs it in the aiohttp app's
``cleanup_ctx`` and ``grpc/server.py`` around the gRPC server, so both transports share
exactly the same collaborators and rules.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp

from tritontube.deps import Clock, Deps
from tritontube.http.media_tokens import MediaSigner
from tritontube.http.publisher import BrokerUnavailableError, EventPublisher
from tritontube.http.worker_client import WorkerClient, WorkerUnavailableError
from tritontube.indexer.factory import build_search_index
from tritontube.indexer.port import SearchIndex, SearchUnavailable
from tritontube.ratelimit import RateLimiter
from tritontube.settings import Settings
from tritontube.storage.port import ObjectStore, ObjectStoreError

log = logging.getLogger(__name__)

CHECK_TIMEOUT = 3.0
_EXPECTED = (
    BrokerUnavailableError,
    WorkerUnavailableError,
    ObjectStoreError,
    SearchUnavailable,
    TimeoutError,
    OSError,
)


@dataclass(frozen=True)
class Services:
    """The collaborators of one API process (see the module docstring)."""

    settings: Settings
    clock: Clock
    workers: WorkerClient
    publisher: EventPublisher
    store: ObjectStore
    search: SearchIndex
    signer: MediaSigner
    limiter: RateLimiter


@asynccontextmanager
async def open_services(settings: Settings, deps: Deps) -> AsyncIterator[Services]:
    """Build the services (no connection is required to succeed: readiness reports what is
    down), yield them, and close what they opened."""
    session = aiohttp.ClientSession()
    publisher = EventPublisher(
        settings.kafka.bootstrap_servers,
        deps.codec,
        timeout=settings.kafka.publish_timeout_seconds,
        cooldown=settings.kafka.publish_cooldown_seconds,
    )
    search = build_search_index(settings, read_only=True)
    services = Services(
        settings=settings,
        clock=deps.clock,
        workers=WorkerClient(session, settings, deps.codec),
        publisher=publisher,
        store=deps.object_store,
        search=search,
        signer=MediaSigner.from_settings(settings),
        limiter=RateLimiter(settings.rate_limit),
    )
    try:
        await search.ensure()
    except (SearchUnavailable, OSError, ValueError) as exc:
        # The API still starts; readiness names search as failing until it is back.
        log.warning("search backend not available at start: %s", exc)
    try:
        yield services
    finally:
        await publisher.close()
        await search.close()
        await session.close()


async def _check(name: str, probe: Callable[[], Awaitable[None]]) -> tuple[str, str | None]:
    try:
        await asyncio.wait_for(probe(), CHECK_TIMEOUT)
    except _EXPECTED as exc:
        return name, f"{type(exc).__name__}: {exc}"[:300]
    return name, None


async def readiness(services: Services) -> dict[str, str | None]:
    """Each dependency's problem (None when it answers): broker, object store, search, worker."""
    results = await asyncio.gather(
        _check("broker", services.publisher.ping),
        _check("objectStore", services.store.ping),
        _check("search", services.search.ping),
        _check("worker", services.workers.ping),
    )
    return dict(results)
