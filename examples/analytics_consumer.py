#!/usr/bin/env python3
"""A data engineer's analytics consumer: running watch time per video, from the public topics.

    python examples/analytics_consumer.py SCHEMA_DIR [--bootstrap 127.0.0.1:9092] [--idle-exit 5]

Subscribes to `watch-events` and `video-state`, decodes every message with nothing but fastavro
and the published .avsc files (Avro single-object encoding: C3 01, the writer schema's
CRC-64-AVRO fingerprint, the body), and prints a table of watch time per video, titled from
the latest VideoState. Watch time: for each (user, video), the forward position deltas between
consecutive events, each capped at 30 s. Deliberately imports nothing from tritontube.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import struct
from collections import defaultdict
from pathlib import Path

import fastavro
from aiokafka import AIOKafkaConsumer
from fastavro.schema import fingerprint, load_schema, to_parsing_canonical_form

MAX_GAP = 30.0


def load_schemas(directory: Path) -> dict[int, dict]:
    by_fp = {}
    for path in sorted(directory.rglob("*.avsc")):
        schema = load_schema(str(path), _write_hint=False)
        fp = int(fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO"), 16)
        by_fp.setdefault(fp, schema)
    return by_fp


def decode(data: bytes, schemas: dict[int, dict]) -> tuple[str, dict]:
    magic, fp = struct.unpack_from("<2sQ", data)
    if magic != b"\xc3\x01" or fp not in schemas:
        raise ValueError("not a known Avro single-object message")
    schema = schemas[fp]
    return schema["name"].rsplit(".", 1)[-1], fastavro.schemaless_reader(
        io.BytesIO(data[10:]), schema
    )


class WatchTime:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.titles: dict[str, str] = {}
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

    def table(self) -> str:
        rows = sorted(self.seconds.items(), key=lambda kv: (-kv[1], kv[0]))
        lines = [f"{'video':<24} {'title':<32} {'watch_seconds':>14}"]
        lines += [f"{v:<24} {self.titles.get(v, '?')[:32]:<32} {s:>14.1f}" for v, s in rows]
        return "\n".join(lines)


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
                    try:
                        stats.add(*decode(record.value, schemas))
                    except (ValueError, EOFError, struct.error):
                        continue  # not ours to judge: the platform dead-letters bad input
            print(stats.table(), flush=True)
            print(flush=True)
    finally:
        await consumer.stop()
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
