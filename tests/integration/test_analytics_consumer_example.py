"""The example analytics consumer decodes our topics with aiokafka, fastavro and the .avsc files,
in both fingerprint byte orders, and counts what it skips."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from tritontube.deps import build_deps
from tritontube.domain.events import VideoState, WatchEvent
from tritontube.settings import Settings
from tritontube.streams import catalogue
from tritontube.streams.codec import schema_dir

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def watch(event_id: str, user: str, video: str, position: float) -> WatchEvent:
    return WatchEvent(event_id, video, user, "HEARTBEAT", position, T0, T0)


async def test_example_consumer_prints_watch_time_per_video(broker: str) -> None:
    codec = build_deps(Settings()).codec
    state = VideoState(
        video_id="v1", version=3, status="READY", owner="alice", title="Zebra crossing",
        created_at=T0, updated_at=T0, expires_at=T0 + timedelta(minutes=15),
    )  # fmt: skip
    events = [
        watch("e1", "bob", "v1", 0.0),
        watch("e2", "bob", "v1", 10.0),
        watch("e2", "bob", "v1", 10.0),  # a duplicate counts once
        watch("e3", "bob", "v1", 25.0),
        watch("e4", "carol", "v2", 5.0),
        watch("e5", "carol", "v2", 100.0),  # a jump (seek) is not watch time
    ]
    producer = AIOKafkaProducer(bootstrap_servers=broker)
    await producer.start()
    try:
        await producer.send_and_wait(catalogue.VIDEO_STATE.name, codec.encode(state), key=b"v1")
        for event in events:
            await producer.send_and_wait(
                catalogue.WATCH_EVENTS.name, codec.encode(event), key=event.video_id.encode()
            )
        # Written before issue 21: the same kind of message with its fingerprint reversed.
        late = codec.encode(watch("e6", "bob", "v1", 40.0))
        legacy = late[:2] + late[2:10][::-1] + late[10:]
        await producer.send_and_wait(catalogue.WATCH_EVENTS.name, legacy, key=b"v1")
        # Skipped, and counted by reason:
        await producer.send_and_wait(catalogue.WATCH_EVENTS.name, b"garbage", key=b"v1")
        unknown = b"\xc3\x01" + b"\x00" * 8 + late[10:]
        await producer.send_and_wait(catalogue.WATCH_EVENTS.name, unknown, key=b"v1")
    finally:
        await producer.stop()
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-I", str(ROOT / "examples" / "analytics_consumer.py"), str(schema_dir()),
         "--bootstrap", broker, "--idle-exit", "3"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    last_table = result.stdout.strip().split("\n\n")[-1].splitlines()
    rows = {line.split()[0]: line for line in last_table[1:]}
    assert "Zebra crossing" in rows["v1"]
    assert rows["v1"].split()[-1] == "40.0"  # 10 + 15 + 15 (the legacy-order event)
    assert rows["v2"].split()[-1] == "0.0"
    assert result.stderr.splitlines()[-2:] == [
        "read: 1 VideoState, 7 WatchEvent (1 in the legacy byte order, "
        "1 duplicate watch events counted once)",
        "skipped: 2 (1 not Avro single-object encoding, 1 unknown schema fingerprint)",
    ]
