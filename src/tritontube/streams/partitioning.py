"""Which partition a key lands in: Kafka's default partitioner (murmur2 of the key bytes).

The same function aiokafka's producer (and so Faust, and Kafka's Java client) applies to a
keyed record, so a worker can tell which of its table keys belong to which partition.
"""

from __future__ import annotations

from aiokafka.partitioner import murmur2


def partition_of(key: bytes, partitions: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % partitions
