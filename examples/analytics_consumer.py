#!/usr/bin/env python3
"""A data engineer's analytics consumer: running watch time per video, from the public topics.

    python examples/analytics_consumer.py SCHEMA_DIR [--bootstrap 127.0.0.1:9092] [--idle-exit 5]

Needs: Python 3.11+, two packages — aiokafka (the Kafka client) and fastavro (the decoder):
``pip install aiokafka fastavro`` — and the published .avsc files (src/tritontube/schemas,
history/ included). Deliberately imports nothing from tritontube.

Subscribes to `watch-events` and `video-state`, decodes every message with fastavro and the
.avsc files (Avro single-object encoding: C3 01, the writer schema's CRC-64-AVRO fingerprint as 8
little-endian bytes, the body; messages written before issue 21 carry the 8 bytes reversed and
are read too), and prints a table of watch time per video, titled from the latest VideoState,
followed by what it read and what it skipped, by reason. Nothing is skipped silently: the
platform dead-letters bad input itself, so a skipped message here is worth a look.

Watch time: for each (user, video), the forward position deltas between consecutive events, each
capped at 30 s. With --idle-exit N it stops after N seconds without a message: the embedded
development broker answers "end offset" queries wrongly (docs/topics.md), so reading until idle,
not "until the end offset", is how to be sure to have read everything.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
from collections import Counter, defaultdict
from pathlib import Path

try:
    import fastavro
    from aiokafka import AIOKafkaConsumer
    from fastavro.schema import fingerprint, load_schema, to_parsing_canonical_form
except ImportError as missing:  # say what to install instead of a traceback
    sys.exit(
        f"analytics_consumer needs aiokafka and fastavro ({missing}): pip install aiokafka fastavro"
    )

MAX_GAP = 30.0
MAGIC = b"\xc3\x01"
HEADER = 10  # C3 01 + 8 fingerprint bytes


class Skipped(Exception):
    """A message this consumer cannot use; the message is the reason it is counted under."""


def load_schemas(directory: Path) -> dict[bytes, dict]:
    """Every schema under ``directory`` by its fingerprint bytes as a message carries them."""
    by_fp = {}
    for path in sorted(directory.rglob("*.avsc")):
        schema = load_schema(str(path), _write_hint=False)
        canonical = to_parsing_canonical_form(schema)
        by_fp.setdefault(bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO")), schema)
    if not by_fp:
        sys.exit(f"no .avsc files under {directory}")
    return by_fp


def decode(data: bytes | None, schemas: dict[bytes, dict]) -> tuple[str, dict, bool]:
    """The record's short name, its value, and whether the header was in the legacy order."""
    if data is None or len(data) < HEADER or data[:2] != MAGIC:
        raise Skipped("not Avro single-object encoding")
    fp = data[2:HEADER]
    legacy = fp not in schemas
    schema = schemas.get(fp[::-1] if legacy else fp)
    if schema is None:
        raise Skipped("unknown schema fingerprint")
    try:
        value = fastavro.schemaless_reader(io.BytesIO(data[HEADER:]), schema)
    except (ValueError, TypeError, EOFError, IndexError, UnicodeDecodeError) as exc:
        raise Skipped("body does not match its schema") from exc
    return schema["name"].rsplit(".", 1)[-1], value, legacy


class WatchTime:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.titles: dict[str, str] = {}
        self.read: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()
        self.legacy = 0
        self.duplicates = 0
        self._last: dict[tuple[str, str], float] = {}
        self._seen: set[str] = set()

    def add(self, name: str, value: dict) -> None:
        if name == "VideoState":
            self.titles[value["video_id"]] = value["title"]
        elif name == "WatchEvent" and value["event_id"] not in self._seen:
            self._seen.add(value["event_id"])
            key = (value["user_id"], value["video_id"])
            pos = float(value["position_seconds"])
            prev = self._last.get(key)
            if prev is not None and 0 < pos - prev <= MAX_GAP:
                self.seconds[value["video_id"]] += pos - prev
            self._last[key] = pos
            self.seconds.setdefault(value["video_id"], 0.0)
        elif name == "WatchEvent":
            self.duplicates += 1

    def consume(self, data: bytes | None, schemas: dict[bytes, dict]) -> None:
        try:
            name, value, legacy = decode(data, schemas)
        except Skipped as reason:
            self.skipped[str(reason)] += 1
            return
        self.read[name] += 1
        self.legacy += legacy
        self.add(name, value)

    def table(self) -> str:
        rows = sorted(self.seconds.items(), key=lambda kv: (-kv[1], kv[0]))
        lines = [f"{'video':<24} {'title':<32} {'watch_seconds':>14}"]
        lines += [f"{v:<24} {self.titles.get(v, '?')[:32]:<32} {s:>14.1f}" for v, s in rows]
        return "\n".join(lines)

    def counts(self) -> str:
        read = ", ".join(f"{n} {k}" for k, n in sorted(self.read.items())) or "nothing"
        skipped = ", ".join(f"{n} {k}" for k, n in sorted(self.skipped.items())) or "none"
        return (
            f"read: {read} ({self.legacy} in the legacy byte order, "
            f"{self.duplicates} duplicate watch events counted once)\n"
            f"skipped: {sum(self.skipped.values())} ({skipped})"
        )


async def run(args: argparse.Namespace) -> int:
    schemas = load_schemas(Path(args.schemas))
    stats = WatchTime()
    consumer = AIOKafkaConsumer(
        "watch-events",
        "video-state",
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    idle = 0.0
    try:
        while args.idle_exit is None or idle < args.idle_exit:
            batch = await consumer.getmany(timeout_ms=1000)
            if not batch:
                idle += 1.0
                continue
            idle = 0.0
            for records in batch.values():
                for record in records:
                    stats.consume(record.value, schemas)
            print(stats.table(), flush=True)
            print(flush=True)
    finally:
        await consumer.stop()
        print(stats.counts(), file=sys.stderr, flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("schemas", help="folder of the .avsc files")
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--group", default=None, help="consumer group (default: none)")
    parser.add_argument("--idle-exit", type=float, default=None, help="stop after N idle seconds")
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
