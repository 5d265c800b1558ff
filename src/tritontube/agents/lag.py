"""Consumer lag of this worker, per assigned topic-partition, as Prometheus gauges.

Lag is what an autoscaler needs: records already in a partition that this worker's consumer
group has not yet processed and committed. For each partition of an agent input topic assigned
to this worker, a Faust timer sets

    tritontube_stream_consumer_lag_records{topic, partition} = high watermark - committed offset

* **high watermark**: the consumer's cached value from its last fetch response
  (``app.consumer.highwater``). It comes from Fetch, not ListOffsets, so it is exact on the
  embedded broker too (see ``streams/broker_compat.py``).
* **committed offset**: the last offset Faust committed for the partition (the sensor hook
  ``Monitor.on_tp_commit``, "next offset to read" as Kafka defines it). Faust clears it at
  every rebalance; until this worker commits again the consumer's fetch position is used,
  which is the committed offset it resumed from plus whatever it has fetched since.

Table changelog partitions are left out (their consumption is table recovery, not work
waiting for an agent). Series of partitions revoked from this worker are removed, so a sum
over workers never counts a partition twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import faust
from aiokafka.errors import IllegalStateError, KafkaError
from faust.exceptions import ConsumerNotStarted
from faust.types import TP
from mode.types.signals import BaseSignalT

from tritontube import metrics
from tritontube.settings import Settings

log = logging.getLogger(__name__)

TIMER_NAME = "consumer-lag"
_POSITION_TIMEOUT = 2.0
PartitionKey = tuple[str, int]


def is_agent_topic(topic: str) -> bool:
    """Topics whose backlog is agent work: not table changelogs, not Kafka's internals, not
    Faust's own (``<app_id>-__assignor-__leader``)."""
    return not (topic.endswith("-changelog") or topic.startswith("__") or "-__" in topic)


def partition_lag(highwater: int | None, committed: int | None, position: int | None) -> int | None:
    """Records in the partition not yet committed; None when the high watermark is unknown.

    ``committed`` and ``position`` are both "next offset to read"; ``position`` is only used
    when nothing has been committed since the last rebalance.
    """
    if highwater is None:
        return None
    done = committed if committed is not None else position
    if done is None:
        return None
    return max(0, highwater - done)


class LagGauges:
    """Publishes one lag value per partition and forgets partitions no longer reported."""

    def __init__(self) -> None:
        self._reported: set[PartitionKey] = set()

    def publish(self, lags: Mapping[PartitionKey, int], assigned: int) -> None:
        for (topic, partition), lag in lags.items():
            metrics.CONSUMER_LAG_RECORDS.labels(topic, str(partition)).set(lag)
        for topic, partition in self._reported - lags.keys():
            metrics.CONSUMER_LAG_RECORDS.remove(topic, str(partition))
        self._reported = set(lags)
        metrics.CONSUMER_ASSIGNED_PARTITIONS.set(assigned)

    def clear(self) -> None:
        self.publish({}, 0)


async def _position(consumer: faust.types.ConsumerT, tp: TP) -> int | None:
    try:
        return await asyncio.wait_for(consumer.position(tp), _POSITION_TIMEOUT)
    except (IllegalStateError, KafkaError, ConsumerNotStarted, TimeoutError) as exc:
        # Revoked while we looked, or the consumer is restarting: try again next tick.
        log.debug("no position for %s: %r", tp, exc)
        return None


async def collect_lag(app: faust.App) -> tuple[dict[PartitionKey, int], int] | None:
    """Lag of every assigned agent-topic partition; None while the worker is rebalancing."""
    if app.rebalancing:
        return None
    consumer = app.consumer
    try:
        assigned: Iterable[TP] = [tp for tp in consumer.assignment() if is_agent_topic(tp.topic)]
    except ConsumerNotStarted:
        return None
    committed = app.monitor.tp_committed_offsets or {}
    lags: dict[PartitionKey, int] = {}
    count = 0
    for tp in sorted(assigned):
        count += 1
        try:
            high = consumer.highwater(tp)
        except (IllegalStateError, ConsumerNotStarted):
            continue
        done = committed.get(tp)
        position = await _position(consumer, tp) if done is None and high is not None else None
        lag = partition_lag(high, done, position)
        if lag is not None:
            lags[(tp.topic, tp.partition)] = lag
    return lags, count


def register(app: faust.App, settings: Settings) -> LagGauges:
    """Refresh the lag gauges every ``settings.worker.lag_interval_seconds`` on every worker."""
    gauges = LagGauges()

    @app.timer(interval=settings.worker.lag_interval_seconds, name=TIMER_NAME)
    async def update_consumer_lag() -> None:
        found = await collect_lag(app)
        if found is not None:
            gauges.publish(*found)

    @app.on_partitions_revoked.connect
    async def on_revoked(
        sender: Any, /, *args: Any, signal: BaseSignalT[Any], **kwargs: Any
    ) -> None:
        # Another worker may own these partitions next; stop reporting them at once.
        gauges.clear()

    return gauges
