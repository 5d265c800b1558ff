"""The aiohttp application factory: ``create_http_app(settings, deps)``."""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
from aiohttp import web

from tritontube import metrics
from tritontube.deps import Deps
from tritontube.http import (
    analytics,
    health,
    keys,
    multipart,
    openapi,
    playback,
    requestlog,
    search,
    security,
    spa,
    uploads,
    videos,
    watch,
)
from tritontube.http.auth import USER_KEY, bearer_user
from tritontube.http.media_tokens import MEDIA_ROUTE, MediaSigner
from tritontube.http.problems import problem_middleware
from tritontube.http.publisher import EventPublisher
from tritontube.http.ratelimit import RATE_LIMITER, RateLimiter, rate_limit_middleware
from tritontube.http.worker_client import WorkerClient
from tritontube.indexer.factory import build_search_index
from tritontube.indexer.port import SearchUnavailable
from tritontube.settings import Settings

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 256 * 1024
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith("/v1/"):
        request[USER_KEY] = bearer_user(request, request.app[keys.SETTINGS].auth)
    return await handler(request)


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        route = request.match_info.route.resource
        name = route.canonical if route is not None else "unmatched"
        metrics.HTTP_REQUEST_SECONDS.labels(request.method, name, str(status)).observe(
            time.perf_counter() - started
        )


async def _clients(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.SETTINGS]
    deps = app[keys.DEPS]
    session = aiohttp.ClientSession()
    publisher = EventPublisher(
        settings.kafka.bootstrap_servers,
        deps.codec,
        timeout=settings.kafka.publish_timeout_seconds,
        cooldown=settings.kafka.publish_cooldown_seconds,
    )
    store = deps.object_store
    search = build_search_index(settings, read_only=True)
    app[keys.CLIENT_SESSION] = session
    app[keys.PUBLISHER] = publisher
    app[keys.OBJECT_STORE] = store
    app[keys.SEARCH] = search
    app[keys.WORKER] = WorkerClient(session, settings, deps.codec)
    try:
        await search.ensure()
    except (SearchUnavailable, OSError, ValueError) as exc:
        # The API still starts; /readyz names search as failing until it is back.
        log.warning("search backend not available at start: %s", exc)
    try:
        yield
    finally:
        await publisher.close()
        await search.close()
        await session.close()


async def _frozen_heap(app: web.Application) -> AsyncIterator[None]:
    """Keep the startup heap (modules, clients, the OpenAPI spec: ~130k objects) out of the
    cyclic collector while serving: a full collection over it stalls the loop for ~100 ms on
    a small box, which was the recommendations p99. Requests' garbage is still collected."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def create_http_app(settings: Settings, deps: Deps) -> web.Application:
    app = web.Application(
        middlewares=[
            requestlog.request_context_middleware,
            metrics_middleware,
            problem_middleware,
            security.cors_middleware,
            auth_middleware,
            rate_limit_middleware,
        ],
        client_max_size=MAX_BODY_BYTES,
    )
    app[keys.SETTINGS] = settings
    app[keys.DEPS] = deps
    app[RATE_LIMITER] = RateLimiter(settings.rate_limit)
    security.install(app, settings.http.cors_origins)
    app.on_response_prepare.append(requestlog.add_request_id)
    app.cleanup_ctx.append(_clients)
    app.cleanup_ctx.append(_frozen_heap)  # last: the clients opened above are frozen too
    app.router.add_get("/openapi.json", openapi.openapi_json)
    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/readyz", health.readyz)
    app.router.add_get("/metrics", health.metrics_view)
    app.router.add_post("/v1/videos:uploadURL", uploads.create_upload_url)
    app.router.add_post("/v1/videos:completeUpload", uploads.complete_upload)
    app.router.add_post("/v1/videos/{video_id}/uploadParts", multipart.sign_parts)
    app.router.add_get("/v1/videos/{video_id}/uploadParts", multipart.list_parts)
    app.router.add_get("/v1/videos/{video_id}/transcodeStatus", videos.transcode_status)
    app.router.add_get("/v1/videos:search", search.search_videos)
    app.router.add_get("/v1/videos:recommendations", search.recommendations)
    app.router.add_get("/v1/videos:trending", analytics.trending)
    app.router.add_get("/v1/videos/{video_id}/stats", analytics.video_stats)
    app.router.add_get("/v1/users/me/history", analytics.my_history)
    app.router.add_post("/v1/videos/{video_id}/watchEvents", watch.post_watch_events)
    app[playback.MEDIA_SIGNER] = MediaSigner.from_settings(settings)
    app.router.add_get("/v1/videos", playback.list_videos)
    app.router.add_get("/v1/videos/{video_id}", playback.video_metadata)
    app.router.add_get("/v1/videos/{video_id}/playbackInfo", playback.playback_info)
    app.router.add_get(MEDIA_ROUTE + "/{token}/{video_id}/{path:.+}", playback.media)
    spa.register(app, settings)
    return app
