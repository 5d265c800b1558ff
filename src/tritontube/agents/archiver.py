"""The archiver: every topic's records into the object store as Avro container files.

Not a Faust agent but a ``mode.Service`` run by the worker (``app.service``) around a dedicated
aiokafka consumer with **manual commits**. Faust acknowledges a record as soon as an agent has
processed it, which would let it commit offsets of records still only in our memory buffer;
here the offset of a partition is committed only after the file holding its records is stored,
so a crash before a flush just re-reads from the committed offset (at-least-once).

Exactly one copy per offset range: keys are deterministic (``streams.archive``), and on
assignment the archiver lists ``archive/<topic>/<partition>/`` and starts after the largest
archived offset, skipping anything at or below it. A rewrite of the same range (crash between
put and commit) lands on the same key with the same bytes.

What it archives: every catalogue topic, every dead-letter topic, and the worker's table
changelogs (``<app_id>-<table>-changelog``, so the embedded stack can restore tables without
refolding history; see ``replay.restore``). Subscribed by pattern, so changelogs created after
start are picked up within ``metadata_max_age_ms``.

**Checkpoints of the worker group.** A restore must know which archived events the worker had
processed, and the archive alone cannot tell: an event can be archived while the table change
it caused is still in the changelog's flush window. So every ``flush_interval_seconds`` the
archiver reads the worker group's committed offsets C, *then* the end offsets E of every
partition it archives, and once everything below E is archived it writes C to
``archive/_checkpoints/<group>.json`` (``streams.archive.checkpoint_key``). Faust flushes its
producer (table changelogs, forwarded events) before it commits, so whatever the events
below C produced is below E and hence archived: the restore commits the group at C, and the
worker processes the events after C again (at-least-once; its folds ignore redelivered
events), exactly as a restarted worker does on a real Kafka cluster. One archiver is assumed
(the embedded stack's single worker); with several, each overwrites the file with its own
partitions, and the partitions missing from it are processed again from their start.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import faust
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from mode import Service

from tritontube import metrics
from tritontube.deps import Deps
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

    async def checkpoint(self) -> bool:
        """Start a checkpoint when one is due, write the pending one once the archive covers
        it; True when one was written. A broker or store error only skips a checkpoint."""
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
        if pending is None or not self._archived_up_to(pending):
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
        """The worker group's committed offsets now, then the ends of every archived
        partition (in that order: what the commits reflect was produced before the ends).
        None when a topic to archive is not assigned yet (a changelog created after the
        subscription) or the broker does not answer in time."""
        app_id = self.settings.worker.app_id
        tps = sorted(self.buffers)
        inputs = [tp for tp in tps if not catalogue.is_changelog(app_id, tp.topic)]
        if not inputs or self._admin is None:
            return None
        admin = self._admin
        began = time.monotonic()
        try:
            async with asyncio.timeout(_CHECKPOINT_TIMEOUT_SECONDS):
                committed = await admin.list_consumer_group_offsets(app_id, partitions=inputs)
                # Then every topic the commits' effects may be in must be ours already.
                missing = {t for t in await admin.list_topics() if self._pattern.match(t)} - {
                    tp.topic for tp in tps
                }
                if missing:
                    log.debug("checkpoint of %s waits for %s", app_id, sorted(missing))
                    return None
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

    def _archived_up_to(self, pending: PendingCheckpoint) -> bool:
        """Whether every record below the pending ends is in the archive; a revoked
        partition drops the pending checkpoint (its new owner has its own)."""
        for tp, end in pending.ends.items():
            buffer = self.buffers.get(tp)
            if buffer is None:
                self.pending = None
                return False
            if not buffer.archived_below(end, pending.starts.get(tp, 0)):
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
            return await self._flush_locked(due_only, only)

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
        try:
            await self.consumer.commit({tp: records[-1].offset + 1})
        except (CommitFailedError, IllegalStateError, KafkaError) as exc:
            # Harmless: the archive listing, not the group offset, decides where to resume.
            log.info("offset commit for %s failed after archiving: %s", tp, exc)
        return 1

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
                    log.info("archive of %s resumes after offset %d", tp, end)

    async def revoke(self, revoked: Iterable[TopicPartition]) -> None:
        tps = list(revoked)
        async with self._lock:
            await self._flush_locked(False, tps)
            for tp in tps:
                self.buffers.pop(tp, None)

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


def register(app: faust.App, deps: Deps, settings: Settings) -> None:
    """Run an :class:`Archiver` with the worker (when ``settings.archive.enabled``)."""
    if not settings.archive.enabled:
        return
    archiver = Archiver(settings, deps.object_store)

    @app.service
    class ArchiverService(Service):
        """Starts the archiver with the worker; a graceful stop flushes every buffer."""

        _stopping: asyncio.Event
        _task: asyncio.Task[None] | None = None

        async def on_start(self) -> None:
            self._stopping = asyncio.Event()
            await archiver.start()
            self._task = asyncio.create_task(archiver.run(self._stopping), name=SERVICE_NAME)
            self._task.add_done_callback(_report_crash)

        async def on_stop(self) -> None:
            if self._task is not None:
                self._stopping.set()
                try:
                    await asyncio.wait_for(self._task, timeout=15)
                finally:
                    await archiver.close()


def _report_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the archiver stopped: %r", task.exception())
