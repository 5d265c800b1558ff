"""The worker's query views: interactive queries over the tables, for the API (and peers) only.

Every read gives the same answer whichever worker is asked and however many workers share
the partitions (docs/decisions.md, "Reads with N workers"):

* **by key** (a video's state, its analytics, a user's history, an owner's videos): the key's
  partition has one active owner; a worker that is not it forwards the request there (Kafka
  Streams' "interactive queries" with a binary-safe proxy: Faust's own ``table_route`` reads
  the answer as text). The owner of each partition comes from the partition assignor, which
  every member learns at each rebalance.
* **over all partitions** (trending): the worker asked fans out to every member with a
  deadline, each member answers for the partitions it owns as an active, and the union must
  cover every partition or the answer is a 503 — never "this worker's share".

Answers are Avro single-object records (``domain.queries``, the tables' value types) in the
body, ``application/vnd.tritontube.avro``; 404 has an empty body; 503 (rebalancing,
recovering, a peer unreachable) carries ``Retry-After``. Every view but ``/healthz``,
``/readyz`` and ``/metrics`` requires the stack's internal token
(``Authorization: Bearer ...``, ``settings.internal_token()``): the API and the workers hold
it, nobody else, so a worker port bound beyond loopback by mistake leaks nothing, and an API
pointed at someone else's worker is refused rather than served their tables.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import aiohttp
import faust
from faust.tables.manager import TableManager
from faust.web import Request, Response, View
from multidict import MultiMapping
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from yarl import URL

from tritontube.agents.tables import TypedTable
from tritontube.agents.topology import (
    OWNER_VIDEOS_TABLE,
    TRENDING_TABLE,
    VIDEO_ANALYTICS_TABLE,
    WATCH_HISTORY_TABLE,
    Topology,
)
from tritontube.deps import Deps
from tritontube.domain import analytics as an
from tritontube.domain import owners
from tritontube.domain.events import VideoState
from tritontube.domain.queries import (
    OwnerVideosPage,
    TopicAssignment,
    TrendingAnswer,
    VideoStateBatch,
    WorkerCluster,
    WorkerMember,
)
from tritontube.settings import Settings

log = logging.getLogger(__name__)

AVRO_CONTENT_TYPE = "application/vnd.tritontube.avro"
FORWARDED = "forwarded"  # query flag: answer locally, never forward again
MAX_BATCH = 100
MAX_PAGE_SIZE = 100
MAX_TRENDING = 200
PEER_TIMEOUT_SECONDS = 3.0
RETRY_AFTER = "2"


def is_ready(app: faust.App) -> bool:
    """Not rebalancing and every table recovered: reads now see the full state. A worker may
    own no partition at all (more workers than a sticky assignment hands out); it is ready
    all the same and forwards every read to the owners."""
    return (
        not app.rebalancing
        and cast(TableManager, app.tables).recovery.completed.is_set()
        and not app.in_recovery
    )


class Unavailable(Exception):
    """The answer cannot be complete now (rebalancing, a peer down): a 503."""


@dataclass(frozen=True)
class QueryTables:
    """The tables the views read, typed."""

    states: TypedTable[VideoState]
    analytics: TypedTable[an.VideoAnalytics]
    trending: TypedTable[an.PartitionTrending]
    history: TypedTable[an.UserHistory]
    owners: TypedTable[owners.OwnerVideos]

    @classmethod
    def of(cls, topology: Topology, deps: Deps) -> QueryTables:
        codec = deps.codec
        t = topology.tables
        return cls(
            states=TypedTable(topology.video_state, codec, VideoState),
            analytics=TypedTable(t[VIDEO_ANALYTICS_TABLE], codec, an.VideoAnalytics),
            trending=TypedTable(t[TRENDING_TABLE], codec, an.PartitionTrending),
            history=TypedTable(t[WATCH_HISTORY_TABLE], codec, an.UserHistory),
            owners=TypedTable(t[OWNER_VIDEOS_TABLE], codec, owners.OwnerVideos),
        )


class Queries:
    """Routing, fan-out and the local answers; the views below are thin over it."""

    def __init__(self, app: faust.App, tables: QueryTables, deps: Deps, settings: Settings):
        self.app = app
        self.tables = tables
        self.deps = deps
        self.settings = settings
        self.policy = an.AnalyticsPolicy(
            trending_window_seconds=settings.analytics.trending_window_seconds,
            trending_step_seconds=settings.analytics.trending_step_seconds,
        )
        self._auth = f"Bearer {settings.internal_token().get_secret_value()}"

    # -- who owns what ------------------------------------------------------------------
    def owner_of(self, table: TypedTable[Any], key: str) -> URL | None:
        """The URL of the key's active owner; None when it is this worker."""
        try:
            url: URL = self.app.router.key_store(table.name, key.encode())
        except KeyError:
            raise Unavailable(f"no owner of {table.name}/{key} yet (rebalancing)") from None
        if _ident(url) == _ident(self.app.conf.canonical_url):
            return None
        return url

    def cluster(self) -> WorkerCluster:
        tables: Mapping[str, Mapping[str, list[int]]] = self.app.router.tables_metadata()
        topics: Mapping[str, Mapping[str, list[int]]] = self.app.router.external_topics_metadata()
        members = tuple(
            WorkerMember(
                url=url,
                partitions=tuple(sorted({p for ps in tables.get(url, {}).values() for p in ps})),
                topics=tuple(
                    TopicAssignment(topic, tuple(sorted(ps)))
                    for topic, ps in sorted({**tables.get(url, {}), **topics.get(url, {})}.items())
                ),
            )
            for url in sorted({*tables, *topics})
        )
        return WorkerCluster(
            app_id=self.settings.worker.app_id,
            partitions=self.settings.kafka.partitions,
            members=members,
        )

    # -- talking to peers -----------------------------------------------------------------
    async def fetch(self, url: URL, path: str, params: Iterable[tuple[str, str]]) -> bytes | None:
        """A peer's answer body; None for 404; Unavailable for anything but 200/404."""
        target = url.with_path(path).with_query([*params, (FORWARDED, "1")])
        session: aiohttp.ClientSession = self.app.http_client
        try:
            async with session.get(
                target,
                headers={"Authorization": self._auth},
                timeout=aiohttp.ClientTimeout(total=PEER_TIMEOUT_SECONDS),
            ) as resp:
                if resp.status == 404:
                    return None
                if resp.status != 200:
                    raise Unavailable(f"{url} answered {resp.status}")
                return await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Unavailable(f"{url} unreachable: {exc!r}") from exc

    # -- video states ---------------------------------------------------------------------
    async def states(self, video_ids: Iterable[str], *, forwarded: bool) -> list[VideoState]:
        """The states of ``video_ids`` that exist, in that order, from wherever they live."""
        ids = list(dict.fromkeys(video_ids))
        remote: dict[URL, list[str]] = {}
        found: dict[str, VideoState] = {}
        for video_id in ids:
            url = self.owner_of(self.tables.states, video_id)
            if url is None:
                state = self.tables.states.get(video_id)
                if state is not None:
                    found[video_id] = state
            elif forwarded:
                raise Unavailable(f"{video_id} moved while forwarded (rebalancing)")
            else:
                remote.setdefault(url, []).append(video_id)
        answers = await asyncio.gather(
            *(
                self.fetch(url, "/video-states", [("id", v) for v in group])
                for url, group in remote.items()
            )
        )
        for body in answers:
            if body is not None:
                batch = self.deps.codec.decode_as(body, VideoStateBatch)
                found.update((s.video_id, s) for s in batch.videos)
        return [found[v] for v in ids if v in found]

    async def owner_page(self, owner: str, size: int, token: str | None) -> OwnerVideosPage:
        after = owners.decode_cursor(token) if token else None
        items, cursor = owners.page(self.tables.owners.get(owner), size, after)
        videos = await self.states((v.video_id for v in items), forwarded=False)
        return OwnerVideosPage(
            videos=tuple(videos),
            next_page_token=None if cursor is None else owners.encode_cursor(cursor),
        )

    # -- trending -------------------------------------------------------------------------
    def local_trending(self, limit: int) -> TrendingAnswer:
        """Trending videos of the partitions this worker owns as an active, scored now."""
        now_ms = an.to_ms(self.deps.clock.now())
        partitions = sorted(self.tables.trending.active_partitions(self.app))
        scored: list[an.TrendingEntry] = []
        for partition in partitions:
            top = self.tables.trending.get(f"p{partition}")
            for video_id, _ in top.top if top is not None else ():
                stats = self.tables.analytics.get(video_id)
                if stats is not None:
                    score = an.trending_score(stats, now_ms, self.policy)
                    if score > 0:
                        scored.append(an.TrendingEntry(video_id, score))
        return TrendingAnswer(partitions=tuple(partitions), entries=an.merge_tops([scored], limit))

    async def trending(self, limit: int) -> TrendingAnswer:
        """Every partition's trending videos, merged: fan out to every member."""
        members = list(self.app.router.table_metadata(TRENDING_TABLE))
        me = _ident(self.app.conf.canonical_url)
        params = [("limit", str(limit))]

        async def ask(url: str) -> TrendingAnswer:
            if _ident(URL(url)) == me:
                return self.local_trending(limit)
            body = await self.fetch(URL(url), "/trending/local", params)
            if body is None:
                raise Unavailable(f"{url} has no trending view")
            return self.deps.codec.decode_as(body, TrendingAnswer)

        answers = await asyncio.gather(*(ask(url) for url in members))
        covered = {p for a in answers for p in a.partitions}
        missing = set(range(self.settings.kafka.partitions)) - covered
        if missing:
            raise Unavailable(f"trending partitions {sorted(missing)} have no owner now")
        return TrendingAnswer(
            partitions=tuple(sorted(covered)),
            entries=an.merge_tops((a.entries for a in answers), limit),
        )


