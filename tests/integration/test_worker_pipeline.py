"""Real broker round trips: produce -> video-state agent -> table -> public topic, and the DLQ."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import (
    completion,
    json_log,
    owned_videos,
    produce,
    read_topic,
    session,
    wait_for,
    worker_get,
)
from tritontube.devstack.stack import EmbeddedStack
from tritontube.settings import Settings
from tritontube.streams import catalogue
from tritontube.streams.records import EventCodec

pytestmark = pytest.mark.integration


async def test_upload_events_fold_into_the_table_and_the_public_topic_and_start_one_job(
    tmp_path: Path,
    make_settings: Callable[..., Settings],
    stack_factory: Callable[..., EmbeddedStack],
    codec: EventCodec,
) -> None:
    settings = make_settings(transcode_agent=False)  # the job is read from its topic, not run
    stack_factory(settings)
    bootstrap = settings.kafka.bootstrap_servers
    await produce(
        bootstrap,
        catalogue.UPLOADS.name,
        [
            ("v1", codec.encode(session("v1"))),
            ("v1", codec.encode(completion("v1", "done-a"))),
            ("v1", codec.encode(completion("v1", "done-b"))),  # a concurrent duplicate
        ],
    )
    _, state = await wait_for(
        lambda: (
            (r := worker_get(settings, "/videos/v1"))[0] == 200
            and r[1].status == "PENDING_TRANSCODE"
            and r
        )
    )
    assert state.owner == "alice"
    assert state.version == 2
    public = await read_topic(bootstrap, catalogue.VIDEO_STATE.name, expect=2)
    states = [codec.decode(r.value) for r in public]
    assert [s.status for s in states] == ["UPLOAD_PENDING", "PENDING_TRANSCODE"]
    assert [s.version for s in states] == [1, 2]
    assert all(r.key == b"v1" for r in public)
    jobs = await read_topic(bootstrap, catalogue.TRANSCODE_JOBS.name, expect=1)
    assert len(jobs) == 1
    job = codec.decode(jobs[0].value)
    assert (job.video_id, job.attempt, job.source_key) == ("v1", 1, "uploads/v1/source.mp4")
    # The worker's log is JSON lines; what it wrote about v1 names the event it was handling.
    about_v1 = [r for r in json_log(tmp_path / "logs" / "worker.log") if r.get("video_id") == "v1"]
    changes = [r for r in about_v1 if "->" in r["event"]]
    assert [r["event"].split(": ")[1] for r in changes] == [
        "- -> UPLOAD_PENDING",
        "UPLOAD_PENDING -> PENDING_TRANSCODE",
    ]
    for record in changes:
        assert record["topic"] == "uploads" and record["logger"].startswith("tritontube.")
        assert isinstance(record["partition"], int) and isinstance(record["offset"], int)
        assert record["level"] == "info" and record["timestamp"].endswith("Z")
    assert [r["offset"] for r in changes] == sorted({r["offset"] for r in changes})
    queued = [r for r in about_v1 if r["event"].startswith("queued transcode job")]
    assert [r["job_id"] for r in queued] == [job.job_id]


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
        catalogue.UPLOADS.name,
        [("bad", b"not avro at all"), ("v2", codec.encode(session("v2")))],
    )
    await wait_for(lambda: worker_get(settings, "/videos/v2")[0] == 200)
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
        catalogue.UPLOADS.name,
        [(f"v{i}", codec.encode(session(f"v{i}"))) for i in range(count)],
    )
    await wait_for(lambda: len(owned_videos(settings) or ()) == count, timeout=60)
    worker = next(p for p in stack.processes if p.name == "worker")
    worker.stop()
    stack.processes.remove(worker)
    stack.start_worker()
    listing = await wait_for(lambda: owned_videos(settings), timeout=60)
    assert len(listing) == count
    assert {v.video_id for v in listing} == {f"v{i}" for i in range(count)}
    assert all(v.version == 1 for v in listing)
