"""Managing a video in the pure fold: edits guarded by the metadata etag, delete then purge,
retry of a FAILED video as a new job; each idempotent and the owner's only."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from tritontube.domain import video
from tritontube.domain.events import (
    TranscodeFailed,
    TranscodeRetryRequested,
    UploadCompleted,
    UploadSessionCreated,
    VideoDeleted,
    VideoMetadataUpdated,
    VideoPurged,
    VideoState,
)
from tritontube.domain.video import MetadataPatch, Status, metadata_changes, metadata_etag

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
LADDER = ("1080p", "720p", "480p")


def uploaded() -> VideoState:
    state = video.apply(
        None,
        UploadSessionCreated(
            event_id="c",
            video_id="v1",
            owner="alice",
            title="Zebra crossing",
            file_name="clip.mp4",
            content_type="video/mp4",
            declared_size_bytes=10,
            source_key="uploads/v1/source.mp4",
            etag="tag",
            created_at=T0,
            expires_at=T0 + timedelta(minutes=15),
            tags=("street",),
        ),
    )
    state = video.apply(
        state,
        UploadCompleted("u", "v1", "alice", "tag", "uploads/v1/source.mp4", 10, "video/mp4", T0),
    )
    assert state is not None and state.status == Status.PENDING_TRANSCODE
    return state


def edit(
    state: VideoState, event_id: str = "e1", owner: str = "alice", **fields: Any
) -> VideoMetadataUpdated:
    """An edit of ``state``'s current version (its etag) by ``owner``."""
    return VideoMetadataUpdated(
        event_id=event_id,
        video_id="v1",
        owner=owner,
        expected_etag=metadata_etag(state),
        updated_at=T0 + timedelta(minutes=5),
        **fields,
    )


def test_an_edit_changes_only_the_fields_it_names_and_the_etag() -> None:
    before = uploaded()
    after = video.apply(before, edit(before, title="Okapi", tags=("wildlife",)))
    assert after is not None
    assert (after.title, after.tags, after.description, after.visibility) == (
        "Okapi",
        ("wildlife",),
        before.description,
        before.visibility,
    )
    assert after.version == before.version + 1
    assert metadata_etag(after) != metadata_etag(before)
    assert after.updated_at == T0 + timedelta(minutes=5)
    # Transcode progress does not move the etag: an owner's edit is not made stale by it.
    assert metadata_etag(replace(after, percent=50.0, version=99)) == metadata_etag(after)


def test_of_two_edits_of_one_version_only_the_first_applies() -> None:
    base = uploaded()
    first = edit(base, "e1", title="First")
    second = edit(base, "e2", title="Second")  # based on the same etag
    state = video.apply(video.apply(base, first), second)
    assert state is not None and state.title == "First"
    assert "e2" not in state.recent_event_ids


def test_edits_by_others_redelivered_or_changing_nothing_are_ignored() -> None:
    base = uploaded()
    assert video.apply(base, edit(base, owner="mallory", title="Mine")) is base
    once = video.apply(base, edit(base, title="Okapi"))
    assert video.apply(once, edit(base, title="Okapi")) is once  # same event id: a no-op
    assert video.apply(base, edit(base, "e9", title=base.title)) is base
    assert video.apply(base, edit(base, "e8", visibility="secret")) is base
    assert metadata_changes(base, MetadataPatch(title=base.title, tags=("x",))) == MetadataPatch(
        tags=("x",)
    )
    assert metadata_changes(base, MetadataPatch(title=base.title)).is_empty


def test_delete_then_purge_removes_the_state() -> None:
    base = uploaded()
    deleting = video.apply(base, VideoDeleted("d", "v1", "alice", T0))
    assert deleting is not None and deleting.status == Status.DELETING
    assert video.is_deleted(deleting) and video.is_deleted(None)
    assert video.apply(base, VideoDeleted("d", "v1", "mallory", T0)) is base
    # Nothing applies to a DELETING video but its purge: no edit, no transcode result.
    assert video.apply(deleting, edit(deleting, "e5", title="Late")) is deleting
    failed = TranscodeFailed("f", "v1", deleting.job_id or "", 1, "X", "x", True, T0)
    assert video.apply(deleting, failed) is deleting
    assert video.apply(deleting, VideoPurged("p", "v1", T0, 3)) is None
    # A purge of a video that is not being deleted changes nothing; after removal, nothing.
    assert video.apply(base, VideoPurged("p", "v1", T0)) is base
    assert video.apply(None, VideoDeleted("d2", "v1", "alice", T0)) is None


def test_retry_requeues_only_a_failed_video_as_a_new_job_once() -> None:
    base = uploaded()
    job = base.job_id or ""
    failed = video.apply(base, TranscodeFailed("f", "v1", job, 1, "PROBE_FAILED", "bad", True, T0))
    assert failed is not None and failed.status == Status.FAILED
    retry = TranscodeRetryRequested("r", "v1", "alice", T0 + timedelta(minutes=9))
    assert video.apply(base, retry) is base  # not FAILED
    assert video.apply(failed, replace(retry, owner="mallory")) is failed
    queued = video.apply(failed, retry)
    assert queued is not None and queued.status == Status.PENDING_TRANSCODE
    assert queued.job_id != job and queued.attempt == 1 and queued.error_code is None
    jobs = video.job_to_start(failed, queued, LADDER, T0)
    assert jobs is not None and jobs.job_id == queued.job_id and jobs.attempt == 1
    assert video.apply(queued, retry) is queued  # redelivered: no second job
    assert video.job_to_start(queued, queued, LADDER, T0) is None
    # The old job's late results no longer fit the state.
    late = TranscodeFailed("f2", "v1", job, 1, "X", "x", True, T0)
    assert video.apply(queued, late) is queued