def _ident(url: URL) -> tuple[str, int]:
    return (url.host or "", int(url.port or 80))


def register(app: faust.App, topology: Topology, deps: Deps, settings: Settings) -> Queries:
    """Add the query views to the worker's web server."""
    queries = Queries(app, QueryTables.of(topology, deps), deps, settings)
    token = settings.internal_token().get_secret_value().encode()
    codec = deps.codec

    def unavailable(view: View, reason: str) -> Response:
        return view.json({"error": reason}, status=503, headers={"Retry-After": RETRY_AFTER})

    def avro(view: View, record: Any) -> Response:
        return view.bytes(codec.encode(record), content_type=AVRO_CONTENT_TYPE)

    def not_found(view: View) -> Response:
        return view.bytes(b"", status=404, content_type=AVRO_CONTENT_TYPE)

    def bad_request(view: View, reason: str) -> Response:
        return view.json({"error": reason}, status=400)

    async def guarded(
        view: View, request: Request, answer: Callable[[], Awaitable[Response]]
    ) -> Response:
        """Token, readiness and Unavailable -> 503, around one answer."""
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, b"Bearer " + token):
            return view.json({"error": "internal token required"}, status=401)
        if not is_ready(app):
            return unavailable(view, "worker is rebalancing or recovering tables")
        try:
            return await answer()
        except Unavailable as exc:
            return unavailable(view, str(exc))

    async def routed(
        view: View,
        request: Request,
        table: TypedTable[Any],
        key: str,
        local: Callable[[], Awaitable[Response]],
    ) -> Response:
        """Answer ``local()`` on the key's owner; forward the request there otherwise."""
        url = queries.owner_of(table, key)
        if url is None:
            return await local()
        if request.query.get(FORWARDED):
            raise Unavailable(f"{table.name}/{key} moved while forwarded (rebalancing)")
        body = await queries.fetch(url, request.url.path, list(request.query.items()))
        return not_found(view) if body is None else view.bytes(body, content_type=AVRO_CONTENT_TYPE)

    @app.page("/healthz")
    class Health(View):
        async def get(self, request: Request) -> Response:
            return self.json({"status": "ok", "id": app.conf.id})

    @app.page("/readyz")
    class Ready(View):
        async def get(self, request: Request) -> Response:
            ready = is_ready(app)
            return self.json({"ready": ready}, status=200 if ready else 503)

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            # A header, not content_type=: aiohttp refuses a charset inside content_type.
            return self.bytes(generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    @app.page("/cluster")
    class Cluster(View):
        async def get(self, request: Request) -> Response:
            async def answer() -> Response:
                return avro(self, queries.cluster())

            return await guarded(self, request, answer)

    def keyed(
        path: str,
        param: str,
        table: TypedTable[Any],
        absent: Callable[[str], Any] | None = None,
    ) -> None:
        """``GET path``: the value of ``table`` at the path parameter ``param``, answered by
        the key's owner (404, or ``absent(key)`` when the table has no value)."""

        @app.page(path, name=f"query-{table.name}")
        class KeyedView(View):
            async def get(self, request: Request, **match: str) -> Response:
                key = match[param]

                async def local() -> Response:
                    value = table.get(key)
                    if value is None and absent is not None:
                        value = absent(key)
                    return not_found(self) if value is None else avro(self, value)

                return await guarded(
                    self, request, lambda: routed(self, request, table, key, local)
                )

    keyed("/videos/{video_id}", "video_id", queries.tables.states)
    keyed(
        "/users/{user_id}/history",
        "user_id",
        queries.tables.history,
        absent=lambda user_id: an.UserHistory(user_id=user_id),
    )
    keyed("/stats/{video_id}", "video_id", queries.tables.analytics)

    @app.page("/video-states")
    class VideoStatesView(View):
        async def get(self, request: Request) -> Response:
            ids = cast(MultiMapping[str], request.query).getall("id", [])

            async def answer() -> Response:
                if not 1 <= len(ids) <= MAX_BATCH:
                    return bad_request(self, f"1 to {MAX_BATCH} ids")
                forwarded = bool(request.query.get(FORWARDED))
                found = await queries.states(ids, forwarded=forwarded)
                return avro(self, VideoStateBatch(videos=tuple(found)))

            return await guarded(self, request, answer)

    @app.page("/owners/{owner}/videos")
    class OwnerVideosView(View):
        async def get(self, request: Request, owner: str) -> Response:
            async def local() -> Response:
                try:
                    size = int(request.query.get("pageSize", "20"))
                    if not 1 <= size <= MAX_PAGE_SIZE:
                        raise ValueError(size)
                    page = await queries.owner_page(
                        owner, size, request.query.get("pageToken") or None
                    )
                except ValueError as exc:  # InvalidPageTokenError is one
                    return bad_request(self, str(exc))
                return avro(self, page)

            return await guarded(
                self,
                request,
                lambda: routed(self, request, queries.tables.owners, owner, local),
            )

    def trending_limit(request: Request) -> int:
        raw = request.query.get("limit", "50")
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_TRENDING:
            raise ValueError(f"limit must be 1 to {MAX_TRENDING}")
        return int(raw)

    @app.page("/trending")
    class TrendingView(View):
        async def get(self, request: Request) -> Response:
            async def answer() -> Response:
                try:
                    limit = trending_limit(request)
                except ValueError as exc:
                    return bad_request(self, str(exc))
                return avro(self, await queries.trending(limit))

            return await guarded(self, request, answer)

    @app.page("/trending/local")
    class LocalTrendingView(View):
        async def get(self, request: Request) -> Response:
            async def answer() -> Response:
                try:
                    limit = trending_limit(request)
                except ValueError as exc:
                    return bad_request(self, str(exc))
                return avro(self, queries.local_trending(limit))

            return await guarded(self, request, answer)

    return queries


__all__ = ["AVRO_CONTENT_TYPE", "Queries", "is_ready", "register"]
