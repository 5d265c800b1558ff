"""Three faust-streaming 0.15.3 defects, fixed here: two silently drop fetched records, one
lets a commit run ahead of the table changes it covers.

Both were caught by ``tests/faults/test_worker_faults.py -k mid_indexing``: a worker restarted
onto a 600-event backlog processed part of it (135 events in the recorded runs) and then
nothing more, in about one run in three. The records were not lost for good (their offsets
were never committed, so the next rebalance would read them again), but the index stayed
stale until then. A trace of the consumer's calls in the failing runs showed both causes.

**An empty partition set means "all partitions" to aiokafka.** Faust's fetcher hands the
consumer thread its *live* set of active partitions and aiokafka's ``fetched_records`` waits
on it, reading ``if partitions and tp not in partitions`` at every wake-up. When the main
thread pauses the last active partition during that wait (the end of changelog recovery
does exactly this), the set becomes empty and aiokafka returns the buffered records of every
assigned partition, paused stream partitions included; their positions advance and Faust
discards the records as not active. :func:`apply` wraps the set in a view that is always
truthy and still answers membership from the live set: an empty set now means "nothing".

**The end of a rebalance resumes stream partitions before seeking them** (upstream issue
#596, open). ``Recovery.on_recovery_completed`` resumes the stream partitions while the
consumer's flow is active, then awaits ``perform_seek`` (a broker round trip), then calls
``flow_control.resume()``, which clears every agent's queue. Records fetched during the
seek are cleared; the seek repairs that only when the group has a committed offset, and even
then the consumer's read offset, raised while it delivers the records fetched before the
seek, makes it drop the re-fetched copies. :class:`StreamSafeRecovery` seeks while the
stream partitions are still paused, then clears the queues, and only then resumes them;
:class:`TableManager` makes Faust use it (the ``TableManager`` app setting).
A stream partition without a committed offset (a new group, or one that has processed nothing
yet) is then put back at the reset policy's position: ``perform_seek`` does not move it, and
the records the rebalance cleared from the queues lie behind the fetcher's position.

**A commit can run ahead of the table changes it covers.** Table writes go to the changelog
through the producer's ``ProducerBuffer`` (``send_soon``), and the consumer flushes the
producer before it commits offsets. But ``ProducerBuffer.flush`` returns as soon as one
message takes longer than 0.1 s to hand to aiokafka (the first send to a topic waits for its
metadata; a full batch waits for room) with the rest still queued, and at once when the
queue is empty while the message taken from it is still being handed over. The commit then
covers events whose changelog records may never be sent: a crash in that window loses the
table change on any Kafka, and the embedded stack's archive checkpoint (``agents.archiver``)
would cover a change the archive does not hold. :func:`apply` makes ``flush`` wait until the
queue is empty and no message is being handed over.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Set
from typing import Any

from faust.tables import TableManager as FaustTableManager
from faust.tables.recovery import Recovery
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.producer import ProducerBuffer
from faust.types import TP

_ORIGINAL_FETCH_RECORDS = AIOKafkaConsumerThread._fetch_records
_ORIGINAL_SEND_PENDING = ProducerBuffer._send_pending
_ORIGINAL_BUFFER_FLUSH = ProducerBuffer.flush
_SENDING = "_tritontube_sending"


class LivePartitions:
    """Membership in Faust's live active-partition set, never falsy (see the module doc)."""

    __slots__ = ("_live",)

    def __init__(self, live: Set[TP]) -> None:
        self._live = live

    def __bool__(self) -> bool:
        return True

    def __contains__(self, tp: object) -> bool:
        return tp in self._live


async def _fetch_records(
    self: AIOKafkaConsumerThread,
    consumer: Any,
    active_partitions: Set[TP] | None,
    timeout: float | None = None,
    max_records: int | None = None,
) -> Any:
    partitions: Any = None if active_partitions is None else LivePartitions(active_partitions)
    return await _ORIGINAL_FETCH_RECORDS(
        self, consumer, partitions, timeout=timeout, max_records=max_records
    )


async def _send_pending(self: ProducerBuffer, fut: Any) -> None:
    # Counted from the moment the message leaves the queue: ``_handle_pending`` takes it and
    # calls this without yielding in between.
    setattr(self, _SENDING, getattr(self, _SENDING, 0) + 1)
    try:
        await _ORIGINAL_SEND_PENDING(self, fut)
    finally:
        setattr(self, _SENDING, getattr(self, _SENDING) - 1)


