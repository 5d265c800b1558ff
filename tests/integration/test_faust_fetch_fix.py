"""Faust's fetch, on the real broker: pausing the last active partition must not fetch the rest.

Faust's consumer thread waits in aiokafka's ``fetched_records`` on the live set of active
partitions; aiokafka treats an empty set as "every partition". The test empties the set during
the wait (as the end of table recovery does) and wakes the wait with a record.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from helpers import create_topic
from tritontube.agents import faust_fixes

pytestmark = pytest.mark.integration
TOPIC = "fetch-view"
PAUSED = TopicPartition(TOPIC, 0)  # holds records, never asked for
ACTIVE = TopicPartition(TOPIC, 1)  # asked for, then paused while the fetch waits


@pytest.fixture
def fix_state() -> Iterator[None]:
    was = AIOKafkaConsumerThread._fetch_records
    yield
    AIOKafkaConsumerThread._fetch_records = was  # type: ignore[method-assign]


@pytest.fixture
async def consumer(broker: str) -> AsyncIterator[AIOKafkaConsumer]:
    await create_topic(broker, TOPIC, 2)
    await send(broker, PAUSED, 5)
    consumer = AIOKafkaConsumer(bootstrap_servers=broker, enable_auto_commit=False)
    await consumer.start()
    consumer.assign([PAUSED, ACTIVE])
    await consumer.seek_to_beginning(PAUSED, ACTIVE)
    deadline = time.monotonic() + 10
    while PAUSED not in consumer._fetcher._records:  # prefetched, not yet returned
        assert time.monotonic() < deadline, "the records were never prefetched"
        await asyncio.sleep(0.05)
    try:
        yield consumer
    finally:
        await consumer.stop()


async def send(broker: str, tp: TopicPartition, n: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=broker)
    await producer.start()
    try:
        for i in range(n):
            await producer.send_and_wait(tp.topic, b"r%d" % i, partition=tp.partition)
    finally:
        await producer.stop()


async def fetch_while_pausing(broker: str, consumer: AIOKafkaConsumer) -> dict[Any, Any]:
    thread: Any = SimpleNamespace(consumer=SimpleNamespace(flow_active=True))
    live = {ACTIVE}
    fetch = asyncio.ensure_future(
        AIOKafkaConsumerThread._fetch_records(thread, consumer, live, timeout=1.5)  # type: ignore[arg-type]
    )
    await asyncio.sleep(0.2)
    live.clear()  # Faust pauses the last active partition
    await send(broker, ACTIVE, 1)  # a fetch result wakes the waiting call
    return await fetch


async def test_without_the_fix_the_paused_partition_is_fetched(
    fix_state: None, broker: str, consumer: AIOKafkaConsumer
) -> None:
    # Documents the defect faust_fixes exists for: records of a partition nobody asked for are
    # returned (and Faust drops them), and its position moves past them.
    faust_fixes.remove()
    records = await fetch_while_pausing(broker, consumer)
    assert PAUSED in records
    assert await consumer.position(PAUSED) == 5


async def test_with_the_fix_a_paused_partition_keeps_its_records(
    fix_state: None, broker: str, consumer: AIOKafkaConsumer
) -> None:
    faust_fixes.apply()
    records = await fetch_while_pausing(broker, consumer)
    assert records == {}
    assert await consumer.position(PAUSED) == 0
    # Resumed, it gets every record it holds.
    thread: Any = SimpleNamespace(consumer=SimpleNamespace(flow_active=True))
    again = await AIOKafkaConsumerThread._fetch_records(thread, consumer, {PAUSED}, timeout=1.5)  # type: ignore[arg-type]
    assert [r.value for r in again[PAUSED]] == [b"r%d" % i for i in range(5)]
