"""Hot topics consumed in whole fetched batches, inside Faust's consumer and assignment.

Faust hands every record to its agents one by one: a ``ConsumerMessage``, a race of three
tasks per record in the fetch loop (``wait_first``), the conductor's decode and queue, the
stream's iteration and an acknowledgement per event. Measured on this machine that machinery
caps a one-agent Faust app at ~5k events per CPU-second, whatever the agent does; the raw
aiokafka consumer underneath reads ~750k. The watch-event path needs 30k per second.

What we keep of Faust: its consumer (the aiokafka consumer thread, the group membership and
the ``PartitionAssignor`` that co-partitions tables with their source topics: the query views
route by it), its offset bookkeeping and commit loop (the producer is flushed before every
commit), its tables (stores, changelogs, standby replicas, recovery) and its rebalance
protocol (streams paused, in-flight work awaited, offsets committed before partitions go).
What we replace, for the topics registered here: the path from a fetched record to an agent.

* :class:`BatchingConsumer` takes the records of registered topics out of each fetch
  (``_wait_next_records``) with the same checks Faust's ``getmany`` applies (flow active, the
  partition active, not read before) and hands each partition's records, as one
  :class:`Batch`, to the topic's lane. Other topics' records go on to Faust's agents.
* A **lane** (one task per topic) runs the topic's handlers on each batch in fetch order.
  A handler folds the whole batch and writes each table key once into a :class:`Checkpoint`.
  A lane that fell behind takes everything waiting in it at once, merged per partition
  (:func:`coalesce`, up to the topic's batch limit): a slow step (an index commit) is paid
  once for the backlog, and the lane frees room before the fetch loop has to wait for it
  (a full lane holds up the fetch loop, and so every other topic of the worker).
* The **committer** (one task) delivers each checkpoint in the order quix-streams'
  checkpoints do: the output records (and dead letters) first; once the broker has them, the
  table changelog records (the latest value per key); once those are in, the batch's offsets
  are acknowledged to Faust, whose commit loop commits them after flushing the producer. A
  table change therefore never reaches its changelog before the outputs it caused, and no
  offset is committed before both: a worker killed at any point redelivers the batch, and
  the folds' event-id dedupe makes the second pass change nothing it already changed.
* While a batch is in a lane or the committer, its last record is tracked as an
  unacknowledged message, so a rebalance (``wait_empty``) waits for it before it commits and
  gives the partition up. An acknowledgement from an older consumer generation is dropped.
* Table values go straight into the table's store (reads later in the batch and in the next
  batch see them at once) and their changelog records through aiokafka's batch API, one
  ``send_batch`` per changelog partition: the changelog partition is the source partition,
  as Faust's own table writes choose it.

This module uses Faust's and aiokafka's internals (named below) and refuses any other
faust-streaming than the version it was written against; ``tests/unit/test_batching.py``
exercises the seams it relies on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import faust
from aiokafka.structs import RecordMetadata
from faust.events import Event
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, EventT, TopicT
from faust.types.tuples import ack_lock
from mode.utils.futures import notify

from tritontube import metrics
from tritontube.agents.tables import TypedTable, attributed_to
from tritontube.streams.codec import CodecError
from tritontube.streams.records import EventCodec

log = logging.getLogger(__name__)

FAUST_VERSION = "0.15.3"
LANE_DEPTH = 4  # batches waiting per lane before the fetch loop waits
MERGED_RECORDS = 20_000  # most records of waiting batches a lane merges into one step
T = TypeVar("T")


def check_faust_version() -> None:
    if faust.__version__ != FAUST_VERSION:
        raise RuntimeError(
            f"tritontube.agents.batching is written against faust-streaming {FAUST_VERSION} "
            f"internals; found {faust.__version__}: re-check the seams it uses first"
        )


@dataclass(frozen=True)
class Batch:
    """The records of one partition from one fetch, in offset order."""

    tp: TP
    records: Sequence[Any]  # aiokafka ConsumerRecord
    event: EventT  # a Faust event of the last record: table writes are attributed to it
    generation: int  # the consumer generation that fetched it
    start: int  # the first offset it acknowledges (a gap before its first record included)
    memo: dict[Any, Any] = field(default_factory=dict, compare=False)

    @property
    def partition(self) -> int:
        return self.tp.partition

    def decoded(self, codec: EventCodec, record_type: type[Any]) -> list[Any]:
        """Each record's value decoded as ``record_type`` (the :class:`CodecError` in its
        place, None for a tombstone: a compacted topic's deletion), once per batch: the
        topic's handlers share it."""
        found = self.memo.get(record_type)
        if found is None:
            found = self.memo[record_type] = [
                _try(codec, r.value, record_type) for r in self.records
            ]
        return found


