"""Dead letters: an undecodable or unprocessable message goes to ``<topic>.dlq`` with its error."""

from __future__ import annotations

import logging

from faust.types import EventT

from tritontube import metrics
from tritontube.agents.topology import Topology
from tritontube.deps import Deps
from tritontube.domain.events import DeadLetter

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
