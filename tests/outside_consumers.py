"""Read every topic of a broker the way an outside consumer would, with clients we did not write.

``read_with_librdkafka`` uses librdkafka through ``confluent-kafka`` (PyPI; librdkafka 2.x is
bundled in its wheel — Debian's librdkafka 2.0.2 / ``kcat`` cannot talk to the embedded broker);
``read_with_aiokafka`` uses aiokafka. Both assign every partition from the beginning and read
until the broker has been idle for ``idle`` seconds — never up to the broker's "end offset",
which the embedded broker answers wrongly (docs/topics.md) — so neither depends on whether
``streams.broker_compat`` is applied in this process.
Import as ``from outside_consumers import ...`` (this folder is on ``sys.path``, see helpers.py).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import confluent_kafka
from aiokafka import AIOKafkaConsumer, TopicPartition


@dataclass(frozen=True)
class Message:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def read_with_librdkafka(
    bootstrap: str, *, idle: float = 3.0, limit: float = 60.0
) -> list[Message]:
    """Every message of every topic (blocking; run it in a thread)."""
    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "outside-librdkafka",  # required by the client; nothing is committed
            "enable.auto.commit": False,
            "enable.partition.eof": False,
        }
    )
    try:
        metadata = consumer.list_topics(timeout=10)
        assignment = [
            confluent_kafka.TopicPartition(name, p, confluent_kafka.OFFSET_BEGINNING)
            for name, topic in sorted(metadata.topics.items())
            if not name.startswith("__")
            for p in sorted(topic.partitions)
        ]
        consumer.assign(assignment)
        out: list[Message] = []
        last = time.monotonic()
        deadline = last + limit
        while time.monotonic() - last < idle and time.monotonic() < deadline:
            for m in consumer.consume(num_messages=1000, timeout=0.5):
                if m.error() is not None:
                    raise confluent_kafka.KafkaException(m.error())
                topic, partition, offset = m.topic(), m.partition(), m.offset()
                assert topic is not None and partition is not None and offset is not None
                out.append(Message(topic, partition, offset, m.key(), m.value()))  # type: ignore[arg-type]
                last = time.monotonic()
        return out
    finally:
        consumer.close()


async def read_with_aiokafka(bootstrap: str, *, idle: float = 3.0) -> list[Message]:
    """Every message of every topic, with aiokafka."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
        auto_offset_reset="earliest",
    )  # fmt: skip
    await consumer.start()
    try:
        topics = sorted(t for t in await consumer.topics() if not t.startswith("__"))
        tps = [
            TopicPartition(t, p)
            for t in topics
            for p in sorted(consumer.partitions_for_topic(t) or ())
        ]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        out: list[Message] = []
        last = asyncio.get_running_loop().time()
        while asyncio.get_running_loop().time() - last < idle:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            for tp, records in batch.items():
                out += [Message(tp.topic, tp.partition, r.offset, r.key, r.value) for r in records]
                last = asyncio.get_running_loop().time()
        return out
    finally:
        await consumer.stop()


def librdkafka_version() -> str:
    return str(confluent_kafka.libversion()[0])
