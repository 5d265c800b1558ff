"""Search indexing in two agents: a partitioned join, and the index's single writer.

* ``search-join`` consumes ``video-state`` + ``video-stats`` (both keyed by video id, so
  co-partitioned: it runs on every worker, each for its own partitions). It joins them in the
  ``search_sources`` table (``indexer.join``: the latest state and stats of each video, each
  kept only if its own version is newer) and publishes each changed :class:`VideoDocument`
  on ``search-documents``, once per video and batch. The documents are acknowledged by the
  broker before the table's changelog records the join (the batch's checkpoint delivers
  outputs first, ``agents.batching``), so a worker killed in between re-folds the
  redelivered events and publishes them again instead of skipping them.
* ``search-writer`` consumes ``search-documents``, which has ONE partition: exactly one worker
  of the group owns it, and that worker is the index's writer (the embedded tantivy index
  allows one writer per directory; OpenSearch would take more, see docs/scaling.md). It
  upserts each batch in bulk, one commit per batch, and acknowledges the batch once the
  index took it. When the partition moves at a rebalance, the old owner gives the writer up
  (``SearchIndex.release``) and the new one takes it on its first write.

Both consume whole fetched batches (``agents.batching``), at most
``analytics.index_batch_size`` records each.

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
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from mode.types.signals import BaseSignalT

from tritontube import metrics
from tritontube.agents.batching import Batch, BatchingApp, Checkpoint, Handler, Route
from tritontube.agents.dlq import dead_letter_batched
from tritontube.agents.tables import shared
from tritontube.agents.topology import SEARCH_SOURCES_TABLE, Topology
from tritontube.deps import Deps
from tritontube.domain.events import VideoState, VideoStats
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
from tritontube.streams.partitioning import partition_of

log = logging.getLogger(__name__)

JOIN_AGENT = "search-join"
WRITER_AGENT = "search-writer"
JOIN_INPUT = ("VideoState", "VideoStats")
RETRY_MAX_SECONDS = 5.0
_REBUILD_POLL_MS = 500


def register(
    app: BatchingApp, topology: Topology, deps: Deps, settings: Settings, search: SearchIndex
) -> None:
    """The join and the writer, on whole fetched batches (``agents.batching``)."""
    sources = shared(topology, SEARCH_SOURCES_TABLE, deps.codec, SearchSource)
    documents = catalogue.SEARCH_DOCUMENTS.name
    n_documents = catalogue.partitions_of(catalogue.SEARCH_DOCUMENTS, settings.kafka.partitions)
    n_default = settings.kafka.partitions
    a = settings.analytics

    def join_handler(spec: catalogue.TopicSpec, record_type: type[Any]) -> Handler:
        n_input = catalogue.partitions_of(spec, n_default)

        async def on_batch(batch: Batch, out: Checkpoint) -> None:
            """Fold the batch into the changed sources; publish each changed document once
            (an output: delivered before the table's changelog, see ``agents.batching``)."""
            records = batch.records
            metrics.observe_consumed_batch(
                JOIN_AGENT, batch.tp.topic, len(records), records[0].timestamp
            )
            changed: dict[str, SearchSource | None] = {}  # None: the video was deleted
            stamps: dict[str, int] = {}
            for record, value in zip(records, batch.decoded(deps.codec, record_type), strict=True):
                if value is None:  # a tombstone: the video was deleted
                    video_id = bytes(record.key or b"").decode()
                    current = changed[video_id] if video_id in changed else sources.get(video_id)
                    gone = record_type is VideoState
                    if current is not None and (gone or not current.has_state):
                        changed[video_id] = None
                    continue
                if isinstance(value, Exception):
                    dead_letter_batched(out, deps, record, value, partitions=n_input)
                    continue
                known = value.video_id in changed
                before = changed[value.video_id] if known else sources.get(value.video_id)
                if isinstance(value, VideoState):
                    after = join_state(before, value)
                else:
                    after = join_stats(before, value)
                if after is before:
                    continue
                changed[value.video_id] = after
                if record.timestamp:
                    stamps[value.video_id] = record.timestamp
            for video_id, src in changed.items():
                key = video_id.encode()
                doc = None if src is None else to_document(src)
                if doc is not None or src is None:
                    out.send(
                        documents,
                        key,
                        None if doc is None else deps.codec.encode(doc),
                        partition=partition_of(key, n_documents),
                        # The writer measures freshness from the change that caused it.
                        timestamp_ms=stamps.get(video_id),
                    )
                if src is None:
                    out.delete(sources, video_id)
                else:
                    out.put(sources, video_id, src)

        return on_batch

    writer = _Writer(settings, search, deps)
    opened = False

    async def on_documents(batch: Batch, out: Checkpoint) -> None:
        """Upsert the batch in bulk, one commit; acknowledged once the index took it."""
        nonlocal opened
        if not opened:
            await _ensure_until_done(search)
            opened = True
        started = time.perf_counter()
        records = batch.records
        metrics.observe_consumed_batch(
            WRITER_AGENT, batch.tp.topic, len(records), records[0].timestamp
        )
        latest: dict[str, VideoDocument | None] = {}  # None: deleted
        for record in records:
            if record.value is None:
                video_id = bytes(record.key or b"").decode()
                latest.pop(video_id, None)  # keep the batch's order of the last change
                latest[video_id] = None
                continue
            try:
                doc = deps.codec.decode_as(record.value, VideoDocument)
            except CodecError as exc:
                dead_letter_batched(out, deps, record, exc, partitions=n_documents)
                continue
            latest.pop(doc.video_id, None)
            latest[doc.video_id] = doc
        if not latest:
            return
        try:
            applied = await writer.write(latest, before=records[0].offset)
        except SearchWriteError as exc:
            log.error("search backend rejected a batch of %d document(s): %s", len(latest), exc)
            for record in records:
                dead_letter_batched(out, deps, record, exc, partitions=n_documents)
            return
        metrics.INDEX_DOCUMENTS_APPLIED.inc(applied)
        now = time.time()
        for record in records:
            if record.timestamp:
                metrics.INDEX_FRESHNESS_SECONDS.observe(max(0.0, now - record.timestamp / 1000))
        metrics.INDEX_BATCH_SECONDS.observe(time.perf_counter() - started)

    router = app.batch_router
    limit = a.index_batch_size
    router.route(
        topology.topic(catalogue.VIDEO_STATE),
        Route(JOIN_AGENT, join_handler(catalogue.VIDEO_STATE, VideoState), limit),
    )
    router.route(
        topology.topic(catalogue.VIDEO_STATS),
        Route(JOIN_AGENT, join_handler(catalogue.VIDEO_STATS, VideoStats), limit),
    )
    router.route(
        topology.topic(catalogue.SEARCH_DOCUMENTS), Route(WRITER_AGENT, on_documents, limit)
    )

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

    async def write(self, latest: dict[str, VideoDocument | None], *, before: int) -> int:
        """At-least-once: returns once the index has taken every document of ``latest`` and
        deleted every id it maps to None."""
        delay = 0.1
        outage = False
        while True:
            try:
                if outage:
                    await self.search.ensure()
                    restored = await self.rebuild(before)
                    log.info("search backend back: re-indexed %d document(s)", restored)
                return await apply_latest(self.search, latest)
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
                latest: dict[str, VideoDocument | None] = {}
                for record in records:
                    if record.value is None:  # a deleted video's tombstone
                        latest[bytes(record.key or b"").decode()] = None
                        continue
                    try:
                        doc = self.deps.codec.decode_as(record.value, VideoDocument)
                    except CodecError:
                        continue  # dead-lettered when it was first consumed
                    latest[doc.video_id] = doc
                applied += await apply_latest(self.search, latest)
                if not fetched:
                    break  # nothing more to read (retention removed the rest)
        finally:
            await consumer.stop()
        return applied


async def apply_latest(search: SearchIndex, latest: dict[str, VideoDocument | None]) -> int:
    """Upsert the documents of ``latest`` and delete the ids it maps to None; how many
    documents were applied."""
    gone = [video_id for video_id, doc in latest.items() if doc is None]
    docs = [doc for doc in latest.values() if doc is not None]
    applied = await search.upsert(docs) if docs else 0
    if gone:
        await search.delete(gone)
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
