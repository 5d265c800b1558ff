"""The embedded broker's ListOffsets defect, and the client-side fix that makes it exact."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from helpers import create_topic
from tritontube.streams import broker_compat

pytestmark = pytest.mark.integration
TOPIC = "compat-check"


@pytest.fixture
def no_compat() -> Iterator[None]:
    was = broker_compat.is_applied()
    broker_compat.remove()
    yield
    if was:
        broker_compat.apply()


@pytest.fixture
async def batched_topic(broker: str) -> AsyncIterator[str]:
    """Partition 0 ends with one 7-record batch; partition 1 is empty."""
    await create_topic(broker, TOPIC, 2)
    producer = AIOKafkaProducer(bootstrap_servers=broker, linger_ms=50)
    await producer.start()
    futures = [await producer.send(TOPIC, b"x%d" % i, partition=0) for i in range(7)]
    await asyncio.gather(*futures)
    await producer.stop()
    yield broker


async def end_offsets(bootstrap: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        tps = [TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)]
        offsets = await consumer.end_offsets(tps)
        return {tp.partition: off for tp, off in offsets.items()}
    finally:
        await consumer.stop()


async def test_without_the_fix_the_broker_reports_a_short_end_offset(
    no_compat: None, batched_topic: str
) -> None:
    # Documents the defect the compat module exists for; if Tansu fixes it, this fails and the
    # compat module can go.
    assert (await end_offsets(batched_topic))[0] < 7


async def test_with_the_fix_end_offsets_are_exact(no_compat: None, batched_topic: str) -> None:
    broker_compat.apply()
    assert await end_offsets(batched_topic) == {0: 7, 1: 0}


async def test_seek_to_end_lands_after_the_last_record(no_compat: None, batched_topic: str) -> None:
    broker_compat.apply()
    consumer = AIOKafkaConsumer(bootstrap_servers=batched_topic)
    await consumer.start()
    try:
        tp = TopicPartition(TOPIC, 0)
        consumer.assign([tp])
        await consumer.seek_to_end(tp)
        assert await consumer.position(tp) == 7
    finally:
        await consumer.stop()


async def test_every_consumer_fetch_wait_is_capped_with_the_fix(
    no_compat: None, batched_topic: str
) -> None:
    """Tansu holds a multi-partition Fetch for its whole wait: consumers must not ask for long."""

    async def fetch_wait() -> int:
        consumer = AIOKafkaConsumer(
            TOPIC, bootstrap_servers=batched_topic, fetch_max_wait_ms=1500, group_id=None
        )
        await consumer.start()
        try:
            await consumer.getmany(timeout_ms=200)
            return int(consumer._fetcher._fetch_max_wait_ms)
        finally:
            await consumer.stop()

    assert await fetch_wait() == 1500
    broker_compat.apply()
    assert await fetch_wait() == broker_compat.MAX_FETCH_WAIT_MS
