"""Client-side fixes for the embedded broker's known defects (Tansu 0.6, see EMBEDDED_BROKER.md).

Applied only when ``settings.kafka.embedded_broker_compat`` is on (``tritontube dev`` and the
tests turn it on); each fix is harmless against Apache Kafka.

The one defect that loses data is **ListOffsets LATEST**: Tansu answers the base offset of the
newest stored batch + 1, which is wrong whenever that batch holds more than one record. Faust
reads a changelog up to that "end" when it recovers a table, so it stops early and silently
drops the tail of the table. The fix keeps aiokafka's request and corrects every LATEST answer
with the partition's high watermark (or last stable offset under ``read_committed``), which a
small Fetch reports exactly. ``end_offsets``, ``seek_to_end``/offset resets and Faust's
``highwaters`` all go through the patched method.

The second defect costs latency, not data: Tansu does not answer a waiting **Fetch** early
when records arrive for one of several partitions it covers; it holds the request for most of
its ``fetch_max_wait_ms``. Faust's consumer asks for 1500 ms, so an event on a quiet topic
waited about 0.7 s before an agent saw it (one aiokafka consumer over 24 partitions: p50 0.72 s
with a 1500 ms wait, 0.02 s with 100 ms). The fix caps every consumer's fetch wait at
:data:`MAX_FETCH_WAIT_MS`; against Kafka it only makes idle consumers poll more often.

We do not patch InitProducerId: nothing here uses idempotent or transactional producers
(the design is at-least-once with idempotent consumers), so that defect never triggers.
"""

from __future__ import annotations

import logging
from typing import Any

from aiokafka import errors as kafka_errors
from aiokafka.consumer.fetcher import Fetcher, OffsetResetStrategy
from aiokafka.protocol.fetch import FetchRequest
from aiokafka.structs import TopicPartition

log = logging.getLogger(__name__)

_ORIGINAL = Fetcher._proc_offset_request
_ORIGINAL_INIT = Fetcher.__init__
MAX_FETCH_WAIT_MS = 50
_READ_COMMITTED = 1
_FETCH_WAIT_MS = 100
_FETCH_BYTES = 1024


def apply() -> None:
    """Install the fixes (idempotent)."""
    if is_applied():
        return
    _patched._tritontube_compat = True  # type: ignore[attr-defined]
    Fetcher._proc_offset_request = _patched
    Fetcher.__init__ = _capped_init
    log.info(
        "embedded broker compatibility: LATEST offsets from the high watermark, "
        "fetch wait capped at %d ms",
        MAX_FETCH_WAIT_MS,
    )


def remove() -> None:
    """Undo :func:`apply` (tests use this to show the defect)."""
    Fetcher._proc_offset_request = _ORIGINAL
    Fetcher.__init__ = _ORIGINAL_INIT


def is_applied() -> bool:
    return bool(getattr(Fetcher._proc_offset_request, "_tritontube_compat", False))


def _capped_init(self: Fetcher, *args: Any, **kwargs: Any) -> None:
    wait = kwargs.get("fetch_max_wait_ms", MAX_FETCH_WAIT_MS)
    kwargs["fetch_max_wait_ms"] = min(int(wait), MAX_FETCH_WAIT_MS)
    _ORIGINAL_INIT(self, *args, **kwargs)


async def _patched(
    self: Fetcher, node_id: int, topic_data: dict[str, list[tuple[int, int]]]
) -> dict[Any, Any]:
    offsets: dict[Any, Any] = await _ORIGINAL(self, node_id, topic_data)
    latest = [
        TopicPartition(topic, partition)
        for topic, parts in topic_data.items()
        for partition, ts in parts
        if ts == OffsetResetStrategy.LATEST
    ]
    if not latest:
        return offsets
    marks = await _end_marks(self, node_id, latest)
    for tp, mark in marks.items():
        listed = offsets.get(tp)
        if listed is None:
            continue
        listed_offset, timestamp = listed
        if mark > listed_offset:
            log.debug("corrected LATEST offset of %s from %s to %s", tp, listed_offset, mark)
            offsets[tp] = (mark, timestamp)
    return offsets


async def _end_marks(
    fetcher: Fetcher, node_id: int, tps: list[TopicPartition]
) -> dict[TopicPartition, int]:
    """High watermark (or LSO under read_committed) of each partition, by one Fetch to node_id."""
    # Fetch from offset 0 with a small byte budget: the answer carries the watermarks and at
    # most a batch or two. Tansu answers an empty Fetch (no partitions at all) when min_bytes
    # is 0, so ask for one byte and wait briefly for empty partitions.
    topics: dict[str, list[tuple[int, int, int]]] = {}
    for tp in tps:
        topics.setdefault(tp.topic, []).append((tp.partition, 0, _FETCH_BYTES))
    request = FetchRequest(
        _FETCH_WAIT_MS, 1, _FETCH_BYTES, fetcher._isolation_level, list(topics.items())
    )
    response = await fetcher._client.send(node_id, request)
    marks: dict[TopicPartition, int] = {}
    for topic, partitions in response.topics:
        for partition, error_code, highwater, *rest in partitions:
            if error_code not in (0, kafka_errors.OffsetOutOfRangeError.errno):
                raise kafka_errors.for_code(error_code)(f"{topic}-{partition}")
            mark = highwater
            if fetcher._isolation_level == _READ_COMMITTED and response.API_VERSION >= 4:
                lso = rest[0]
                if lso is not None and lso >= 0:
                    mark = lso
            marks[TopicPartition(topic, partition)] = mark
    return marks
