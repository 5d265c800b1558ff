"""The archiver: every topic's records into the object store as Avro container files.

Not a Faust agent but its own process (``tritontube archiver``, :func:`serve`) around an
aiokafka consumer in its own group (``<app_id>-archiver``) with **manual commits**, so that
archiving costs the stream processors nothing and scales like any consumer group: run one or
several, each archives exactly the partitions the group assigns it. The offset of a partition
is committed only after the file holding its records is stored, so a crash before a flush
just re-reads from the committed offset (at-least-once).

Exactly one copy per offset range: keys are deterministic (``streams.archive``), and on
assignment the archiver lists ``archive/<topic>/<partition>/`` and starts after the largest
archived offset, skipping anything at or below it; a revoked partition is flushed and
committed before its new owner gets it. A rewrite of the same range (crash between put and
commit) lands on the same key with the same bytes.

What it archives: every catalogue topic, every dead-letter topic, and the worker's table
changelogs (``<app_id>-<table>-changelog``, so a restore can rebuild tables without
refolding history; see ``replay.restore``). Subscribed by pattern, so changelogs created after
start are picked up within ``metadata_max_age_ms``.

**Checkpoints of the worker group.** A restore must know which archived events the workers
had processed, and the archive alone cannot tell: an event can be archived while the table
change it caused is still in the changelog's flush window. So every
``flush_interval_seconds`` one member of the archiver group (the owner of ``uploads``
partition 0) reads the worker group's committed offsets C for every partition, *then* the
end offsets E of every partition archived, and once the archiver group's committed offsets
(every member's progress) reach E, it writes C to ``archive/_checkpoints/<group>.json``
(``streams.archive.checkpoint_key``). Faust flushes its producer (table changelogs, forwarded
events) before it commits, so whatever the events below C produced is below E and hence
archived: the restore commits the group at C, and the workers process the events after C
again (at-least-once; their folds ignore redelivered events), exactly as restarted workers
do on a real Kafka cluster.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiohttp import web
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tritontube import metrics
from tritontube.settings import ArchiveSettings, Settings
from tritontube.storage.port import ObjectStore, ObjectStoreError
from tritontube.streams import archive, catalogue
from tritontube.streams.archive import ArchivedRecord

log = logging.getLogger(__name__)

SERVICE_NAME = "archiver"
_POLL_MS = 500
_DRAIN_SECONDS = 2.0
_CHECKPOINT_TIMEOUT_SECONDS = 5.0
_PENDING_INTERVALS = 12  # a checkpoint not covered within this many flush intervals restarts


def group_id(settings: Settings) -> str:
    return f"{settings.worker.app_id}-archiver"


def topic_pattern(app_id: str) -> str:
    """Every catalogue topic, its DLQ, and the app's table changelogs."""
    names = "|".join(re.escape(n) for n in catalogue.all_topic_names())
    return rf"^(?:{names}|{catalogue.changelog_pattern(app_id)})$"


@dataclass(frozen=True)
class FlushPolicy:
    records: int
    bytes: int
    interval_seconds: float

    @classmethod
    def from_settings(cls, s: ArchiveSettings) -> FlushPolicy:
        return cls(s.flush_records, s.flush_bytes, s.flush_interval_seconds)


@dataclass
class PartitionBuffer:
    """Records of one partition waiting for their file; knows how far the archive goes."""

    archived_end: int | None = None
    records: list[ArchivedRecord] = field(default_factory=list)
    size_bytes: int = 0
    first_added: float | None = None
    seen_end: int | None = None  # the largest offset consumed, archived or buffered

    def __post_init__(self) -> None:
        if self.seen_end is None:
            self.seen_end = self.archived_end

    def add(self, record: ArchivedRecord, now: float) -> bool:
        """Buffer ``record`` unless the archive (or the buffer) already holds its offset."""
        if self.seen_end is None or record.offset > self.seen_end:
            self.seen_end = record.offset
        last = self.records[-1].offset if self.records else self.archived_end
        if last is not None and record.offset <= last:
            return False
        if not self.records:
            self.first_added = now
        self.records.append(record)
        self.size_bytes += len(record.key or b"") + len(record.value or b"")
        return True

    def due(self, policy: FlushPolicy, now: float) -> bool:
        if not self.records or self.first_added is None:
            return False
        return (
            len(self.records) >= policy.records
            or self.size_bytes >= policy.bytes
            or now - self.first_added >= policy.interval_seconds
        )

    def archived_below(self, end: int, start: int = 0) -> bool:
        """Whether every record of the partition below offset ``end`` is archived, given that
        the partition's records start at ``start`` (retention removes older ones)."""
        if end <= start:
            return True
        seen = max(-1 if self.seen_end is None else self.seen_end, start - 1)
        if seen < end - 1:
            return False
        return not self.records or self.records[0].offset >= end

    def take(self) -> list[ArchivedRecord]:
        """The buffered records; the buffer is empty after and counts them as archived."""
        records, self.records = self.records, []
        self.size_bytes, self.first_added = 0, None
        if records:
            self.archived_end = records[-1].offset
        return records


