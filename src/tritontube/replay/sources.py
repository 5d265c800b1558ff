"""Where replayed records come from: the live topics or the archive.

Both sources yield batches of :class:`~tritontube.streams.archive.ArchivedRecord` in offset
order per partition and know their total up front (for the progress bar).

Selection by time uses the **record timestamps** the source returns, never the broker's
``offsets_for_times`` (the embedded broker answers it by write time). A topic source therefore
scans from the first selected offset to the end offsets captured when it started; an archive
source reads every file of the selected topics and filters record by record.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from aiokafka import AIOKafkaConsumer, TopicPartition

from tritontube.settings import KafkaSettings
from tritontube.storage.port import ObjectStore
from tritontube.streams import archive, broker_compat
from tritontube.streams.archive import ArchivedRecord, ArchiveFile

Batch = list[ArchivedRecord]


@dataclass(frozen=True)
class Selection:
    """Which records to replay: topics, an optional first offset and a timestamp range."""

    topics: tuple[str, ...]
    from_offset: int | None = None  # per partition, inclusive
    to_offset: int | None = None  # per partition, inclusive
    since: datetime | None = None  # record timestamp, inclusive
    until: datetime | None = None  # record timestamp, exclusive

    def __post_init__(self) -> None:
        for moment in (self.since, self.until):
            if moment is not None and moment.tzinfo is None:
                raise ValueError("since/until must be timezone-aware")

    def wants(self, record: ArchivedRecord) -> bool:
        if self.from_offset is not None and record.offset < self.from_offset:
            return False
        if self.to_offset is not None and record.offset > self.to_offset:
            return False
        if self.since is not None and record.timestamp < self.since:
            return False
        return self.until is None or record.timestamp < self.until


class Source:
    """A finite stream of record batches; ``total`` is the number of records it will scan."""

    total: int = 0
    scanned: int = 0

    async def open(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def batches(self) -> AsyncIterator[Batch]:  # pragma: no cover - interface
        raise NotImplementedError

    async def close(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class TopicSource(Source):
    """Records of live topics, from the selected offset up to the end seen at ``open``."""

    def __init__(self, kafka: KafkaSettings, selection: Selection) -> None:
        self.kafka = kafka
        self.selection = selection
        self._consumer: AIOKafkaConsumer | None = None
        self._ends: dict[TopicPartition, int] = {}

    async def open(self) -> None:
        if self.kafka.embedded_broker_compat:
            broker_compat.apply()
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.kafka.bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        try:
            await consumer.start()
        except BaseException:
            await consumer.stop()  # a failed start leaves a client to close
            raise
        self._consumer = consumer
        tps = []
        for topic in self.selection.topics:
            parts = await _partitions(consumer, topic)
            tps += [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        if not tps:
            return
        begins = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
        for tp in tps:
            start = max(begins[tp], self.selection.from_offset or 0)
            stop = ends[tp]
            if self.selection.to_offset is not None:
                stop = min(stop, self.selection.to_offset + 1)
            if start < stop:
                self._ends[tp] = stop
                self.total += stop - start
        consumer.assign(list(self._ends))
        for tp in self._ends:
            consumer.seek(tp, max(begins[tp], self.selection.from_offset or 0))

    async def batches(self) -> AsyncIterator[Batch]:
        consumer = self._consumer
        if consumer is None:
            raise RuntimeError("source not opened")
        pending = dict(self._ends)
        while pending:
            fetched = await consumer.getmany(*pending, timeout_ms=1000, max_records=10_000)
            out: Batch = []
            for tp, messages in fetched.items():
                end = pending.get(tp)
                if end is None:
                    continue
                for msg in messages:
                    if msg.offset >= end:
                        break
                    self.scanned += 1
                    record = archive.from_consumer_record(msg)
                    if self.selection.wants(record):
                        out.append(record)
                if await _position(consumer, tp) >= end:
                    del pending[tp]
            yield out

    async def close(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()


class ArchiveSource(Source):
    """Records of the archive files of the selected topics, filtered by the selection."""

    def __init__(self, store: ObjectStore, prefix: str, selection: Selection) -> None:
        self.store = store
        self.prefix = prefix
        self.selection = selection
        self.files: list[ArchiveFile] = []

    async def open(self) -> None:
        for topic in self.selection.topics:
            listing = await self.store.list(archive.topic_prefix(self.prefix, topic))
            files = archive.parse_keys(self.prefix, (o.key for o in listing))
            self.files += [f for f in files if self._overlaps(f)]
        self.total = sum(f.end_offset - f.start_offset + 1 for f in self.files)

    def _overlaps(self, f: ArchiveFile) -> bool:
        s = self.selection
        if s.from_offset is not None and f.end_offset < s.from_offset:
            return False
        return s.to_offset is None or f.start_offset <= s.to_offset

    async def batches(self) -> AsyncIterator[Batch]:
        for f in self.files:
            data = await self.store.get_bytes(f.key)
            records = await asyncio.to_thread(_decode, data)
            self.scanned += len(records)
            yield [r for r in records if self.selection.wants(r)]

    async def close(self) -> None:
        return None


def _decode(data: bytes) -> list[ArchivedRecord]:
    return list(archive.decode_file(data))


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    for _ in range(20):
        parts = consumer.partitions_for_topic(topic)
        if parts:
            return set(parts)
        await consumer._client.force_metadata_update()
        await asyncio.sleep(0.05)
    raise LookupError(f"topic {topic!r} does not exist")


async def _position(consumer: AIOKafkaConsumer, tp: TopicPartition) -> int:
    return int(await consumer.position(tp))
