"""The replay engine: read a source, feed a target, count everything.

Targets (each is a dry run unless ``execute`` is set: it reads and counts, and writes nothing):

* :class:`TopicTarget` — produce the records into a new topic, same partition, key, value,
  headers and record timestamp (copies; a value written before issue 21 gets its schema
  fingerprint in the specification's byte order, see ``streams.codec``);
* :class:`GroupTarget` — position a consumer group at the first selected record of each
  partition, so its consumers re-read from there; a group with live members is refused;
* :class:`RebuildTarget` — fold the records into states and a fresh search index
  (``replay.rebuild``); the caller's ``finish`` writes the index, or in a dry run reports it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from tritontube.replay.rebuild import Rebuild
from tritontube.replay.sources import Batch, Source
from tritontube.settings import KafkaSettings
from tritontube.streams import catalogue
from tritontube.streams.codec import SchemaRegistry

log = logging.getLogger(__name__)


class ReplayRefused(Exception):
    """The replay would do something unsafe (write into a live topic, move a live group)."""


class Target(Protocol):
    async def open(self) -> None: ...
    async def write(self, batch: Batch) -> int: ...
    async def close(self) -> list[str]:
        """Finish; lines for the summary."""
        ...


@dataclass
class Summary:
    source: str
    target: str
    scanned: int = 0
    selected: int = 0
    written: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.selected / self.seconds if self.seconds > 0 else 0.0

    def lines(self) -> list[str]:
        return [
            f"source:   {self.source}",
            f"target:   {self.target}",
            f"scanned:  {self.scanned} records",
            f"selected: {self.selected} records",
            f"written:  {self.written}",
            f"time:     {self.seconds:.2f} s ({self.rate:,.0f} records/s)",
            *self.notes,
        ]


async def run_replay(
    source: Source,
    target: Target,
    summary: Summary,
    progress: Callable[[int, int], None] | None = None,
) -> Summary:
    """Stream every batch of ``source`` into ``target``; ``progress(scanned, total)`` per batch."""
    started = time.perf_counter()
    await source.open()
    try:
        await target.open()
        async for batch in source.batches():
            summary.selected += len(batch)
            if batch:
                summary.written += await target.write(batch)
            if progress is not None:
                progress(source.scanned, source.total)
        summary.notes += await target.close()
    finally:
        await source.close()
    summary.scanned = source.scanned
    summary.seconds = time.perf_counter() - started
    return summary


class TopicTarget:
    """Produce into ``topic`` (created when missing; never a live catalogue topic).

    Values in the legacy fingerprint byte order are produced in the specification's order
    (``registry.to_spec_order``: only those 8 bytes change). Without ``execute`` nothing is
    created or produced: :meth:`close` says what would have been.
    """

    def __init__(
        self,
        kafka: KafkaSettings,
        topic: str,
        partitions: int | None = None,
        *,
        execute: bool,
        registry: SchemaRegistry | None = None,
    ) -> None:
        live = set(catalogue.all_topic_names())
        if topic in live:
            raise ReplayRefused(f"{topic!r} is a live catalogue topic; replay into a new topic")
        self.kafka = kafka
        self.topic = topic
        self.partitions = partitions or kafka.partitions
        self.execute = execute
        self.registry = registry or SchemaRegistry()
        self._producer: AIOKafkaProducer | None = None
        self._exists: int | None = None  # partitions of an existing topic (dry run)
        self._count = 0
        self.reordered = 0

    async def open(self) -> None:
        if not self.execute:
            self._exists = await topic_partitions(self.kafka, self.topic)
            if self._exists:
                self.partitions = self._exists
            return
        await create_topic(self.kafka, self.topic, self.partitions, compacted=False)
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.kafka.bootstrap_servers, linger_ms=20, acks="all"
        )
        await self._producer.start()
        parts = await self._producer.partitions_for(self.topic)
        self.partitions = len(parts)

    def _value(self, value: bytes | None) -> bytes | None:
        fixed = self.registry.to_spec_order(value)
        if fixed is not value:
            self.reordered += 1
        return fixed

    async def write(self, batch: Batch) -> int:
        if not self.execute:
            for r in batch:
                self._value(r.value)
            self._count += len(batch)
            return 0
        producer = self._producer
        if producer is None:
            raise RuntimeError("target not opened")
        futures = [
            await producer.send(
                self.topic,
                value=self._value(r.value),
                key=r.key,
                partition=r.partition % self.partitions,
                timestamp_ms=r.timestamp_ms,
                headers=list(r.headers) or None,
            )
            for r in batch
        ]
        await asyncio.gather(*futures)
        self._count += len(futures)
        return len(futures)

    async def close(self) -> list[str]:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()
        reordered = f"fingerprints put in spec byte order: {self.reordered}"
        if not self.execute:
            where = (
                f"the existing topic {self.topic!r} ({self._exists} partitions)"
                if self._exists
                else f"a new topic {self.topic!r} ({self.partitions} partitions)"
            )
            return [f"DRY RUN: would produce {self._count} records into {where}", reordered,
                    "(--execute)"]  # fmt: skip
        return [f"produced: {self._count} records into {self.topic!r}", reordered]


class GroupTarget:
    """Plan (and with ``execute``, commit) a group's offsets at the first selected records."""

    def __init__(self, kafka: KafkaSettings, group: str, *, execute: bool) -> None:
        self.kafka = kafka
        self.group = group
        self.execute = execute
        self.plan: dict[TopicPartition, int] = {}

    async def open(self) -> None:
        members = await group_members(self.kafka, self.group)
        if members:
            raise ReplayRefused(
                f"group {self.group!r} has {members} live member(s); stop them first"
            )

    async def write(self, batch: Batch) -> int:
        for r in batch:
            tp = TopicPartition(r.topic, r.partition)
            if tp not in self.plan or r.offset < self.plan[tp]:
                self.plan[tp] = r.offset
        return 0

    async def close(self) -> list[str]:
        lines = [
            f"  {tp.topic}[{tp.partition}] -> offset {off}"
            for tp, off in sorted(self.plan.items(), key=lambda kv: (kv[0].topic, kv[0].partition))
        ]
        if not self.plan:
            return ["nothing selected: group offsets unchanged"]
        if not self.execute:
            return [f"DRY RUN: would set group {self.group!r} offsets:", *lines, "(--execute)"]
        await commit_offsets(self.kafka, self.group, self.plan)
        return [f"committed group {self.group!r} offsets:", *lines]


