"""The video lifecycle fold: transitions, idempotency, and the one-job rule."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from tritontube.domain import video
from tritontube.domain.events import (
    Rendition,
    RenditionProgress,
    RenditionReady,
    TranscodeFailed,
    TranscodeProgress,
    TranscodeSucceeded,
    UploadCompleted,
    UploadSessionCreated,
    UploadSessionExpired,
    VideoState,
)
from tritontube.domain.video import Status

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
LADDER = ("1080p", "720p", "480p")


def created(video_id: str = "v1", etag: str = "tag") -> UploadSessionCreated:
    return UploadSessionCreated(
        event_id=f"created-{video_id}",
        video_id=video_id,
        owner="alice",
        title="Zebra crossing",
        file_name="clip.mp4",
        content_type="video/mp4",
        declared_size_bytes=1000,
        source_key=video.source_key(video_id, "clip.mp4"),
        etag=etag,
        created_at=T0,
        expires_at=T0 + timedelta(minutes=15),
        tags=("street",),
    )


def completed(etag: str = "tag", event_id: str = "done-1", owner: str = "alice") -> UploadCompleted:
    return UploadCompleted(
        event_id=event_id,
        video_id="v1",
        owner=owner,
        etag=etag,
        source_key="uploads/v1/source.mp4",
        size_bytes=1000,
        content_type="video/mp4",
        completed_at=T0 + timedelta(minutes=1),
    )


def rendition(name: str = "720p") -> Rendition:
    return Rendition(name, 1280, 720, 2_800_000, "0", 1234, 3, "ab" * 32)


def pending() -> VideoState:
    state = video.apply(video.apply(None, created()), completed())
    assert state is not None
    return state


def progress(
    pct: float, event_id: str, attempt: int = 1, job_id: str = "v1:tag"
) -> TranscodeProgress:
    return TranscodeProgress(
        event_id=event_id,
        video_id="v1",
        job_id=job_id,
        attempt=attempt,
        step="ENCODING",
        percent=pct,
        ts=T0 + timedelta(minutes=2),
        eta_seconds=10.0,
        renditions=(RenditionProgress("720p", pct), RenditionProgress("480p", pct)),
    )


def succeeded(event_id: str = "ok-1") -> TranscodeSucceeded:
    return TranscodeSucceeded(
        event_id=event_id,
        video_id="v1",
        job_id="v1:tag",
        attempt=1,
        manifest_key="media/v1/dash/manifest.mpd",
        duration_seconds=12.5,
        renditions=(rendition("720p"), rendition("480p")),
        wall_seconds=3.0,
        cpu_seconds=5.0,
        ts=T0 + timedelta(minutes=3),
        thumbnail_key="media/v1/poster.jpg",
    )


def failed(final: bool, attempt: int = 1, event_id: str = "f-1") -> TranscodeFailed:
    return TranscodeFailed(
        event_id=event_id,
        video_id="v1",
        job_id="v1:tag",
        attempt=attempt,
        reason="CORRUPT_MEDIA",
        message="the file is damaged",
        final=final,
        ts=T0 + timedelta(minutes=3),
    )


def test_session_created_starts_pending_at_version_1() -> None:
    state = video.apply(None, created())
    assert state is not None
    assert state.status == Status.UPLOAD_PENDING
    assert state.version == 1
    assert state.owner == "alice"
    assert state.tags == ("street",)


def test_redelivered_event_changes_nothing() -> None:
    state = video.apply(None, created())
    assert video.apply(state, created()) is state


def test_completion_with_matching_etag_queues_exactly_one_job() -> None:
    before = video.apply(None, created())
    after = video.apply(before, completed())
    assert after is not None and after.status == Status.PENDING_TRANSCODE
    job = video.job_to_start(before, after, LADDER, T0)
    assert job is not None
    assert job.job_id == "v1:tag"
    assert job.attempt == 1
    assert job.ladder == LADDER
    assert job.output_prefix == "media/v1/dash/"
    # A second completion (another event id: a concurrent duplicate) starts nothing.
    again = video.apply(after, completed(event_id="done-2"))
    assert again is after
    assert video.job_to_start(after, again, LADDER, T0) is None


@pytest.mark.parametrize(
    ("etag", "owner"), [("stale", "alice"), ("tag", "mallory")], ids=["stale-etag", "other-user"]
)
def test_completion_that_does_not_match_the_session_is_ignored(etag: str, owner: str) -> None:
    before = video.apply(None, created())
    assert video.apply(before, completed(etag=etag, owner=owner)) is before


def test_expiry_only_applies_to_pending_uploads() -> None:
    expire = UploadSessionExpired("x-1", "v1", T0 + timedelta(minutes=16))
    state = video.apply(video.apply(None, created()), expire)
    assert state is not None and state.status == Status.EXPIRED
    done = pending()
    assert video.apply(done, expire) is done


def test_progress_moves_to_transcoding_and_tracks_renditions() -> None:
    state = video.apply(pending(), progress(42.0, "p-1"))
    assert state is not None
    assert state.status == Status.TRANSCODING
    assert state.percent == 42.0
    assert state.eta_seconds == 10.0
    assert {r.name: r.percent for r in state.renditions} == {"720p": 42.0, "480p": 42.0}


def test_progress_from_a_stale_attempt_or_other_job_is_ignored() -> None:
    state = pending()
    state = replace(state, attempt=2)
    assert video.apply(state, progress(10.0, "p-old", attempt=1)) is state
    assert video.apply(state, progress(10.0, "p-other", attempt=2, job_id="other")) is state


def test_rendition_ready_makes_the_video_playable_before_the_whole_job_ends() -> None:
    state = video.apply(pending(), progress(50.0, "p-1"))
    ready = RenditionReady("r-1", "v1", "v1:tag", rendition("480p"), "m.mpd", T0)
    state = video.apply(state, ready)
    assert state is not None
    assert state.status == Status.TRANSCODING
    assert video.is_playable(state)


def test_success_is_terminal_and_applied_once() -> None:
    state = video.apply(video.apply(pending(), progress(50.0, "p-1")), succeeded())
    assert state is not None
    assert state.status == Status.READY
    assert state.percent == 100.0
    assert state.manifest_key == "media/v1/dash/manifest.mpd"
    assert [r.status for r in state.renditions] == ["READY", "READY"]
    # A second success from a redelivered job (new event id) and late progress change nothing.
    assert video.apply(state, succeeded(event_id="ok-2")) is state
    assert video.apply(state, progress(99.0, "p-late")) is state


def test_retryable_failure_waits_for_the_next_attempt_and_final_failure_explains() -> None:
    state = video.apply(pending(), failed(final=False))
    assert state is not None
    assert state.status == Status.PENDING_TRANSCODE
    assert state.attempt == 2
    assert video.apply(state, failed(final=True, attempt=1, event_id="f-old")) is state
    final = video.apply(state, failed(final=True, attempt=2, event_id="f-2"))
    assert final is not None and final.status == Status.FAILED
    assert (final.error_code, final.error_message) == ("CORRUPT_MEDIA", "the file is damaged")


def test_version_increments_by_one_per_change() -> None:
    versions = []
    state: VideoState | None = None
    for event in (
        created(),
        completed(),
        progress(10.0, "p-1"),
        progress(20.0, "p-2"),
        succeeded(),
    ):
        state = video.apply(state, event)
        assert state is not None
        versions.append(state.version)
    assert versions == [1, 2, 3, 4, 5]


def test_recent_event_ids_are_bounded() -> None:
    state: VideoState | None = pending()
    for i in range(video.RECENT_EVENT_IDS + 10):
        state = video.apply(state, progress(float(i % 100), f"p-{i}"))
    assert state is not None
    assert len(state.recent_event_ids) == video.RECENT_EVENT_IDS


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("clip.MP4", "uploads/v9/source.mp4"),
        ("../../etc/passwd", "uploads/v9/source.bin"),
        ("noext", "uploads/v9/source.bin"),
        ("a.mov/..\\x.webm", "uploads/v9/source.webm"),
    ],
)
def test_source_key_never_leaves_the_videos_prefix(name: str, expected: str) -> None:
    assert video.source_key("v9", name) == expected
