"""Replay throughput from the archive and from the topics (events/s).

    python -m benchmarks.replay_bench [--events 20000]

Starts a fresh embedded broker and SeaweedFS on free loopback ports, produces WatchEvents, writes
them to the archive in files of 5,000 records (the archiver's format), then times a full
replay from each source into a rebuild-style collector (read + decode every value).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaProducer

from benchmarks.common import Figure
from tritontube.deps import build_deps
from tritontube.devstack.broker import tansu_process
from tritontube.devstack.process import free_port
from tritontube.devstack.seaweedfs import SeaweedFSServer
from tritontube.domain.events import WatchEvent
from tritontube.replay.sources import ArchiveSource, Selection, Source, TopicSource
from tritontube.settings import KafkaSettings, Settings
from tritontube.storage.s3 import S3ObjectStore
from tritontube.streams import archive
from tritontube.streams.admin import ensure_topics

TOPIC = "watch-events"


async def _produce(kafka: KafkaSettings, n: int) -> None:
    codec = build_deps(Settings()).codec
    now = datetime.now(UTC)
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, linger_ms=20)
    await producer.start()
    try:
        batch = []
        for i in range(n):
            e = WatchEvent(f"e{i}", f"v{i % 500}", f"u{i % 97}", "HEARTBEAT", float(i), now, now)
            batch.append(await producer.send(TOPIC, codec.encode(e), key=e.video_id.encode()))
        await asyncio.gather(*batch)
    finally:
        await producer.stop()


async def _archive(kafka: KafkaSettings, store: S3ObjectStore) -> None:
    source = TopicSource(kafka, Selection((TOPIC,)))
    await source.open()
    parts: dict[int, list[archive.ArchivedRecord]] = {}
    async for batch in source.batches():
        for r in batch:
            parts.setdefault(r.partition, []).append(r)
    await source.close()
    for records in parts.values():
        for i in range(0, len(records), 5000):
            chunk = records[i : i + 5000]
            key = archive.archive_key("archive/", chunk)
            await store.put_bytes(key, archive.encode_file(chunk), archive.CONTENT_TYPE)


async def _time(source: Source) -> tuple[int, float]:
    codec = build_deps(Settings()).codec
    started = time.perf_counter()
    await source.open()
    n = 0
    try:
        async for batch in source.batches():
            for r in batch:
                codec.decode(r.value)
            n += len(batch)
    finally:
        await source.close()
    return n, time.perf_counter() - started


async def bench(events: int, workdir: Path) -> list[tuple[str, int, float]]:
    broker = tansu_process("127.0.0.1", free_port(), workdir / "logs")
    s3 = SeaweedFSServer(workdir / "objects", free_port(), "tritontube", ["http://127.0.0.1"])
    broker.start()
    try:
        with s3:
            kafka = KafkaSettings(
                bootstrap_servers=f"127.0.0.1:{broker.port}", embedded_broker_compat=True
            )
            store = S3ObjectStore(
                endpoint_url=s3.endpoint_url,
                bucket=s3.bucket,
                access_key_id=s3.access_key_id,
                secret_access_key=s3.secret_access_key,
            )
            try:
                await ensure_topics(kafka)
                await _produce(kafka, events)
                await _archive(kafka, store)
                rows = []
                for name, source in (
                    ("archive", ArchiveSource(store, "archive/", Selection((TOPIC,)))),
                    ("topics", TopicSource(kafka, Selection((TOPIC,)))),
                ):
                    n, seconds = await _time(source)
                    rows.append((name, n, seconds))
                return rows
            finally:
                store.close()
    finally:
        broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = asyncio.run(bench(args.events, Path(tmp)))
    print(f"{'source':<10} {'events':>8} {'seconds':>8} {'events/s':>10}")
    for name, n, seconds in rows:
        print(f"{name:<10} {n:>8} {seconds:>8.2f} {n / seconds:>10,.0f}")


def run(quick: bool) -> list[Figure]:
    """``make bench`` entry (benchmarks/common.py): events/s of a full replay from each source."""
    with tempfile.TemporaryDirectory() as tmp:
        rows = asyncio.run(bench(20_000 if quick else 200_000, Path(tmp)))
    return [
        Figure(
            f"replay from {name} ({n} events)",
            n / seconds,
            "events/s",
            reference="aiokafka_consume",
        )
        for name, n, seconds in rows
    ]


if __name__ == "__main__":
    main()
