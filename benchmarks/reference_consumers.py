"""Reference consumers of the watch-event stream, each run in a process of its own.

    python benchmarks/reference_consumers.py KIND BOOTSTRAP TOPIC EVENTS SCHEMA [PARTITIONS]

KIND is one of

* ``aiokafka``: a plain ``AIOKafkaConsumer.getmany`` loop that only counts records;
* ``aiokafka-count``: the same, decoding every value (Avro single-object, fastavro) and
  counting per video in a dict;
* ``faust``: a minimal Faust app: one agent, decode, per-video count in a Table (memory
  store, changelog), as Faust's documentation writes an agent;
* ``quix``: Quix Streams: decode, per-video count in its RocksDB state (changelog on);
  needs ``quixstreams``, which ``make bench`` installs into ``.venv-quix`` (its pins clash
  with ours: confluent-kafka < 2.13, pydantic < 2.14).

Each reads ``EVENTS`` records of ``TOPIC`` from the beginning with a consumer group of its
own and prints one JSON line: events, wall seconds and CPU seconds of the process (all its
threads) from the first record to the last one processed. Start-up (group join, topic
creation) is outside the interval; so is the final commit. The decode uses fastavro alone
(this file imports nothing of tritontube, so the Quix venv can run it).
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import fastavro

HEADER = 10  # C3 01 + 8 fingerprint bytes


def reader(schema_path: str) -> Any:
    """A decoder of WatchEvent single-object messages (the header skipped, fastavro)."""
    schema = fastavro.parse_schema(json.loads(Path(schema_path).read_text(encoding="utf-8")))
    read = fastavro.schemaless_reader

    def decode(value: bytes) -> Any:
        return read(io.BytesIO(value[HEADER:]), schema, None)

    return decode


class Clock:
    """Wall and CPU time from the first record to the last one."""

    def __init__(self, expect: int) -> None:
        self.expect = expect
        self.seen = 0
        self.wall0 = self.cpu0 = 0.0
        self.wall = self.cpu = 0.0

    def start(self) -> None:
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()

    def tick(self, n: int = 1) -> bool:
        if self.wall0 == 0.0:
            self.start()
        self.seen += n
        if self.seen >= self.expect:
            self.wall = time.perf_counter() - self.wall0
            self.cpu = time.process_time() - self.cpu0
            return True
        return False

    def report(self, kind: str) -> None:
        out = {"kind": kind, "events": self.seen, "seconds": self.wall, "cpu_seconds": self.cpu}
        print("REFERENCE " + json.dumps(out), flush=True)


async def _aiokafka(bootstrap: str, topic: str, expect: int, decode: Any | None) -> Clock:
    """Assigned every partition (no group join to wait for); the clock starts at the first
    fetch, since one fetch can bring every record at once."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    clock = Clock(expect)
    counts: Counter[str] = Counter()
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        while not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        consumer.assign([TopicPartition(topic, p) for p in partitions])
        await consumer.seek_to_beginning()
        clock.start()
        done = False
        while not done:
            batch = await consumer.getmany(timeout_ms=500, max_records=10_000)
            for records in batch.values():
                if decode is not None:
                    for r in records:
                        counts[decode(r.value)["video_id"]] += 1
                if records and clock.tick(len(records)):
                    done = True
    finally:
        await consumer.stop()
    return clock


def run_faust(bootstrap: str, topic: str, expect: int, decode: Any, partitions: int) -> None:
    import faust

    try:  # the embedded broker's fetch-wait cap, as our worker runs with it
        from tritontube.streams import broker_compat

        broker_compat.apply()
    except ImportError:
        pass
    clock = Clock(expect)
    app = faust.App(
        f"bench-faust-{uuid.uuid4().hex[:8]}",
        broker=f"kafka://{bootstrap}",
        store="memory://",
        datadir=tempfile.mkdtemp(prefix="bench-faust-"),
        topic_partitions=partitions,
        broker_session_timeout=6.0,
        broker_heartbeat_interval=1.0,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
    )
    source = app.topic(topic, key_type=bytes, value_type=bytes, value_serializer="raw")
    counts = app.Table("counts", default=int, partitions=partitions, key_type=bytes)

    @app.agent(source, name="count")
    async def count(stream: Any) -> None:
        async for event in stream.events():
            counts[decode(event.value)["video_id"].encode()] += 1
            if clock.tick():
                clock.report("faust")
                os._exit(0)  # a benchmark child: its group times out by itself

    faust.Worker(app, loglevel="WARNING").execute_from_commandline()


def run_quix(bootstrap: str, topic: str, expect: int, decode: Any) -> None:
    from quixstreams import Application

    clock = Clock(expect)
    app = Application(
        broker_address=bootstrap,
        consumer_group=f"bench-quix-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        state_dir=tempfile.mkdtemp(prefix="bench-quix-"),
        consumer_extra_config={"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000},
        use_changelog_topics=True,
        loglevel="WARNING",
    )
    source = app.topic(topic, key_deserializer="bytes", value_deserializer="bytes")
    sdf = app.dataframe(source)

    def count(value: bytes, state: Any) -> None:
        decode(value)  # the state is per message key: the video id
        state.set("views", (state.get("views") or 0) + 1)
        if clock.tick():
            clock.report("quix")
            app.stop()

    sdf.update(count, stateful=True)
    app.run()


def main(argv: list[str]) -> int:
    kind, bootstrap, topic, expect, schema = argv[:5]
    partitions = int(argv[5]) if len(argv) > 5 else 4
    decode = reader(schema)
    if kind in ("aiokafka", "aiokafka-count"):
        clock = asyncio.run(
            _aiokafka(bootstrap, topic, int(expect), decode if kind == "aiokafka-count" else None)
        )
        clock.report(kind)
    elif kind == "faust":
        run_faust(bootstrap, topic, int(expect), decode, partitions)
    elif kind == "quix":
        run_quix(bootstrap, topic, int(expect), decode)
    else:
        raise SystemExit(f"unknown reference {kind!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
