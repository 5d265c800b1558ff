"""Dead letters: an undecodable or unprocessable message goes to ``<topic>.dlq`` with its error."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from faust.types import EventT

from tritontube import metrics
from tritontube.agents.topology import Topology
from tritontube.deps import Deps
from tritontube.domain.events import DeadLetter
from tritontube.streams import catalogue
from tritontube.streams.partitioning import partition_of

if TYPE_CHECKING:
    from tritontube.agents.batching import Checkpoint

log = logging.getLogger(__name__)


async def dead_letter(
    topology: Topology, deps: Deps, event: EventT, error: Exception, *, acknowledged: bool = False
) -> None:
    """Publish the raw message and the error to the source topic's DLQ; the stream goes on.

    ``acknowledged``: wait for the broker's acknowledgement (otherwise the send is
    buffered, and flushed before the source offset is committed)."""
    msg = event.message
    record = DeadLetter(
        source_topic=msg.topic,
        source_partition=msg.partition,
        source_offset=msg.offset,
        error_type=type(error).__name__,
        error=str(error)[:2000],
        failed_at=deps.clock.now(),
        key=_as_bytes(event.key),
        value=_as_bytes(event.value),
    )
    log.warning("dead-lettering %s[%s]@%s: %s", msg.topic, msg.partition, msg.offset, record.error)
    pending = await topology.dlq(msg.topic).send(key=record.key, value=deps.codec.encode(record))
    if acknowledged:
        await pending
    metrics.EVENTS_DEAD_LETTERED.labels(msg.topic).inc()


def _as_bytes(value: object) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    return str(value).encode()


def dead_letter_batched(
    out: Checkpoint, deps: Deps, record: Any, error: Exception, *, partitions: int
) -> None:
    """:func:`dead_letter` for a record of a batch (``agents.batching``): the dead letter is
    one of the batch's outputs, delivered before its offset is committed."""
    dead = DeadLetter(
        source_topic=record.topic,
        source_partition=record.partition,
        source_offset=record.offset,
        error_type=type(error).__name__,
        error=str(error)[:2000],
        failed_at=deps.clock.now(),
        key=record.key,
        value=record.value,
    )
    log.warning(
        "dead-lettering %s[%s]@%s: %s", record.topic, record.partition, record.offset, dead.error
    )
    key = dead.key
    out.send(
        catalogue.by_name(record.topic).dlq,
        key,
        deps.codec.encode(dead),
        partition=record.partition % partitions if key is None else partition_of(key, partitions),
    )
    metrics.EVENTS_DEAD_LETTERED.labels(record.topic).inc()
