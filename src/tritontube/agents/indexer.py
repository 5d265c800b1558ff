"""The indexer agent: ``video-state`` + ``video-stats`` -> the search index, in bulk.

Both topics are keyed by video id. The agent joins them in the ``search_sources`` table
(the latest state and the latest stats of each video, each kept only if its own version is
newer) and upserts one :class:`VideoDocument` per video and batch
(``stream.take_events(n, within)``). The document's version is
``state.version + stats.version``: each part only grows, so every accepted change of either
raises the sum, and replaying both topics in any interleaving ends at the same document
with the same (highest) version. The index is a materialised view: delete it and replay the
two topics (or reset this agent's offsets) to rebuild it.

Videos that are not READY or not public are upserted too, as non-searchable versions, so
they disappear from results without a hard delete and a late, older version cannot
resurrect them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

import faust
from faust.types import EventT, StreamT

from tritontube import metrics
from tritontube.agents.dlq import dead_letter
from tritontube.agents.topology import SEARCH_SOURCES_TABLE, Topology
from tritontube.deps import Deps
from tritontube.domain.analytics import from_ms, to_ms
from tritontube.domain.events import VideoState, VideoStats
from tritontube.indexer.documents import READY, VideoDocument, Visibility
from tritontube.indexer.port import SearchIndex, SearchUnavailable, SearchWriteError
from tritontube.settings import Settings
from tritontube.streams import catalogue
from tritontube.streams.codec import CodecError

log = logging.getLogger(__name__)

AGENT_NAME = "search-indexer"
INPUT_RECORDS = ("VideoState", "VideoStats")
RETRY_MAX_SECONDS = 5.0


# -- the join (pure) -------------------------------------------------------------------
@dataclass(frozen=True)
class SearchSource:
    """Everything the index needs about one video, from both topics."""

    video_id: str
    state_version: int = 0
    stats_version: int = 0
    title: str = ""
    description: str = ""
    tags: tuple[str, ...] = ()
    owner: str = ""
    status: str = ""
    visibility: str = "public"
    created_ms: int = 0
    ready_ms: int | None = None
    duration_seconds: float | None = None
    views: int = 0
    watch_seconds: float = 0.0
    trending_score: float = 0.0

    @property
    def version(self) -> int:
        return self.state_version + self.stats_version

    @property
    def has_state(self) -> bool:
        return self.state_version > 0


def join_state(src: SearchSource | None, state: VideoState) -> SearchSource:
    """The source after a VideoState; unchanged (same object) when not newer."""
    s = src or SearchSource(video_id=state.video_id)
    if state.version <= s.state_version:
        return s
    ready_ms = s.ready_ms
    if state.status == READY and ready_ms is None:
        ready_ms = to_ms(state.updated_at)
    return replace(
        s,
        state_version=state.version,
        title=state.title,
        description=state.description,
        tags=tuple(state.tags),
        owner=state.owner,
        status=state.status,
        visibility=state.visibility,
        created_ms=to_ms(state.created_at),
        ready_ms=ready_ms,
        duration_seconds=state.duration_seconds,
    )


def join_stats(src: SearchSource | None, stats: VideoStats) -> SearchSource:
    s = src or SearchSource(video_id=stats.video_id)
    if stats.version <= s.stats_version:
        return s
    return replace(
        s,
        stats_version=stats.version,
        views=stats.views,
        watch_seconds=stats.watch_seconds,
        trending_score=stats.trending_score,
    )


def to_document(src: SearchSource) -> VideoDocument | None:
    """The document to index; None until the video's state is known."""
    if not src.has_state:
        return None
    visibility = (
        src.visibility if src.visibility in ("public", "private", "unlisted") else "private"
    )
    return VideoDocument(
        video_id=src.video_id,
        title=src.title,
        description=src.description,
        tags=src.tags,
        owner=src.owner,
        status=src.status,
        visibility=cast(Visibility, visibility),
        created_at=from_ms(src.created_ms),
        ready_at=None if src.ready_ms is None else from_ms(src.ready_ms),
        duration_seconds=src.duration_seconds,
        views=src.views,
        watch_seconds=src.watch_seconds,
        trending_score=src.trending_score,
        version=src.version,
    )


def source_to_dict(s: SearchSource) -> dict[str, Any]:
    return {
        "v": s.video_id,
        "sv": s.state_version,
        "xv": s.stats_version,
        "title": s.title,
        "desc": s.description,
        "tags": list(s.tags),
        "owner": s.owner,
        "status": s.status,
        "vis": s.visibility,
        "c": s.created_ms,
        "r": s.ready_ms,
        "dur": s.duration_seconds,
        "views": s.views,
        "ws": s.watch_seconds,
        "tr": s.trending_score,
    }


