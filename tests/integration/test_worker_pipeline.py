"""Real broker round trips: produce -> video-state agent -> table -> public topic, and the DLQ."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from tritontube.deps import build_deps
from tritontube.devstack.stack import EmbeddedStack
from tritontube.domain.events import UploadCompleted, UploadSessionCreated
from tritontube.settings import Settings
from tritontube.streams import catalogue
from tritontube.streams.records import EventCodec

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)


def session(video_id: str, owner: str = "alice") -> UploadSessionCreated:
    return UploadSessionCreated(
        event_id=f"c-{video_id}",
        video_id=video_id,
        owner=owner,
        title=f"Video {video_id}",
        file_name="clip.mp4",
        content_type="video/mp4",
        declared_size_bytes=100,
        source_key=f"uploads/{video_id}/source.mp4",
        etag=f"etag-{video_id}",
        created_at=NOW,
        expires_at=NOW + timedelta(minutes=15),
    )


def completion(video_id: str, event_id: str) -> UploadCompleted:
    return UploadCompleted(
        event_id=event_id,
        video_id=video_id,
        owner="alice",
        etag=f"etag-{video_id}",
        source_key=f"uploads/{video_id}/source.mp4",
        size_bytes=100,
        content_type="video/mp4",
        completed_at=NOW,
    )


def worker_get(settings: Settings, path: str) -> tuple[int, Any]:
    url = f"{settings.http.worker_url}{path}"
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - loopback test URL
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


async def wait_until(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await asyncio.to_thread(check)
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.2)


async def read_topic(bootstrap: str, topic: str, expect: int, timeout: float = 20.0) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    records: list[Any] = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(records) < expect and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for msgs in batch.values():
                records.extend(msgs)
        # Linger briefly so that extra (unexpected) records would be seen too.
        batch = await consumer.getmany(timeout_ms=1000)
        for msgs in batch.values():
            records.extend(msgs)
    finally:
        await consumer.stop()
    return records


@pytest.fixture
def codec() -> EventCodec:
    return build_deps(Settings()).codec


async def produce(bootstrap: str, items: list[tuple[str, bytes]], topic: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key.encode()) for key, value in items]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def test_upload_events_fold_into_the_table_and_the_public_topic_and_start_one_job(
    make_settings: Callable[..., Settings],
    stack_factory: Callable[..., EmbeddedStack],
    codec: EventCodec,
) -> None:
    settings = make_settings(transcode_agent=False)  # the job is read from its topic, not run
    stack_factory(settings)
    bootstrap = settings.kafka.bootstrap_servers
    await produce(
        bootstrap,
        [
            ("v1", codec.encode(session("v1"))),
            ("v1", codec.encode(completion("v1", "done-a"))),
            ("v1", codec.encode(completion("v1", "done-b"))),  # a concurrent duplicate
        ],
        catalogue.UPLOADS.name,
    )
    _, state = await wait_until(
        lambda: (
            (r := worker_get(settings, "/videos/v1"))[0] == 200
            and r[1]["status"] == "PENDING_TRANSCODE"
            and r
        )
    )
    assert state["owner"] == "alice"
    assert state["version"] == 2
    public = await read_topic(bootstrap, catalogue.VIDEO_STATE.name, expect=2)
    states = [codec.decode(r.value) for r in public]
    assert [s.status for s in states] == ["UPLOAD_PENDING", "PENDING_TRANSCODE"]
    assert [s.version for s in states] == [1, 2]
    assert all(r.key == b"v1" for r in public)
    jobs = await read_topic(bootstrap, catalogue.TRANSCODE_JOBS.name, expect=1)
    assert len(jobs) == 1
    job = codec.decode(jobs[0].value)
    assert (job.video_id, job.attempt, job.source_key) == ("v1", 1, "uploads/v1/source.mp4")


async def test_garbage_goes_to_the_dead_letter_topic_and_the_agent_keeps_consuming(
    make_settings: Callable[..., Settings],
    stack_factory: Callable[..., EmbeddedStack],
    codec: EventCodec,
) -> None:
    settings = make_settings()
    stack_factory(settings)
    bootstrap = settings.kafka.bootstrap_servers
    await produce(
        bootstrap,
        [("bad", b"not avro at all"), ("v2", codec.encode(session("v2")))],
        catalogue.UPLOADS.name,
    )
    await wait_until(lambda: worker_get(settings, "/videos/v2")[0] == 200)
    dead = await read_topic(bootstrap, catalogue.UPLOADS.dlq, expect=1)
    assert len(dead) == 1
    letter = codec.decode(dead[0].value)
    assert letter.source_topic == "uploads"
    assert letter.value == b"not avro at all"
    assert letter.key == b"bad"
    assert letter.error_type == "CodecError"


async def test_table_is_recovered_exactly_after_a_worker_restart(
    make_settings: Callable[..., Settings],
    stack_factory: Callable[..., EmbeddedStack],
    codec: EventCodec,
) -> None:
    """The memory table is rebuilt from its changelog; with the broker-compat fix nothing of
    the changelog's tail is lost even though it was written in multi-record batches."""
    settings = make_settings()
    stack = stack_factory(settings)
    bootstrap = settings.kafka.bootstrap_servers
    count = 300
    await produce(
        bootstrap,
        [(f"v{i}", codec.encode(session(f"v{i}"))) for i in range(count)],
        catalogue.UPLOADS.name,
    )
    await wait_until(lambda: worker_get(settings, "/videos")[1].get("count") == count)
    worker = next(p for p in stack.processes if p.name == "worker")
    worker.stop()
    stack.processes.remove(worker)
    stack.start_worker()
    _, listing = await wait_until(
        lambda: (r := worker_get(settings, "/videos"))[0] == 200 and r, timeout=60
    )
    assert listing["count"] == count
    assert {v["video_id"] for v in listing["videos"]} == {f"v{i}" for i in range(count)}