def _try(codec: EventCodec, value: bytes | None, record_type: type[Any]) -> Any:
    if value is None:
        return None
    try:
        return codec.decode_as(value, record_type)
    except CodecError as exc:
        return exc


Handler = Callable[[Batch, "Checkpoint"], Awaitable[None]]


@dataclass(frozen=True)
class Route:
    name: str  # the agent's name (metrics, logs)
    handler: Handler
    max_records: int | None = None  # at most this many records per batch


@dataclass
class _Pending:
    """One checkpoint on its way: the batch it covers and the output deliveries it awaits."""

    batch: Batch
    sentinels: list[Any]  # the tracked messages of the fetched batches it merges
    checkpoint: Checkpoint
    outputs: list[asyncio.Future[Any]]


# Records by (topic, partition): key, value (None: a tombstone), timestamp (ms)
Rows = dict[tuple[str, int], list[tuple[bytes | None, bytes | None, int | None]]]


class Checkpoint:
    """What handlers produce from one batch: output records, then table changes."""

    def __init__(self, batch: Batch) -> None:
        self.batch = batch
        self._outputs: dict[
            tuple[str, int], list[tuple[bytes | None, bytes | None, int | None]]
        ] = {}
        # changelog topic -> partition -> key -> value (the latest per key)
        self._changes: dict[tuple[str, int], dict[bytes, bytes | None]] = {}
        self._stores: dict[str, Any] = {}

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        *,
        partition: int,
        timestamp_ms: int | None = None,
    ) -> None:
        """An output record (None: a tombstone), delivered before the batch's table changes."""
        self._outputs.setdefault((topic, partition), []).append((key, value, timestamp_ms))

    def put(
        self, table: TypedTable[T], key: str, value: T, *, partition: int | None = None
    ) -> None:
        """``table[key] = value`` now (in the store), in the changelog at the checkpoint.

        ``partition``: the changelog partition; by default the one Faust would choose (the
        key's for a table that uses the partitioner, else the source partition).
        """
        raw_key = key.encode()
        raw = table.remember(raw_key, value)
        with attributed_to(self.batch.event):
            table.table.data[raw_key] = raw
        if partition is None:
            partition = table.partition_for(raw_key, self.batch.partition)
        topic = table.changelog_topic
        self._changes.setdefault((topic, partition), {})[raw_key] = raw
        self._stores[topic] = table.table

    def delete(self, table: TypedTable[T], key: str, *, partition: int | None = None) -> None:
        """``del table[key]`` now (in the store), a tombstone in the changelog at the
        checkpoint."""
        raw_key = key.encode()
        table.forget(raw_key)
        with attributed_to(self.batch.event):
            table.table.data.pop(raw_key, None)
        if partition is None:
            partition = table.partition_for(raw_key, self.batch.partition)
        topic = table.changelog_topic
        self._changes.setdefault((topic, partition), {})[raw_key] = None
        self._stores[topic] = table.table

    @property
    def empty(self) -> bool:
        return not self._outputs and not self._changes

    async def send_outputs(self, producer: Any) -> list[asyncio.Future[Any]]:
        return await _send_all(producer, self._outputs)

    async def send_changes(self, producer: Any) -> list[asyncio.Future[Any]]:
        rows: Rows = {
            tp: [(k, v, None) for k, v in changes.items()] for tp, changes in self._changes.items()
        }
        return await _send_all(producer, rows)

    def persisted(self, results: Sequence[Any]) -> None:
        """Tell each table's store the changelog offsets it now holds (Faust's
        ``_on_changelog_sent`` does this per record; a RocksDB store resumes from it)."""
        for meta in results:
            if isinstance(meta, RecordMetadata):
                store = self._stores.get(meta.topic)
                if store is not None:
                    store.data.set_persisted_offset(TP(meta.topic, meta.partition), meta.offset)