@dataclass(frozen=True)
class PendingCheckpoint:
    """The worker group's committed offsets, and the ends they must be archived up to."""

    committed: dict[TopicPartition, int]
    ends: dict[TopicPartition, int]
    starts: dict[TopicPartition, int]
    begun: float  # time.monotonic()


class Archiver:
    """Consume, buffer per partition, write files, then commit. ``start``/``run``/``close``."""

    def __init__(self, settings: Settings, store: ObjectStore) -> None:
        self.settings = settings
        self.store = store
        self.prefix = settings.archive.prefix
        self.policy = FlushPolicy.from_settings(settings.archive)
        self.buffers: dict[TopicPartition, PartitionBuffer] = {}
        self.pending: PendingCheckpoint | None = None
        self._next_checkpoint = 0.0
        self._pattern = re.compile(topic_pattern(settings.worker.app_id))
        self._lock = asyncio.Lock()
        self._uncommitted: dict[TopicPartition, int] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._admin: AIOKafkaAdminClient | None = None

    @property
    def consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("archiver not started")
        return self._consumer

    async def start(self) -> None:
        k = self.settings.kafka
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=k.bootstrap_servers,
            group_id=group_id(self.settings),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=k.session_timeout_ms,
            heartbeat_interval_ms=k.heartbeat_interval_ms,
            metadata_max_age_ms=5000,
        )
        await self._consumer.start()
        self._consumer.subscribe(pattern=self._pattern.pattern, listener=_Listener(self))
        self._admin = AIOKafkaAdminClient(bootstrap_servers=k.bootstrap_servers)
        await self._admin.start()

    async def run(self, stopping: asyncio.Event) -> None:
        """Archive until ``stopping`` is set, then drain what the broker has and flush all."""
        while not stopping.is_set():
            await self.poll(_POLL_MS)
            await self.flush(due_only=True)
            await self.checkpoint()
        self.pending = await self.begin_checkpoint()  # the worker's commits so far
        deadline = time.monotonic() + _DRAIN_SECONDS
        while time.monotonic() < deadline and await self.poll(200):
            pass
        await self.flush(due_only=False)
        await self.checkpoint()

    async def close(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()
        admin, self._admin = self._admin, None
        if admin is not None:
            await admin.close()

    # ---- checkpoints of the worker group (module doc)

    def is_checkpoint_owner(self) -> bool:
        """One member of the archiver group writes checkpoints: the owner of
        ``uploads`` partition 0 (any one would do; one avoids overwriting each other)."""
        return TopicPartition(catalogue.UPLOADS.name, 0) in self.buffers

    async def checkpoint(self) -> bool:
        """Start a checkpoint when one is due, write the pending one once the archive covers
        it; True when one was written. A broker or store error only skips a checkpoint."""
        if not self.is_checkpoint_owner():
            self.pending = None
            return False
        stale = time.monotonic() - _PENDING_INTERVALS * self.policy.interval_seconds
        if self.pending is not None and self.pending.begun < stale:
            log.warning(
                "checkpoint of %s not archived within %d flush intervals, starting over",
                self.settings.worker.app_id,
                _PENDING_INTERVALS,
            )
            self.pending = None
        if self.pending is None:
            if time.monotonic() < self._next_checkpoint:
                return False
            self._next_checkpoint = time.monotonic() + self.policy.interval_seconds
            self.pending = await self.begin_checkpoint()
        pending = self.pending
        if pending is None or not await self._archived_up_to(pending):
            return False
        self.pending = None
        group = self.settings.worker.app_id
        offsets = {(tp.topic, tp.partition): n for tp, n in pending.committed.items()}
        body = archive.encode_checkpoint(group, offsets, datetime.now(UTC))
        try:
            await self.store.put_bytes(
                archive.checkpoint_key(self.prefix, group), body, "application/json"
            )
        except ObjectStoreError as exc:
            log.warning("checkpoint of %s not written, the next one will be: %s", group, exc)
            return False
        log.debug("checkpoint of %s: %s", group, offsets)
        return True

    async def begin_checkpoint(self) -> PendingCheckpoint | None:
        """The worker group's committed offsets now, then the ends of every partition of
        every topic archived (in that order: what the commits reflect was produced before
        the ends), whichever archiver archives it. None when the broker does not answer in
        time or knows no partitions yet."""
        if self._admin is None:
            return None
        admin = self._admin
        app_id = self.settings.worker.app_id
        began = time.monotonic()
        try:
            async with asyncio.timeout(_CHECKPOINT_TIMEOUT_SECONDS):
                topics = [t for t in await admin.list_topics() if self._pattern.match(t)]
                tps = sorted(
                    TopicPartition(t, p)
                    for t in topics
                    for p in self.consumer.partitions_for_topic(t) or ()
                )
                inputs = [tp for tp in tps if not catalogue.is_changelog(app_id, tp.topic)]
                if not inputs:
                    return None
                committed = await admin.list_consumer_group_offsets(app_id, partitions=inputs)
                ends = await self.consumer.end_offsets(tps)
                starts = await self.consumer.beginning_offsets(tps)
        except (KafkaError, IllegalStateError, TimeoutError) as exc:
            log.info("checkpoint of %s skipped: %r", app_id, exc)
            return None
        return PendingCheckpoint(
            committed={tp: m.offset for tp, m in committed.items() if m.offset >= 0},
            ends=dict(ends),
            starts=dict(starts),
            begun=began,
        )

    async def _archived_up_to(self, pending: PendingCheckpoint) -> bool:
        """Whether every record below the pending ends is in the archive, by any member of
        the archiver group: each commits a partition's offset only once the file holding
        its records is stored, so the group's committed offsets say how far the archive
        goes."""
        if self._admin is None:
            return False
        try:
            async with asyncio.timeout(_CHECKPOINT_TIMEOUT_SECONDS):
                archived = await self._admin.list_consumer_group_offsets(
                    group_id(self.settings), partitions=list(pending.ends)
                )
        except (KafkaError, IllegalStateError, TimeoutError) as exc:
            log.info("archive progress unknown: %r", exc)
            return False
        for tp, end in pending.ends.items():
            if end <= pending.starts.get(tp, 0):
                continue  # empty, or emptied by retention
            done = archived.get(tp)
            if done is None or done.offset < end:
                return False
        return True

    async def poll(self, timeout_ms: int) -> int:
        """Fetch and buffer; returns the records added."""
        batch = await self.consumer.getmany(timeout_ms=timeout_ms, max_records=10_000)
        now = time.monotonic()
        added = 0
        async with self._lock:
            for tp, messages in batch.items():
                buffer = self.buffers.get(tp)
                if buffer is None:
                    continue  # revoked meanwhile: its new owner re-reads it
                added += sum(buffer.add(archive.from_consumer_record(m), now) for m in messages)
            self._update_lag()
        return added

    async def flush(self, *, due_only: bool, only: Iterable[TopicPartition] | None = None) -> int:
        """Write the (due) buffers to files and commit their offsets; returns files written."""
        async with self._lock:
            written = await self._flush_locked(due_only, only)
            await self._commit_archived()
            return written

    async def _flush_locked(self, due_only: bool, only: Iterable[TopicPartition] | None) -> int:
        written = 0
        now = time.monotonic()
        tps = list(self.buffers) if only is None else [tp for tp in only if tp in self.buffers]
        for tp in tps:
            buffer = self.buffers[tp]
            if due_only and not buffer.due(self.policy, now):
                continue
            written += await self._flush_one(tp, buffer)
        return written

    async def _flush_one(self, tp: TopicPartition, buffer: PartitionBuffer) -> int:
        if not buffer.records:
            return 0
        records = buffer.records
        key = archive.archive_key(self.prefix, records)
        # A file holds up to thousands of records: encode it off the loop, which also
        # serves the worker's agents and web views (the lock keeps the buffer unchanged).
        body = await asyncio.to_thread(archive.encode_file, records)
        try:
            await self.store.put_bytes(key, body, archive.CONTENT_TYPE)
        except ObjectStoreError as exc:
            # Keep the buffer: the next flush retries (the key, and so the file, is the same).
            log.warning("archive write of %s failed, will retry: %s", key, exc)
            return 0
        buffer.take()
        metrics.ARCHIVE_FILES_WRITTEN.labels(tp.topic).inc()
        metrics.ARCHIVE_RECORDS_WRITTEN.labels(tp.topic).inc(len(records))
        log.debug("archived %s (%d records)", key, len(records))
        self._uncommitted[tp] = records[-1].offset + 1
        await self._commit_archived()
        return 1

    async def _commit_archived(self) -> None:
        """Commit how far the archive goes, per partition. The archive listing, not the
        group offset, decides where a new owner resumes; but checkpoints read the group's
        offsets, so a failed commit is tried again at the next flush."""
        pending = {tp: n for tp, n in self._uncommitted.items() if tp in self.buffers}
        if not pending:
            return
        try:
            await self.consumer.commit(pending)
        except (CommitFailedError, IllegalStateError, KafkaError) as exc:
            log.info("offset commit of %s failed after archiving: %s", sorted(pending), exc)
            return
        for tp, offset in pending.items():
            if self._uncommitted.get(tp) == offset:
                del self._uncommitted[tp]

    async def assign(self, assigned: Iterable[TopicPartition]) -> None:
        async with self._lock:
            for tp in assigned:
                listing = await self.store.list(
                    archive.partition_prefix(self.prefix, tp.topic, tp.partition)
                )
                files = archive.parse_keys(self.prefix, (o.key for o in listing))
                end = archive.last_archived_offset(files)
                self.buffers[tp] = PartitionBuffer(archived_end=end)  # seen up to it too
                if end is not None:
                    self.consumer.seek(tp, end + 1)
                    self._uncommitted[tp] = end + 1  # a previous owner may not have
                    log.info("archive of %s resumes after offset %d", tp, end)

    async def revoke(self, revoked: Iterable[TopicPartition]) -> None:
        tps = list(revoked)
        async with self._lock:
            await self._flush_locked(False, tps)
            await self._commit_archived()  # before the partitions go to their new owner
            for tp in tps:
                self.buffers.pop(tp, None)
                self._uncommitted.pop(tp, None)

    def _update_lag(self) -> None:
        # While a pattern subscription changes, ``buffers`` still lists partitions the
        # consumer no longer has (until the revoke), and asking about those raises.
        assigned = self.consumer.assignment()
        for tp, buffer in self.buffers.items():
            if tp not in assigned:
                continue
            high = self.consumer.highwater(tp)
            if high is None:
                continue
            done = -1 if buffer.archived_end is None else buffer.archived_end
            metrics.ARCHIVE_LAG_RECORDS.labels(tp.topic, str(tp.partition)).set(
                max(0, high - done - 1)
            )


class _Listener(ConsumerRebalanceListener):
    def __init__(self, archiver: Archiver) -> None:
        self.archiver = archiver

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.archiver.revoke(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self.archiver.assign(assigned)


async def serve(settings: Settings, store: ObjectStore, stopping: asyncio.Event) -> None:
    """Run one archiver until ``stopping`` is set (``tritontube archiver``): its own process,
    so archiving costs the stream processors nothing. ``/healthz`` and ``/metrics`` (the
    archive's lag and throughput) on ``archive.web_host:archive.web_port``."""
    archiver = Archiver(settings, store)
    web_app = web.Application()
    web_app.router.add_get("/healthz", _healthz)
    web_app.router.add_get("/metrics", _metrics)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    await archiver.start()
    try:
        site = web.TCPSite(runner, settings.archive.web_host, settings.archive.web_port)
        await site.start()
        task = asyncio.create_task(archiver.run(stopping), name=SERVICE_NAME)
        await task  # a graceful stop flushes every buffer and writes a last checkpoint
    finally:
        await archiver.close()
        await runner.cleanup()


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _metrics(request: web.Request) -> web.Response:
    response = web.Response(body=generate_latest())
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response
