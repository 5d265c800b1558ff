"""Media built to exhaust ffmpeg, through the real transcode agent: refused, fast, nothing left.

The adapter-level limits (timeout, memory ceiling, cancellation) are tested in
``test_ffmpeg_transcoder.py`` and ``validate_probe`` in the unit tests; here real files go the
production way (source in the object store, UploadSessionCreated + UploadCompleted, the video-state
agent's TranscodeJob, the transcode agent in a worker) with small limits in settings:

* a 2000x2000 single-frame clip (a few KB that decode to 4 Mpx per frame) against
  ``max_pixels = 1_000_000`` -> FAILED ``TOO_LARGE_DIMENSIONS``;
* a 10-minute clip at 1 fps (tiny) against ``max_duration_seconds = 60`` -> FAILED ``TOO_LONG``;
* the same 10 minutes with no duration in the container, and three 40 s MPEG-TS recordings
  joined byte for byte (the container claims 40 s of 120 s) -> FAILED ``TOO_LONG`` too,
  stopped by what ffmpeg has encoded;
* a small clip within every limit -> READY, so the limits refuse only what they should.

Refusals happen after ffprobe and before any encode: no ENCODING progress, one attempt, no
ffmpeg or ffprobe left running, no scratch directory left behind.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import (
    ffmpeg,
    of,
    processes_mentioning,
    publish_upload,
    read_all,
    restarted_clock_ts,
    scratch_leftovers,
    source_key,
    terminal,
    wait_for_state,
)
from tritontube.devstack.stack import EmbeddedStack
from tritontube.domain.events import TranscodeProgress
from tritontube.settings import Settings, TranscodeSettings
from tritontube.storage.s3 import S3ObjectStore
from tritontube.streams import catalogue
from tritontube.streams.records import EventCodec

pytestmark = pytest.mark.integration

if shutil.which("ffmpeg") is None:  # pragma: no cover - the dev image installs it
    pytest.skip("ffmpeg is required", allow_module_level=True)

MAX_PIXELS = 1_000_000
MAX_DURATION_SECONDS = 60.0
REFUSAL_BOUND_SECONDS = 20.0  # publish -> FAILED, worker already running


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hostile")
    x264 = ("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p")
    huge = root / "huge.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=c=gray:size=2000x2000:rate=1", "-frames:v", "1", *x264,
           str(huge))  # fmt: skip
    long = root / "long.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x64:rate=1:duration=600", *x264,
           "-g", "600", str(long))  # fmt: skip
    # The same 10 minutes as live Matroska: no duration in the container, so ffprobe has none.
    unknown = root / "unknown.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x64:rate=1:duration=600", *x264,
           "-g", "600", "-f", "matroska", "-live", "1", str(unknown))  # fmt: skip
    # Three 40 s MPEG-TS recordings joined byte for byte: the clock restarts twice, and the
    # container claims 40 s (within the limit) of its 120 s.
    restarted = restarted_clock_ts(root, parts=3, seconds=40, size="64x64", rate=1)
    fine = root / "fine.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=1", *x264, str(fine))
    return {
        "huge": huge,
        "long": long,
        "unknown": unknown,
        "restarted": restarted,
        "fine": fine,
    }


def limits(scratch: Path) -> TranscodeSettings:
    return TranscodeSettings(
        scratch_dir=scratch,
        max_pixels=MAX_PIXELS,
        max_duration_seconds=MAX_DURATION_SECONDS,
        memory_limit_bytes=1024**3,
        timeout_seconds=30.0,
    )


async def test_sources_above_the_limits_fail_fast_with_a_reason_and_leave_nothing_running(
    tmp_path: Path,
    make_settings: Callable[..., Settings],
    stack_factory: Callable[..., EmbeddedStack],
    store_for: Callable[[Settings], S3ObjectStore],
    codec: EventCodec,
    hostile: dict[str, Path],
) -> None:
    scratch = tmp_path / "scratch"
    settings = make_settings(transcode=limits(scratch))
    stack_factory(settings)
    store = store_for(settings)
    for video_id, path in hostile.items():
        await store.upload_file(path, source_key(video_id), "video/mp4")
    assert hostile["huge"].stat().st_size < 64 * 1024, "the 4-Mpx frame should be a tiny file"

    took: dict[str, float] = {}
    states = {}
    for video_id in ("huge", "long"):
        started = time.monotonic()
        await publish_upload(settings, codec, video_id)
        states[video_id] = await wait_for_state(
            settings, video_id, terminal, timeout=REFUSAL_BOUND_SECONDS
        )
        took[video_id] = time.monotonic() - started
    await publish_upload(settings, codec, "fine")
    fine = await wait_for_state(settings, "fine", terminal, timeout=90)

    got = {v: (s.status, s.error_code, s.attempt) for v, s in states.items()}
    assert got == {
        "huge": ("FAILED", "TOO_LARGE_DIMENSIONS", 1),
        "long": ("FAILED", "TOO_LONG", 1),
    }
    assert all(s.error_message for s in states.values())
    assert fine.status == "READY", fine

    # Refused after the probe, before any encode: no ENCODING step was ever reported.
    progress = await read_all(settings, catalogue.TRANSCODE_PROGRESS.name, codec)
    for video_id in ("huge", "long"):
        steps = {p.step for p in of(progress, video_id, TranscodeProgress)}
        assert steps <= {"PROBING"}, (video_id, steps)
    assert "ENCODING" in {p.step for p in of(progress, "fine", TranscodeProgress)}
    # Nothing encoded for the refused ones, nothing left running or on disk.
    for video_id in ("huge", "long"):
        assert await store.list(f"media/{video_id}/") == []
    await asyncio.sleep(0.5)
    assert processes_mentioning(str(scratch), "ffmpeg", "ffprobe") == []
    assert scratch_leftovers(settings) == []
    print(
        "\nhostile media: "
        + ", ".join(f"{v} -> {states[v].error_code} in {took[v]:.2f}s" for v in took)
        + f"; control clip READY; huge.mp4 is {hostile['huge'].stat().st_size} bytes "
        f"(2000x2000), long.mp4 {hostile['long'].stat().st_size} bytes (600 s)"
    )


@pytest.mark.parametrize(
    ("clip", "content_type"),
    [("unknown", "video/x-matroska"), ("restarted", "video/mp2t")],
    ids=["no_duration", "claims_less_than_it_plays"],
)
async def test_a_source_hiding_its_duration_is_still_held_to_the_duration_limit(
    tmp_path: Path,
    make_settings: Callable[..., Settings],
    stack_factory: Callable[..., EmbeddedStack],
    store_for: Callable[[Settings], S3ObjectStore],
    codec: EventCodec,
    hostile: dict[str, Path],
    clip: str,
    content_type: str,
) -> None:
    scratch = tmp_path / "scratch"
    settings = make_settings(transcode=limits(scratch))
    stack_factory(settings)
    store = store_for(settings)
    await store.upload_file(hostile[clip], source_key(clip), content_type)
    started = time.monotonic()
    await publish_upload(settings, codec, clip)
    state = await wait_for_state(settings, clip, terminal, timeout=90)
    took = time.monotonic() - started
    print(
        f"\nduration hidden ({clip}): {state.status} {state.error_code} in {took:.1f}s, "
        f"duration_seconds={state.duration_seconds}"
    )
    await asyncio.sleep(0.5)
    assert processes_mentioning(str(scratch), "ffmpeg", "ffprobe") == []
    assert scratch_leftovers(settings) == []
    # Refused (TOO_LONG), or at least never READY with more than the limit.
    assert (state.status, state.error_code) == ("FAILED", "TOO_LONG"), state