async def _send_all(producer: Any, rows: Rows) -> list[asyncio.Future[Any]]:
    """Every row through aiokafka's batch API: one ``send_batch`` per full batch."""
    futures: list[asyncio.Future[Any]] = []
    for (topic, partition), records in rows.items():
        batch = producer.create_batch()
        for key, value, timestamp_ms in records:
            if batch.append(key=key, value=value, timestamp=timestamp_ms) is None:
                futures.append(await producer.send_batch(batch, topic, partition=partition))
                batch = producer.create_batch()
                if batch.append(key=key, value=value, timestamp=timestamp_ms) is None:
                    raise ValueError(f"a record for {topic} is larger than a producer batch")
        futures.append(await producer.send_batch(batch, topic, partition=partition))
    return futures


@dataclass
class BatchRouter:
    """Which topics are consumed in batches, and by which handlers."""

    routes: dict[str, list[Route]] = field(default_factory=dict)
    channels: list[TopicT] = field(default_factory=list)

    def route(self, topic: TopicT, route: Route) -> None:
        """Consume ``topic`` (a Faust topic of one topic name) in batches with ``route``."""
        (name,) = topic.topics
        if name not in self.routes:
            self.channels.append(topic)
        self.routes.setdefault(name, []).append(route)

    def subscribe(self, app: faust.App) -> None:
        """Make Faust subscribe to every routed topic (the assignor co-partitions them with
        the tables like an agent's topics); their records never reach the conductor."""
        for channel in self.channels:
            app.topics.add(channel)

    def max_records(self, topic: str) -> int | None:
        limits = [r.max_records for r in self.routes[topic] if r.max_records]
        return min(limits) if limits else None


class BatchingConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer, with the routed topics' records taken out of each fetch."""

    _lanes: dict[str, asyncio.Queue[Batch]]
    _committer_queue: asyncio.Queue[_Pending] | None

    @property
    def router(self) -> BatchRouter:
        return self.app.batch_router  # type: ignore[attr-defined]

    async def _wait_next_records(self, timeout: float) -> tuple[Any, Any]:
        records, active = await super()._wait_next_records(timeout)
        routes = self.router.routes
        if not records or not routes:
            return records, active
        hot = [tp for tp in records if tp.topic in routes]
        if not hot:
            return records, active
        records = dict(records)
        generation = self.app.consumer_generation_id
        for tp in hot:
            fetched = records.pop(tp)
            if not self.flow_active or self.app.consumer_generation_id != generation:
                continue  # a rebalance began: Faust seeks back to the committed offsets
            if active is not None and tp not in active and tp not in self._buffered_partitions:
                continue
            await self._dispatch(tp, fetched, generation)
        return records, active

    async def _dispatch(self, tp: TP, fetched: Sequence[Any], generation: int) -> None:
        read = self._read_offset[tp]
        if read is not None:
            fetched = [r for r in fetched if r.offset >= read]
        if not fetched:
            return
        limit = self.router.max_records(tp.topic) or len(fetched)
        for i in range(0, len(fetched), limit):
            chunk = fetched[i : i + limit]
            sentinel = self._to_message(tp, chunk[-1])
            self.track_message(sentinel)
            last = chunk[-1]
            event = Event(self.app, last.key, last.value, last.headers, sentinel)
            start = chunk[0].offset if read is None else min(chunk[0].offset, read + 1)
            batch = Batch(tp, chunk, event, generation, start)
            read = last.offset
            self._read_offset[tp] = read
            await self._lane(tp.topic).put(batch)

    # -- lanes and the committer ----------------------------------------------------
    def _lane(self, topic: str) -> asyncio.Queue[Batch]:
        lanes = self.__dict__.setdefault("_lanes", {})
        lane = lanes.get(topic)
        if lane is None:
            lane = lanes[topic] = asyncio.Queue(maxsize=LANE_DEPTH)
            self.add_future(self._run_lane(topic, lane))
        return lane

    def _committer(self) -> asyncio.Queue[_Pending]:
        queue = self.__dict__.get("_committer_queue")
        if queue is None:
            queue = self.__dict__["_committer_queue"] = asyncio.Queue(maxsize=64)
            self.add_future(self._run_committer(queue))
        return queue

    async def _run_lane(self, topic: str, lane: asyncio.Queue[Batch]) -> None:
        routes = self.router.routes[topic]
        producer = self.app.producer
        try:
            limit = self.router.max_records(topic) or MERGED_RECORDS
            while True:
                queued = [await lane.get()]
                while not lane.empty():
                    queued.append(lane.get_nowait())
                for batch, sentinels in coalesce(queued, limit):
                    checkpoint = Checkpoint(batch)
                    for route in routes:
                        await route.handler(batch, checkpoint)
                    outputs = await checkpoint.send_outputs(_aiokafka_producer(producer))
                    pending = _Pending(batch, sentinels, checkpoint, outputs)
                    await self._committer().put(pending)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            log.exception("batch lane %s crashed", topic)
            await self.app.crash(exc)
            raise

    async def _run_committer(self, queue: asyncio.Queue[_Pending]) -> None:
        producer = self.app.producer
        try:
            while True:
                group = [await queue.get()]
                while not queue.empty():
                    group.append(queue.get_nowait())
                await _all_delivered([f for p in group for f in p.outputs])
                changes = []
                for pending in group:
                    changes.append(
                        await pending.checkpoint.send_changes(_aiokafka_producer(producer))
                    )
                for pending, futures in zip(group, changes, strict=True):
                    pending.checkpoint.persisted(await _all_delivered(futures))
                    self._ack_batch(pending)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            log.exception("batch committer crashed")
            await self.app.crash(exc)
            raise

    def _ack_batch(self, pending: _Pending) -> None:
        """Acknowledge every offset the batch covers (Faust commits them at its next commit)."""
        batch = pending.batch
        tp = batch.tp
        with ack_lock:
            for sentinel in pending.sentinels:
                sentinel.acked = True
                self._unacked_messages.discard(sentinel)
            current = (
                self.app.consumer_generation_id == batch.generation and tp in self.assignment()
            )
            if current:
                committed = self._committed_offset[tp]
                start = batch.start if committed is None else max(batch.start, committed)
                index = self._acked_index[tp]
                new = [o for o in range(start, batch.records[-1].offset + 1) if o not in index]
                index.update(new)
                self._acked[tp].extend(new)
                self._n_acked += len(new)
                metrics.BATCH_EVENTS_DONE.labels(tp.topic).inc(len(batch.records))
            notify(self._waiting_for_ack)


