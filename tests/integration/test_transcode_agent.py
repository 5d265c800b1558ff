"""The transcode agent in a real worker: broker, SeaweedFS, ffmpeg; tiny generated clips.

Every video enters the way production does: UploadSessionCreated + UploadCompleted on
``uploads``; the video-state agent emits the TranscodeJob the transcode agent consumes.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from helpers import (
    clip,
    ffmpeg,
    json_log,
    of,
    process_named,
    publish_upload,
    read_all,
    restarted_clock_ts,
    scratch_leftovers,
    source_key,
    terminal,
    wait_for_state,
)
from tritontube.devstack.stack import EmbeddedStack
from tritontube.domain import transcode as tx
from tritontube.domain.events import (
    RenditionReady,
    TranscodeFailed,
    TranscodeJob,
    TranscodeProgress,
    TranscodeSucceeded,
)
from tritontube.settings import Settings, TranscodeSettings
from tritontube.storage.s3 import S3ObjectStore
from tritontube.streams import catalogue
from tritontube.streams.records import EventCodec

pytestmark = pytest.mark.integration

FFMPEG = shutil.which("ffmpeg")
if FFMPEG is None:  # pragma: no cover - the dev image installs it
    pytest.skip("ffmpeg is required", allow_module_level=True)


# --------------------------------------------------------------------------- media


@dataclass(frozen=True)
class Media:
    happy: Path  # 1280x720, 2 s, with audio: 720p + 480p
    longer: Path  # 1280x720, 10 s: long enough to kill a worker mid-encode
    truncated: Path
    text: Path
    empty: Path
    audio_only: Path
    restarted_clock: Path  # two 1 s MPEG-TS files joined: the container claims 1 s
    speck: Path  # a 3x3 picture: too small to scale or deinterlace


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Media:
    root = tmp_path_factory.mktemp("media")
    happy = clip(root / "happy.mp4", "1280x720", 2)
    longer = clip(root / "longer.mp4", "1280x720", 10)
    truncated = root / "truncated.mp4"
    truncated.write_bytes(happy.read_bytes()[: happy.stat().st_size // 3])
    text = root / "notes.mp4"
    text.write_text("these are my holiday notes, not a video\n" * 50)
    empty = root / "empty.mp4"
    empty.write_bytes(b"")
    audio_only = root / "song.m4a"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:a", "aac", str(audio_only))
    restarted_clock = restarted_clock_ts(root)
    speck = clip(root / "speck.mp4", "3x3", 1, audio=False)
    return Media(happy, longer, truncated, text, empty, audio_only, restarted_clock, speck)


# --------------------------------------------------------------------------- plumbing


def transcode_settings(tmp_path: Path, **overrides: Any) -> TranscodeSettings:
    return TranscodeSettings(scratch_dir=tmp_path / "scratch", **overrides)


async def assert_consistent_package(store: S3ObjectStore, prefix: str) -> set[str]:
    """Every file the stored manifest references exists; returns the stored names."""
    manifest = (await store.get_bytes(prefix + tx.MANIFEST_NAME)).decode()
    stored = {info.key[len(prefix) :] for info in await store.list(prefix)}
    referenced = set(tx.referenced_files(manifest))
    assert referenced, "the manifest references no segments"
    assert referenced <= stored, f"missing: {sorted(referenced - stored)[:5]}"
    return stored


# --------------------------------------------------------------------------- tests


async def test_uploads_end_ready_or_failed_with_a_stable_reason(
    tmp_path: Path,
    make_settings: Callable[..., Settings],
    stack_factory: Callable[..., EmbeddedStack],
    store_for: Callable[[Settings], S3ObjectStore],
    codec: EventCodec,
    media: Media,
) -> None:
    settings = make_settings(transcode=transcode_settings(tmp_path))
    stack_factory(settings)
    store = store_for(settings)
    cases = {
        "happy": media.happy,
        "truncated": media.truncated,
        "text": media.text,
        "empty": media.empty,
        "audio": media.audio_only,
        "restarted": media.restarted_clock,
        "speck": media.speck,
    }
    for video_id, path in cases.items():
        await store.upload_file(path, source_key(video_id), "video/mp4")
    for video_id in [*cases, "missing"]:  # "missing": the source object was never stored
        await publish_upload(settings, codec, video_id)

    states = {
        video_id: await wait_for_state(settings, video_id, terminal)
        for video_id in [*cases, "missing"]
    }

    ok = {"happy", "restarted"}
    failed = {v: (s.status, s.error_code) for v, s in states.items() if v not in ok}
    assert failed == {
        "truncated": ("FAILED", "CORRUPT_MEDIA"),
        # A text file named .mp4: streamed from the store, ffprobe has no extension to go
        # by (the URL ends in a signature) and recognises no format.
        "text": ("FAILED", "UNSUPPORTED_MEDIA"),
        "empty": ("FAILED", "EMPTY_FILE"),
        "audio": ("FAILED", "NO_VIDEO_STREAM"),
        "missing": ("FAILED", "SOURCE_MISSING"),
        "speck": ("FAILED", "TOO_SMALL_DIMENSIONS"),
    }
    assert all(states[v].error_message for v in failed)
    assert all(states[v].attempt == 1 for v in failed), "input errors are not retried"

    ready = states["happy"]
    assert ready.status == "READY"
    assert ready.manifest_key == "media/happy/dash/manifest.mpd"
    assert ready.thumbnail_key == "media/happy/dash/poster.jpg"
    assert 1.9 <= ready.duration_seconds <= 2.2
    renditions = {r.name: r for r in ready.renditions}
    assert set(renditions) == {"720p", "480p"}  # never upscaled past the 720p source
    assert all(r.status == "READY" for r in renditions.values())
    # The catalogue's duration is what the package plays, not the 1 s the container claims.
    restarted = states["restarted"]
    assert restarted.status == "READY"
    assert 1.9 <= restarted.duration_seconds <= 2.2
    assert all(r.width <= 1280 and r.height <= 720 for r in renditions.values())
    assert (renditions["720p"].width, renditions["720p"].height) == (1280, 720)

    stored = await assert_consistent_package(store, "media/happy/dash/")
    assert {"manifest.mpd", "poster.jpg", "init-0.m4s", "init-1.m4s"} <= stored
    poster = await store.head("media/happy/dash/poster.jpg")
    assert poster is not None and poster.size > 1000
    assert (await store.get_bytes("media/happy/dash/poster.jpg"))[:2] == b"\xff\xd8"

    progress = await read_all(settings, catalogue.TRANSCODE_PROGRESS.name, codec)
    updates = of(progress, "happy", TranscodeProgress)
    percents = [u.percent for u in updates]
    assert percents == sorted(percents) and len(set(percents)) >= 3
    assert {"PROBING", "ENCODING", "UPLOADING", "FINALIZING"} <= {u.step for u in updates}
    assert percents[-1] == 100.0
    # The smallest rendition is announced first (playable early), with an interim manifest.
    ready_events = of(progress, "happy", RenditionReady)
    assert [e.rendition.name for e in ready_events] == ["480p", "720p"]
    (done,) = of(progress, "happy", TranscodeSucceeded)
    by_name = {r.name: r for r in done.renditions}
    assert all(len(r.sha256) == 64 and r.size_bytes > 0 for r in done.renditions)
    assert by_name["720p"].segment_count == 1 and by_name["720p"].bandwidth_bps > 0
    assert done.cpu_seconds > 0 and done.wall_seconds > 0
    assert of(progress, "happy", TranscodeFailed) == []
    assert scratch_leftovers(settings) == []
    # An operator follows the job in the worker's JSON log by video and job id.
    logged = [r for r in json_log(tmp_path / "logs" / "worker.log") if r.get("video_id") == "happy"]
    encode = [r for r in logged if r.get("topic") == catalogue.TRANSCODE_JOBS.name]
    assert encode and {r["job_id"] for r in encode} == {done.job_id}
    assert all(isinstance(r["offset"], int) and r["attempt"] == 1 for r in encode)


async def test_with_streaming_off_the_source_is_downloaded_into_scratch_first(
    tmp_path: Path,
    make_settings: Callable[..., Settings],
    stack_factory: Callable[..., EmbeddedStack],
    store_for: Callable[[Settings], S3ObjectStore],
    codec: EventCodec,
    media: Media,
) -> None:
    """``transcode.stream_source=false``: for a store ffmpeg cannot reach over HTTP."""
    settings = make_settings(transcode=transcode_settings(tmp_path, stream_source=False))
    stack_factory(settings)
    store = store_for(settings)
    for video_id, path in {"happy": media.happy, "text": media.text}.items():
        await store.upload_file(path, source_key(video_id), "video/mp4")
        await publish_upload(settings, codec, video_id)
    happy = await wait_for_state(settings, "happy", terminal)
    text = await wait_for_state(settings, "text", terminal)
    assert happy.status == "READY"
    await assert_consistent_package(store, "media/happy/dash/")
    # The downloaded copy keeps its extension, so ffprobe tries MP4 and finds no moov atom.
    assert (text.status, text.error_code) == ("FAILED", "CORRUPT_MEDIA")
    assert scratch_leftovers(settings) == []


async def test_an_unavailable_store_is_retried_with_backoff_then_dead_lettered(
    tmp_path: Path,
    make_settings: Callable[..., Settings],
    stack_factory: Callable[..., EmbeddedStack],
    store_for: Callable[[Settings], S3ObjectStore],
    codec: EventCodec,
    media: Media,
) -> None:
    # The store goes away while the event log stays up, as S3 and Kafka are independent in
    # production: the embedded log must not live in that store here.
    base = make_settings()
    settings = make_settings(
        kafka=base.kafka.model_copy(update={"embedded_log_storage": "memory"}),
        transcode=transcode_settings(
            tmp_path, max_attempts=4, backoff_base_seconds=1.0, backoff_max_seconds=3.0
        ),
    )
    stack = stack_factory(settings)
    store = store_for(settings)
    await store.upload_file(media.happy, source_key("later"), "video/mp4")
    objectstore = process_named(stack, "objectstore")
    objectstore.stop()

    # 1. The store stays down: every attempt fails, the last one for good.
    await publish_upload(settings, codec, "down")
    gone = await wait_for_state(settings, "down", terminal, timeout=60)
    assert (gone.status, gone.error_code, gone.attempt) == (
        "FAILED",
        "TRANSCODE_FAILED",
        4,
    )
    assert "4 attempts" in gone.error_message

    jobs = of(await read_all(settings, catalogue.TRANSCODE_JOBS.name, codec), "down", TranscodeJob)
    assert [j.attempt for j in jobs] == [1, 2, 3, 4]
    assert len({j.job_id for j in jobs}) == 1
    # Jittered exponential backoff: attempt n waits within [0.5, 1] x min(1 * 2**(n-1), 3).
    for previous, retry in itertools.pairwise(jobs):
        wait = (retry.not_before - retry.created_at).total_seconds()
        ceiling = min(2.0 ** (previous.attempt - 1), 3.0)
        assert 0.5 * ceiling - 0.01 <= wait <= ceiling + 0.01
    failures = of(
        await read_all(settings, catalogue.TRANSCODE_PROGRESS.name, codec), "down", TranscodeFailed
    )
    assert [(f.attempt, f.final) for f in failures] == [
        (1, False),
        (2, False),
        (3, False),
        (4, True),
    ]
    dead = await read_all(settings, catalogue.TRANSCODE_JOBS.dlq, codec)
    assert len(dead) == 1
    letter = dead[0][1]
    assert letter.source_topic == catalogue.TRANSCODE_JOBS.name
    assert codec.decode(letter.value).attempt == 4
    assert letter.error_type == "ObjectStoreUnavailable"

    # 2. The store comes back while a job is between attempts: a retry succeeds.
    await publish_upload(settings, codec, "later")
    await wait_for_state(settings, "later", lambda s: s.attempt >= 2, timeout=30)
    objectstore.start()
    back = await wait_for_state(settings, "later", terminal, timeout=60)
    assert back.status == "READY", back
    assert back.attempt >= 2 and back.error_code is None
    await assert_consistent_package(store, "media/later/dash/")
    assert scratch_leftovers(settings) == []


async def test_a_worker_killed_mid_encode_still_ends_ready_exactly_once(
    tmp_path: Path,
    make_settings: Callable[..., Settings],
    stack_factory: Callable[..., EmbeddedStack],
    store_for: Callable[[Settings], S3ObjectStore],
    codec: EventCodec,
    media: Media,
) -> None:
    settings = make_settings(transcode=transcode_settings(tmp_path))
    stack = stack_factory(settings)
    store = store_for(settings)
    await store.upload_file(media.longer, source_key("kill"), "video/mp4")
    await publish_upload(settings, codec, "kill")

    encoding = await wait_for_state(
        settings, "kill", lambda s: s.step == "ENCODING" and s.percent > 6, timeout=60
    )
    assert encoding.status == "TRANSCODING"
    worker = process_named(stack, "worker")
    worker.kill()
    stack.processes.remove(worker)
    assert scratch_leftovers(settings), "the killed worker's scratch dir is still there"
    stack.start_worker()

    ready = await wait_for_state(settings, "kill", terminal, timeout=90)
    assert ready.status == "READY", ready
    assert ready.attempt == 1  # a crash is a redelivery, not a retry

    states = of(await read_all(settings, catalogue.VIDEO_STATE.name, codec), "kill", object)
    versions = [s.version for s in states]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    assert [s.status for s in states].count("READY") == 1
    assert states[-1].version == ready.version
    await assert_consistent_package(store, "media/kill/dash/")
    # The restarted worker swept the killed one's scratch dir and cleaned up its own.
    assert scratch_leftovers(settings) == []