async def _flush_buffer(self: ProducerBuffer) -> None:
    """Wait until every buffered message is handed to the transport's producer."""
    if self.app is not None and self.app.conf.producer_threaded:
        # Messages go to the producer thread's queue, not through ``_send_pending``.
        await _ORIGINAL_BUFFER_FLUSH(self)
        return
    while self.size or getattr(self, _SENDING, 0):
        if self.state != "running" and self.size:
            raise RuntimeError("Cannot flush: Producer not Running")  # as upstream
        self.message_sent.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.message_sent.wait(), timeout=0.1)


def apply() -> None:
    """Install the fetch and flush fixes (idempotent). The recovery fix is the app's
    ``TableManager``."""
    AIOKafkaConsumerThread._fetch_records = _fetch_records  # type: ignore[method-assign]
    ProducerBuffer._send_pending = _send_pending  # type: ignore[method-assign]
    ProducerBuffer.flush = _flush_buffer  # type: ignore[method-assign]


def remove() -> None:
    """Undo :func:`apply` (tests use this to show the defects)."""
    AIOKafkaConsumerThread._fetch_records = _ORIGINAL_FETCH_RECORDS  # type: ignore[method-assign]
    ProducerBuffer._send_pending = _ORIGINAL_SEND_PENDING  # type: ignore[method-assign]
    ProducerBuffer.flush = _ORIGINAL_BUFFER_FLUSH  # type: ignore[method-assign]


class StreamSafeRecovery(Recovery):
    """:class:`faust.tables.recovery.Recovery` with the stream resume steps reordered."""

    async def on_recovery_completed(self, generation_id: int = 0) -> None:
        self.log.info("Restore complete!")
        await self.app.on_rebalance_complete.send()
        self._set_recovery_ended()
        callbacks = [
            asyncio.ensure_future(
                table.on_recovery_completed(
                    self.actives_for_table[table], self.standbys_for_table[table]
                )
            )
            for table in self.tables.values()
        ]
        if callbacks:
            await asyncio.wait(callbacks)
        if self.app.consumer_generation_id != generation_id:
            self.log.warning(
                "Recovery rebalancing again app id %r param %r",
                self.app.consumer_generation_id,
                generation_id,
            )
            return
        await self._seek_then_resume_streams(
            standbys_ready=not self.app.assignor.assigned_standbys()
        )

    async def _resume_streams(self, generation_id: int = 0) -> None:
        # Faust's path for an app without tables; ours always has tables, but a subclass must
        # not leave the unsafe order reachable.
        await self.app.on_rebalance_complete.send()
        if self.app.consumer_generation_id != generation_id:
            self.log.warning("Recovery rebalancing again")
            return
        await self._seek_then_resume_streams(standbys_ready=True)

    async def _seek_then_resume_streams(self, *, standbys_ready: bool) -> None:
        app: Any = self.app
        consumer = app.consumer
        streams = {tp for tp in consumer.assignment() if not self._is_changelog_tp(tp)}
        if streams:
            self.log.info("Seek stream partitions to committed offsets.")
            timeout = app.conf.broker_request_timeout
            await self._wait(consumer.perform_seek(), timeout=timeout)
            await self._wait(self._reset_uncommitted(streams), timeout=timeout)
        self.completed.set()
        app.flow_control.resume()  # clears the agents' queues: nothing of `streams` is in them
        self.log.dev("Resume stream partitions")
        consumer.resume_partitions(streams)
        consumer.resume_flow()
        await app._fetcher.maybe_start()
        self.tables.on_actives_ready()
        if standbys_ready:
            self.tables.on_standbys_ready()
        app.on_rebalance_end()
        self.log.info("Worker ready")

    async def _reset_uncommitted(self, streams: set[TP]) -> None:
        """Partitions without a committed offset restart from the reset policy's position.

        ``perform_seek`` leaves them where the fetcher got to, which is past every record the
        rebalance discarded (the agents' queues were cleared when it began). Nothing of them
        was processed: a worker commits what it processed before it gives up its partitions.
        """
        app: Any = self.app
        consumer = app.consumer
        uncommitted = [tp for tp in streams if consumer._committed_offset.get(tp) is None]
        if not uncommitted:
            return
        if app.conf.consumer_auto_offset_reset == "latest":
            offsets = await consumer.highwaters(*uncommitted)
        else:
            offsets = await consumer.earliest_offsets(*uncommitted)
        await consumer.seek_wait(offsets)


class TableManager(FaustTableManager):
    """Faust's table manager, recovering with :class:`StreamSafeRecovery`."""

    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = StreamSafeRecovery(self.app, self, beacon=self.beacon, loop=self.loop)
        return self._recovery