def coalesce(queued: Sequence[Batch], limit: int) -> Iterator[tuple[Batch, list[Any]]]:
    """The batches waiting in a lane, merged per partition (in order) into batches of at
    most ``limit`` records, each with the tracked messages of the batches it merges: a lane
    that falls behind (a slow index commit) takes its backlog in fewer, larger steps."""
    by_tp: dict[tuple[TP, int], list[Batch]] = {}
    for batch in queued:
        by_tp.setdefault((batch.tp, batch.generation), []).append(batch)
    for batches in by_tp.values():
        chunk: list[Batch] = []
        size = 0
        for batch in batches:
            if chunk and size + len(batch.records) > limit:
                yield _merged(chunk)
                chunk, size = [], 0
            chunk.append(batch)
            size += len(batch.records)
        if chunk:
            yield _merged(chunk)


def _merged(chunk: list[Batch]) -> tuple[Batch, list[Any]]:
    sentinels = [b.event.message for b in chunk]
    if len(chunk) == 1:
        return chunk[0], sentinels
    first, last = chunk[0], chunk[-1]
    records = [r for b in chunk for r in b.records]
    return Batch(first.tp, records, last.event, last.generation, first.start), sentinels


async def _all_delivered(futures: Sequence[asyncio.Future[Any]]) -> list[Any]:
    """The deliveries' results; a failed delivery fails the worker (nothing is committed)."""
    if not futures:
        return []
    return list(await asyncio.gather(*futures))


def _aiokafka_producer(producer: Any) -> Any:
    """The aiokafka producer inside Faust's (``Producer._ensure_producer``)."""
    return producer._ensure_producer()


class BatchingTransport(faust_aiokafka.Transport):
    Consumer = BatchingConsumer


class BatchingApp(faust.App):
    """``faust.App`` whose consumer takes :attr:`batch_router`'s topics out of each fetch."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        check_faust_version()
        super().__init__(*args, **kwargs)
        self.batch_router = BatchRouter()

    def _new_transport(self) -> Any:
        return BatchingTransport(self.conf.broker_consumer, self)