def source_from_dict(d: dict[str, Any]) -> SearchSource:
    return SearchSource(
        video_id=d["v"],
        state_version=int(d["sv"]),
        stats_version=int(d["xv"]),
        title=d["title"],
        description=d["desc"],
        tags=tuple(d["tags"]),
        owner=d["owner"],
        status=d["status"],
        visibility=d["vis"],
        created_ms=int(d["c"]),
        ready_ms=None if d["r"] is None else int(d["r"]),
        duration_seconds=None if d["dur"] is None else float(d["dur"]),
        views=int(d["views"]),
        watch_seconds=float(d["ws"]),
        trending_score=float(d["tr"]),
    )


# -- the agent -------------------------------------------------------------------------
def register(
    app: faust.App, topology: Topology, deps: Deps, settings: Settings, search: SearchIndex
) -> None:
    table = topology.tables[SEARCH_SOURCES_TABLE]
    a = settings.analytics
    source_input = app.topic(
        catalogue.VIDEO_STATE.name,
        catalogue.VIDEO_STATS.name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )

    def read(video_id: str) -> SearchSource | None:
        raw = table.get(video_id.encode())
        return None if raw is None else source_from_dict(json.loads(raw))

    async def fold(
        events: Sequence[EventT],
    ) -> tuple[dict[str, SearchSource], list[VideoDocument], list[float]]:
        """Fold a batch; the changed sources, their documents and the states' timestamps.

        Nothing is written here: the table is updated only after the index took the batch,
        so a worker killed in between re-folds the redelivered events instead of skipping them.
        """
        changed: dict[str, SearchSource] = {}
        stamps: list[float] = []
        for event in events:
            metrics.observe_consumed(AGENT_NAME, event.message.topic, event.message.timestamp)
            try:
                record = deps.codec.decode(event.value, expect=INPUT_RECORDS)
            except CodecError as exc:
                await dead_letter(topology, deps, event, exc)
                continue
            before = changed.get(record.video_id) or read(record.video_id)
            if isinstance(record, VideoState):
                after = join_state(before, record)
            else:
                after = join_stats(before, record)
            if after is before:
                continue
            changed[record.video_id] = after
            if isinstance(record, VideoState) and event.message.timestamp:
                stamps.append(float(event.message.timestamp))
        docs = [d for d in (to_document(s) for s in changed.values()) if d is not None]
        return changed, docs, stamps

    def all_documents() -> list[VideoDocument]:
        sources = (source_from_dict(json.loads(raw)) for raw in list(table.values()))
        return [d for d in (to_document(s) for s in sources) if d is not None]

    @app.agent(source_input, name=AGENT_NAME)
    async def indexer_agent(stream: StreamT) -> None:
        # The index opens with the worker's services, which Faust may start after the agents
        # begin consuming: open it here too (idempotent) before the first batch.
        await _ensure_until_done(search)
        async for batch in stream.take_events(a.index_batch_size, within=a.index_batch_seconds):  # type: ignore[attr-defined]
            started = time.perf_counter()
            changed, docs, stamps = await fold(batch)
            if docs:
                try:
                    applied = await _upsert_until_done(search, docs, all_documents)
                except SearchWriteError as exc:
                    log.error(
                        "search backend rejected a batch of %d document(s): %s", len(docs), exc
                    )
                    for event in batch:
                        await dead_letter(topology, deps, event, exc)
                    continue
                metrics.INDEX_DOCUMENTS_APPLIED.inc(applied)
                now = time.time()
                for stamp in stamps:
                    metrics.INDEX_FRESHNESS_SECONDS.observe(max(0.0, now - stamp))
            for video_id, src in changed.items():
                table[video_id.encode()] = json.dumps(source_to_dict(src)).encode()
            metrics.INDEX_BATCH_SECONDS.observe(time.perf_counter() - started)


async def _ensure_until_done(search: SearchIndex) -> None:
    delay = 0.1
    while True:
        try:
            await search.ensure()
            return
        except SearchUnavailable as exc:
            log.warning("search backend unavailable, retrying in %.1fs: %s", delay, exc)
        await asyncio.sleep(delay)
        delay = min(RETRY_MAX_SECONDS, delay * 2)


async def _upsert_until_done(
    search: SearchIndex,
    docs: list[VideoDocument],
    everything: Callable[[], list[VideoDocument]],
) -> int:
    """At-least-once: the batch is acknowledged only once the index has taken it.

    After an outage the index is re-opened (recreated with its mappings if the backend lost
    it, as an in-memory one does on restart) and every document this worker holds is written
    again; versioned upserts make that idempotent.
    """
    delay = 0.1
    outage = False
    while True:
        try:
            if outage:
                await search.ensure()
                restored = await search.upsert(everything())
                log.info("search backend back: re-indexed %d document(s)", restored)
            return await search.upsert(docs)
        except SearchUnavailable as exc:
            outage = True
            log.warning("search backend unavailable, retrying in %.1fs: %s", delay, exc)
        await asyncio.sleep(delay)
        delay = min(RETRY_MAX_SECONDS, delay * 2)
