"""agents/batching.py: the Faust and aiokafka seams it relies on, and the checkpoint's records.

The batched consumer uses faust-streaming internals; these tests fail first when an upgrade
moves one of them (the module also refuses any version but the one it was written against).
The checkpoint tests drive :class:`Checkpoint` with a recording stand-in of aiokafka's batch
API (pure logic: which records go where, once per key).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from dataclasses import dataclass, field
from typing import Any

import faust
import pytest
from aiokafka.producer.producer import AIOKafkaProducer
from faust.transport.consumer import Consumer
from faust.transport.drivers import aiokafka as faust_aiokafka

from tritontube.agents import batching
from tritontube.agents.batching import Batch, Checkpoint


def test_the_faust_version_is_the_one_the_module_was_written_for() -> None:
    assert faust.__version__ == batching.FAUST_VERSION
    batching.check_faust_version()


def test_a_different_faust_version_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(faust, "__version__", "0.16.0")
    with pytest.raises(RuntimeError, match=r"found 0\.16\.0"):
        batching.check_faust_version()


def test_the_consumer_internals_used_are_there() -> None:
    wait = inspect.signature(Consumer._wait_next_records)
    assert list(wait.parameters) == ["self", "timeout"]
    source = inspect.getsource(Consumer)
    for name in (
        "_read_offset",
        "_acked",
        "_acked_index",
        "_unacked_messages",
        "_committed_offset",
        "_buffered_partitions",
        "_n_acked",
        "_waiting_for_ack",
    ):
        assert f"self.{name}" in source, name  # fmt: skip
    assert callable(faust_aiokafka.Consumer._to_message)
    assert callable(faust_aiokafka.Producer._ensure_producer)
    assert batching.BatchingTransport.Consumer is batching.BatchingConsumer
    # aiokafka's batch API, which Checkpoint sends through
    assert callable(AIOKafkaProducer.create_batch)
    assert "partition" in inspect.signature(AIOKafkaProducer.send_batch).parameters


@dataclass
class FakeBatch:
    room: int
    records: list[tuple[bytes | None, bytes, int | None]] = field(default_factory=list)

    def append(self, *, key: bytes | None, value: bytes, timestamp: int | None) -> object:
        if len(self.records) == self.room:
            return None
        self.records.append((key, value, timestamp))
        return object()


@dataclass
class RecordingProducer:
    """aiokafka's create_batch/send_batch, recording what was sent where."""

    room: int = 3
    sent: list[tuple[str, int, list[Any]]] = field(default_factory=list)

    def create_batch(self) -> FakeBatch:
        return FakeBatch(self.room)

    async def send_batch(self, batch: FakeBatch, topic: str, *, partition: int) -> Any:
        self.sent.append((topic, partition, batch.records))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


@dataclass
class FakeTable:
    """The parts of a Faust table and TypedTable that Checkpoint.put uses."""

    changelog_topic: str
    use_partitioner: bool = False
    partitions: int = 4
    data: dict[bytes, bytes] = field(default_factory=dict)

    @property
    def table(self) -> FakeTable:
        return self

    def remember(self, raw_key: bytes, value: str) -> bytes:
        return value.encode()

    def partition_for(self, raw_key: bytes, source_partition: int) -> int:
        return 3 if self.use_partitioner else source_partition


def batch_of(partition: int) -> Batch:
    tp = faust.types.TP("watch-events", partition)
    return Batch(tp, [], event=object(), generation=1, start=0)  # type: ignore[arg-type]


async def test_outputs_are_sent_in_producer_batches_per_partition() -> None:
    out = Checkpoint(batch_of(2))
    for i in range(5):
        out.send("by-user", f"u{i}".encode(), b"v", partition=i % 2, timestamp_ms=10 + i)
    producer = RecordingProducer(room=2)
    futures = await out.send_outputs(producer)
    assert len(futures) == len(producer.sent)
    by_partition: dict[int, list[Any]] = {}
    for topic, partition, records in producer.sent:
        assert topic == "by-user"
        by_partition.setdefault(partition, []).extend(records)
    assert by_partition == {
        0: [(b"u0", b"v", 10), (b"u2", b"v", 12), (b"u4", b"v", 14)],
        1: [(b"u1", b"v", 11), (b"u3", b"v", 13)],
    }


async def test_a_key_put_twice_is_one_changelog_record_with_its_latest_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(batching, "attributed_to", lambda event: contextlib.nullcontext())
    sessions = FakeTable("app-sessions-changelog")
    sources = FakeTable("app-sources-changelog", use_partitioner=True)
    out = Checkpoint(batch_of(1))
    out.put(sessions, "v1/alice", "first")  # type: ignore[arg-type]
    out.put(sessions, "v1/alice", "second")  # type: ignore[arg-type]
    out.put(sources, "v1", "source")  # type: ignore[arg-type]
    # the store holds the value at once (later reads in the batch see it)
    assert sessions.data == {b"v1/alice": b"second"}
    producer = RecordingProducer()
    assert await out.send_outputs(producer) == []
    await out.send_changes(producer)
    assert sorted(producer.sent) == [
        ("app-sessions-changelog", 1, [(b"v1/alice", b"second", None)]),  # source partition
        ("app-sources-changelog", 3, [(b"v1", b"source", None)]),  # the key's partition
    ]


def fetched(partition: int, first: int, count: int, generation: int = 1) -> Batch:
    @dataclass
    class Record:
        offset: int

    @dataclass
    class Event:
        message: object

    tp = faust.types.TP("search-documents", partition)
    records = [Record(first + i) for i in range(count)]
    event = Event(message=("sentinel", partition, first))
    return Batch(tp, records, event, generation, first)  # type: ignore[arg-type]


def test_waiting_batches_merge_per_partition_in_order_up_to_the_limit() -> None:
    queued = [fetched(0, 0, 3), fetched(1, 0, 2), fetched(0, 3, 3), fetched(0, 6, 3)]
    merged = list(batching.coalesce(queued, limit=6))
    shapes = [
        (b.tp.partition, [r.offset for r in b.records], b.start, len(sentinels))
        for b, sentinels in merged
    ]
    assert shapes == [
        (0, [0, 1, 2, 3, 4, 5], 0, 2),
        (0, [6, 7, 8], 6, 1),
        (1, [0, 1], 0, 1),
    ]
    # every fetched batch's tracked message is acknowledged by exactly one merged batch
    assert sorted(s for _, ss in merged for s in ss) == sorted(  # type: ignore[type-var]
        b.event.message for b in queued
    )


def test_batches_of_another_consumer_generation_are_not_merged() -> None:
    merged = list(batching.coalesce([fetched(0, 0, 2, 1), fetched(0, 2, 2, 2)], limit=100))
    assert [(b.generation, len(b.records)) for b, _ in merged] == [(1, 2), (2, 2)]