class RebuildTarget:
    """Collect records for :class:`~tritontube.replay.rebuild.Rebuild` (folded on close)."""

    def __init__(self, rebuild: Rebuild, finish: Callable[[Rebuild], object]) -> None:
        self.rebuild = rebuild
        self._finish = finish

    async def open(self) -> None:
        return None

    async def write(self, batch: Batch) -> int:
        return self.rebuild.add(batch)

    async def close(self) -> list[str]:
        self.rebuild.fold()
        result = self._finish(self.rebuild)
        if asyncio.iscoroutine(result):
            result = await result
        notes = [
            f"rebuilt:  {len(self.rebuild.states)} video states "
            f"({self.rebuild.applied} changes, {self.rebuild.undecodable} undecodable skipped, "
            f"{self.rebuild.legacy} read in the legacy byte order)"
        ]
        if isinstance(result, list):
            notes += [str(x) for x in result]
        return notes


async def create_topic(
    kafka: KafkaSettings, name: str, partitions: int, *, compacted: bool
) -> bool:
    """Create ``name`` unless it exists; True when created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    await admin.start()
    try:
        if name in set(await admin.list_topics()):
            return False
        config = {"cleanup.policy": "compact" if compacted else "delete"}
        topic = NewTopic(name, partitions, kafka.replication_factor, topic_configs=config)
        try:
            await admin.create_topics([topic])
        except TopicAlreadyExistsError:
            return False
        return True
    finally:
        await admin.close()


async def topic_partitions(kafka: KafkaSettings, name: str) -> int:
    """How many partitions ``name`` has; 0 when it does not exist."""
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    await admin.start()
    try:
        if name not in set(await admin.list_topics()):
            return 0
        described = await admin.describe_topics([name])
    finally:
        await admin.close()
    return max((len(t.get("partitions", ())) for t in described), default=0)


async def group_members(kafka: KafkaSettings, group: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    await admin.start()
    try:
        described = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    count = 0
    for response in described:
        for entry in response.groups:
            # (error_code, group_id, state, protocol_type, protocol, members, ...)
            count += len(entry[5])
    return count


async def commit_offsets(
    kafka: KafkaSettings, group: str, offsets: dict[TopicPartition, int]
) -> None:
    """Commit ``offsets`` for ``group`` (a manual-assignment commit, no group join)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit(dict(offsets))
    finally:
        await consumer.stop()
