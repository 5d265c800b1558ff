"""Search indexing in two agents: a partitioned join, and the index's single writer.

* ``search-join`` consumes ``video-state`` + ``video-stats`` (both keyed by video id, so
  co-partitioned: it runs on every worker, each for its own partitions). It joins them in the
  ``search_sources`` table (``indexer.join``: the latest state and stats of each video, each
  kept only if its own version is newer) and publishes each changed :class:`VideoDocument`
  on ``search-documents``, once per video and batch. The documents are acknowledged by the
  broker before the table records the join, so a worker killed in between re-folds the
  redelivered events and publishes them again instead of skipping them.
* ``search-writer`` consumes ``search-documents``, which has ONE partition: exactly one worker
  of the group owns it, and that worker is the index's writer (the embedded tantivy index
  allows one writer per directory; OpenSearch would take more, see docs/scaling.md). It
  upserts each batch in bulk, one commit per batch, and acknowledges the batch once the
  index took it. When the partition moves at a rebalance, the old owner gives the writer up
  (``SearchIndex.release``) and the new one takes it on its first write.

The document's version is ``state.version + stats.version``, so upserts are idempotent and
replays converge. After a search outage the writer re-reads ``search-documents`` from its
start (an in-memory backend may have lost everything) and upserts it all again. The index
is a materialised view: delete it and reset ``search-writer``'s offsets to rebuild it.

Videos that are not READY or not public are upserted too, as non-searchable versions, so
they disappear from results without a hard delete and a late, older version cannot
resurrect them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.types import EventT, StreamT
from mode.types.signals import BaseSignalT

from tritontube import metrics
from tritontube.agents.dlq import dead_letter
from tritontube.agents.tables import TypedTable
from tritontube.agents.topology import SEARCH_SOURCES_TABLE, Topology
from tritontube.deps import Deps
from tritontube.domain.events import VideoState
from tritontube.indexer.documents import VideoDocument
from tritontube.indexer.join import SearchSource, join_state, join_stats, to_document
from tritontube.indexer.port import (
    SearchIndex,
    SearchUnavailable,
    SearchWriteError,
    SearchWriterBusy,
)
from tritontube.settings import Settings
from tritontube.streams import catalogue
from tritontube.streams.codec import CodecError

log = logging.getLogger(__name__)

JOIN_AGENT = "search-join"
WRITER_AGENT = "search-writer"
JOIN_INPUT = ("VideoState", "VideoStats")
RETRY_MAX_SECONDS = 5.0
_REBUILD_POLL_MS = 500


def register(
    app: faust.App, topology: Topology, deps: Deps, settings: Settings, search: SearchIndex
) -> None:
    """The join agent and the writer agent (module doc)."""
    sources = TypedTable(topology.tables[SEARCH_SOURCES_TABLE], deps.codec, SearchSource)
    documents = topology.topic(catalogue.SEARCH_DOCUMENTS)
    a = settings.analytics
    join_input = app.topic(
        catalogue.VIDEO_STATE.name,
        catalogue.VIDEO_STATS.name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )

    async def fold(events: Sequence[EventT]) -> tuple[dict[str, SearchSource], dict[str, float]]:
        """The batch's changed sources and, by video, the newest input's timestamp."""
        changed: dict[str, SearchSource] = {}
        stamps: dict[str, float] = {}
        for event in events:
            metrics.observe_consumed(JOIN_AGENT, event.message.topic, event.message.timestamp)
            try:
                record = deps.codec.decode(event.value, expect=JOIN_INPUT)
            except CodecError as exc:
                await dead_letter(topology, deps, event, exc)
                continue
            before = changed.get(record.video_id) or sources.get(record.video_id)
            if isinstance(record, VideoState):
                after = join_state(before, record)
            else:
                after = join_stats(before, record)
            if after is before:
                continue
            changed[record.video_id] = after
            if event.message.timestamp:
                stamps[record.video_id] = float(event.message.timestamp)
        return changed, stamps

    @app.agent(join_input, name=JOIN_AGENT)
    async def search_join(stream: StreamT) -> None:
        async for batch in stream.take_events(a.index_batch_size, within=a.index_batch_seconds):  # type: ignore[attr-defined]
            changed, stamps = await fold(batch)
            pending = []
            for video_id, src in changed.items():
                doc = to_document(src)
                if doc is not None:
                    pending.append(
                        await documents.send(
                            key=video_id.encode(),
                            value=deps.codec.encode(doc),
                            # The writer measures freshness from the change that caused it.
                            timestamp=stamps.get(video_id),
                        )
                    )
            await asyncio.gather(*pending)
            for video_id, src in changed.items():
                sources.put(video_id, src)

    writer = _Writer(settings, search, deps)

    @app.agent(documents, name=WRITER_AGENT)
    async def search_writer(stream: StreamT) -> None:
        await _ensure_until_done(search)
        async for batch in stream.take_events(a.index_batch_size, within=a.index_batch_seconds):  # type: ignore[attr-defined]
            started = time.perf_counter()
            docs: list[VideoDocument] = []
            for event in batch:
                metrics.observe_consumed(WRITER_AGENT, event.message.topic, event.message.timestamp)
                try:
                    docs.append(deps.codec.decode_as(event.value, VideoDocument))
                except CodecError as exc:
                    await dead_letter(topology, deps, event, exc)
            if not docs:
                continue
            try:
                applied = await writer.upsert(docs, before=batch[0].message.offset)
            except SearchWriteError as exc:
                log.error("search backend rejected a batch of %d document(s): %s", len(docs), exc)
                for event in batch:
                    await dead_letter(topology, deps, event, exc)
                continue
            metrics.INDEX_DOCUMENTS_APPLIED.inc(applied)
            now = time.time()
            for event in batch:
                if event.message.timestamp:
                    metrics.INDEX_FRESHNESS_SECONDS.observe(max(0.0, now - event.message.timestamp))
            metrics.INDEX_BATCH_SECONDS.observe(time.perf_counter() - started)

    @app.on_partitions_revoked.connect
    async def release_writer(
        sender: Any, /, *args: Any, signal: BaseSignalT[Any], **kwargs: Any
    ) -> None:
        # Another worker may own the documents partition next: let it take the writer.
        revoked: set[Any] = args[0] if args else kwargs.get("revoked", set())
        if any(tp.topic == catalogue.SEARCH_DOCUMENTS.name for tp in revoked):
            await search.release()


class _Writer:
    """Upserts until the index takes them; after an outage, re-reads the topic first."""

    def __init__(self, settings: Settings, search: SearchIndex, deps: Deps) -> None:
        self.settings = settings
        self.search = search
        self.deps = deps

    async def upsert(self, docs: list[VideoDocument], *, before: int) -> int:
        """At-least-once: returns once the index has taken ``docs``."""
        delay = 0.1
        outage = False
        while True:
            try:
                if outage:
                    await self.search.ensure()
                    restored = await self.rebuild(before)
                    log.info("search backend back: re-indexed %d document(s)", restored)
                return await self.search.upsert(docs)
            except SearchWriterBusy as exc:
                log.info("index writer busy, retrying in %.1fs: %s", delay, exc)
            except SearchUnavailable as exc:
                outage = True
                log.warning("search backend unavailable, retrying in %.1fs: %s", delay, exc)
            await asyncio.sleep(delay)
            delay = min(RETRY_MAX_SECONDS, delay * 2)

    async def rebuild(self, before: int) -> int:
        """Upsert every document of ``search-documents`` below offset ``before`` again."""
        k = self.settings.kafka
        consumer = AIOKafkaConsumer(
            bootstrap_servers=k.bootstrap_servers, enable_auto_commit=False, group_id=None
        )
        tp = TopicPartition(catalogue.SEARCH_DOCUMENTS.name, 0)
        await consumer.start()
        applied = 0
        try:
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            while await consumer.position(tp) < before:
                fetched = await consumer.getmany(tp, timeout_ms=_REBUILD_POLL_MS, max_records=2000)
                records = [r for r in fetched.get(tp, []) if r.offset < before]
                docs = []
                for record in records:
                    try:
                        docs.append(self.deps.codec.decode_as(record.value, VideoDocument))
                    except CodecError:
                        continue  # dead-lettered when it was first consumed
                applied += await self.search.upsert(docs)
                if not fetched:
                    break  # nothing more to read (retention removed the rest)
        finally:
            await consumer.stop()
        return applied


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
