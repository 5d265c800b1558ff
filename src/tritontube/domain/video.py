"""The video lifecycle as a pure state machine: ``apply(state, event) -> state``.

UPLOAD_PENDING -> UPLOADED -> PENDING_TRANSCODE -> TRANSCODING -> READY | FAILED(reason);
UPLOAD_PENDING -> EXPIRED. READY, FAILED and EXPIRED are terminal for the transcoder.
The owner manages a video with events of their own: ``VideoMetadataUpdated`` (title,
description, tags, visibility; only while the metadata etag is the one the edit was based
on), ``TranscodeRetryRequested`` (FAILED -> PENDING_TRANSCODE with a new job) and
``VideoDeleted`` (any state -> DELETING), after which ``VideoPurged`` (the objects are gone)
removes the state: ``apply`` returns None, and the table and the compacted topics get a
tombstone.

``apply`` is idempotent under redelivery: an event whose id was applied recently, or that no
longer fits the state (a stale attempt, progress after READY, an edit of an older version),
returns the state unchanged. Every real change increments ``version``.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from tritontube.domain.events import (
    Rendition,
    RenditionProgress,
    RenditionReady,
    RenditionState,
    TranscodeFailed,
    TranscodeJob,
    TranscodeProgress,
    TranscodeRetryRequested,
    TranscodeSucceeded,
    UploadCompleted,
    UploadSessionCreated,
    UploadSessionExpired,
    VideoDeleted,
    VideoEvent,
    VideoMetadataUpdated,
    VideoPurged,
    VideoState,
)

RECENT_EVENT_IDS = 64


class Status(StrEnum):
    UPLOAD_PENDING = "UPLOAD_PENDING"
    UPLOADED = "UPLOADED"
    PENDING_TRANSCODE = "PENDING_TRANSCODE"
    TRANSCODING = "TRANSCODING"
    READY = "READY"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"
    DELETING = "DELETING"


# States no transcode job may run in (DELETING: the owner deleted the video).
TERMINAL = frozenset({Status.READY, Status.FAILED, Status.EXPIRED, Status.DELETING})
TRANSCODE_ACTIVE = frozenset({Status.PENDING_TRANSCODE, Status.TRANSCODING})
VISIBILITIES = ("public", "unlisted", "private")


class _Removed:
    """What a fold step returns when the video's state is to be removed."""


_REMOVED = _Removed()


def apply(state: VideoState | None, event: VideoEvent) -> VideoState | None:
    """The state after ``event``; the same object when the event changes nothing; None after
    ``VideoPurged`` (the state is removed)."""
    if state is not None and _event_id(event) in state.recent_event_ids:
        return state
    new: VideoState | _Removed | None
    match event:
        case UploadSessionCreated():
            new = _created(state, event)
        case UploadCompleted():
            new = _completed(state, event)
        case UploadSessionExpired():
            new = _expired(state, event)
        case TranscodeProgress():
            new = _progress(state, event)
        case RenditionReady():
            new = _rendition_ready(state, event)
        case TranscodeSucceeded():
            new = _succeeded(state, event)
        case TranscodeFailed():
            new = _failed(state, event)
        case VideoMetadataUpdated():
            new = _metadata_updated(state, event)
        case TranscodeRetryRequested():
            new = _retry_requested(state, event)
        case VideoDeleted():
            new = _deleted(state, event)
        case VideoPurged():
            new = _purged(state, event)
    if isinstance(new, _Removed):
        return None
    if new is None or new is state:
        return state
    ids = (*new.recent_event_ids, _event_id(event))[-RECENT_EVENT_IDS:]
    base = 0 if state is None else state.version
    return replace(new, version=base + 1, recent_event_ids=ids)


def is_deleted(state: VideoState | None) -> bool:
    """Gone for every reader: removed, or deleted by its owner and being purged."""
    return state is None or state.status == Status.DELETING


def is_playable(state: VideoState) -> bool:
    """Playable once the first rendition is ready (the manifest then exists)."""
    return state.manifest_key is not None and any(r.status == "READY" for r in state.renditions)


def job_to_start(
    before: VideoState | None, after: VideoState | None, ladder: tuple[str, ...], now: datetime
) -> TranscodeJob | None:
    """The first transcode job, exactly when a video has just become PENDING_TRANSCODE (its
    upload completed, or its owner asked for a retry: a new job id)."""
    if after is None or after.status != Status.PENDING_TRANSCODE or after.job_id is None:
        return None
    if before is not None and before.job_id == after.job_id:
        return None
    return TranscodeJob(
        job_id=after.job_id,
        video_id=after.video_id,
        source_key=after.source_key,
        ladder=ladder,
        output_prefix=output_prefix(after.video_id),
        attempt=1,
        not_before=now,
        created_at=now,
    )


def expire_if_due(state: VideoState, now: datetime, event_id: str) -> UploadSessionExpired | None:
    """The expiry event for a session still waiting for its upload after ``expires_at``."""
    if state.status != Status.UPLOAD_PENDING or now < state.expires_at:
        return None
    return UploadSessionExpired(event_id=event_id, video_id=state.video_id, expired_at=now)


def upload_prefix(video_id: str) -> str:
    return f"uploads/{video_id}/"


def media_prefix(video_id: str) -> str:
    """Everything playable of a video (its DASH package and poster) lives under this."""
    return f"media/{video_id}/"


def output_prefix(video_id: str) -> str:
    return f"{media_prefix(video_id)}dash/"


def source_key(video_id: str, file_name: str) -> str:
    """Object key of the uploaded source: the video's own prefix, never the client's path."""
    base = file_name.replace("\\", "/").rsplit("/", 1)[-1]
    suffix = base.rsplit(".", 1)[-1].lower() if "." in base else ""
    safe = suffix if suffix.isascii() and suffix.isalnum() and len(suffix) <= 5 else "bin"
    return f"{upload_prefix(video_id)}source.{safe}"


def job_id_for(video_id: str, etag: str) -> str:
    """Deterministic job id: the same completed session always names the same job."""
    return f"{video_id}:{etag}"


def retry_job_id(state: VideoState) -> str:
    """The job of a retry requested at ``state``'s version: a new id for every retry, the same
    one whenever the same retry is folded again."""
    return f"{job_id_for(state.video_id, state.upload_etag)}:r{state.version}"


# -- the owner's metadata ---------------------------------------------------------------


@dataclass(frozen=True)
class MetadataPatch:
    """The editable metadata a request changes; None leaves a field as it is."""

    title: str | None = None
    description: str | None = None
    tags: tuple[str, ...] | None = None
    visibility: str | None = None

    @property
    def is_empty(self) -> bool:
        return all(v is None for v in (self.title, self.description, self.tags, self.visibility))


def metadata_etag(state: VideoState) -> str:
    """The video's etag: a digest of its editable metadata (title, description, tags,
    visibility), so it changes with every edit and with nothing else (transcode progress does
    not make an owner's edit stale). Strong: an If-Match compares it byte for byte."""
    fields = [state.video_id, state.title, state.description, list(state.tags), state.visibility]
    digest = hashlib.sha256(json.dumps(fields, ensure_ascii=False).encode()).digest()
    return base64.urlsafe_b64encode(digest[:12]).decode()


def metadata_changes(state: VideoState, patch: MetadataPatch) -> MetadataPatch:
    """The part of ``patch`` that differs from ``state`` (empty when it changes nothing)."""
    return MetadataPatch(
        title=patch.title if patch.title not in (None, state.title) else None,
        description=(
            patch.description if patch.description not in (None, state.description) else None
        ),
        tags=patch.tags if patch.tags is not None and patch.tags != state.tags else None,
        visibility=(patch.visibility if patch.visibility not in (None, state.visibility) else None),
    )


def _event_id(event: VideoEvent) -> str:
    return event.event_id


def _created(state: VideoState | None, e: UploadSessionCreated) -> VideoState | None:
    if state is not None:
        return state
    return VideoState(
        video_id=e.video_id,
        version=0,
        status=Status.UPLOAD_PENDING,
        owner=e.owner,
        title=e.title,
        description=e.description,
        tags=tuple(e.tags),
        visibility=e.visibility,
        file_name=e.file_name,
        content_type=e.content_type,
        declared_size_bytes=e.declared_size_bytes,
        source_key=e.source_key,
        upload_etag=e.etag,
        created_at=e.created_at,
        updated_at=e.created_at,
        expires_at=e.expires_at,
    )


def _completed(state: VideoState | None, e: UploadCompleted) -> VideoState | None:
    if state is None or state.status not in (Status.UPLOAD_PENDING, Status.UPLOADED):
        return state
    if e.etag != state.upload_etag or e.owner != state.owner:
        return state
    return replace(
        state,
        status=Status.PENDING_TRANSCODE,
        source_key=e.source_key,
        job_id=job_id_for(state.video_id, e.etag),
        attempt=1,
        step=None,
        percent=0.0,
        updated_at=e.completed_at,
    )


def _expired(state: VideoState | None, e: UploadSessionExpired) -> VideoState | None:
    if state is None or state.status != Status.UPLOAD_PENDING:
        return state
    return replace(state, status=Status.EXPIRED, updated_at=e.expired_at)


def _metadata_updated(state: VideoState | None, e: VideoMetadataUpdated) -> VideoState | None:
    if state is None or state.status == Status.DELETING or e.owner != state.owner:
        return state
    if metadata_etag(state) != e.expected_etag:
        return state  # edited since the version this edit was based on: it loses
    if e.visibility is not None and e.visibility not in VISIBILITIES:
        return state
    changed = replace(
        state,
        title=state.title if e.title is None else e.title,
        description=state.description if e.description is None else e.description,
        tags=state.tags if e.tags is None else tuple(e.tags),
        visibility=state.visibility if e.visibility is None else e.visibility,
    )
    if metadata_etag(changed) == metadata_etag(state):
        return state
    return replace(changed, updated_at=e.updated_at)


def _retry_requested(state: VideoState | None, e: TranscodeRetryRequested) -> VideoState | None:
    if state is None or state.status != Status.FAILED or e.owner != state.owner:
        return state
    return replace(
        state,
        status=Status.PENDING_TRANSCODE,
        job_id=retry_job_id(state),
        attempt=1,
        step=None,
        percent=0.0,
        eta_seconds=None,
        error_code=None,
        error_message=None,
        updated_at=e.requested_at,
    )


def _deleted(state: VideoState | None, e: VideoDeleted) -> VideoState | None:
    if state is None or state.status == Status.DELETING or e.owner != state.owner:
        return state
    return replace(state, status=Status.DELETING, step=None, updated_at=e.deleted_at)


def _purged(state: VideoState | None, e: VideoPurged) -> VideoState | _Removed | None:
    if state is None or state.status != Status.DELETING:
        return state
    return _REMOVED


def _current_job(state: VideoState | None, job_id: str, attempt: int) -> bool:
    return (
        state is not None
        and state.status in TRANSCODE_ACTIVE
        and state.job_id == job_id
        and attempt >= state.attempt
    )


def _progress(state: VideoState | None, e: TranscodeProgress) -> VideoState | None:
    if state is None or not _current_job(state, e.job_id, e.attempt):
        return state
    return replace(
        state,
        status=Status.TRANSCODING,
        attempt=e.attempt,
        step=e.step,
        percent=max(0.0, min(100.0, e.percent)),
        eta_seconds=e.eta_seconds,
        renditions=_merge_progress(state.renditions, e.renditions),
        updated_at=e.ts,
    )


def _merge_progress(
    current: tuple[RenditionState, ...], progress: tuple[RenditionProgress, ...]
) -> tuple[RenditionState, ...]:
    by_name = {r.name: r for r in current}
    for p in progress:
        old = by_name.get(p.name)
        if old is not None and old.status == "READY":
            continue
        pct = max(0.0, min(100.0, p.percent))
        by_name[p.name] = (
            replace(old, status="ENCODING", percent=pct)
            if old is not None
            else RenditionState(name=p.name, status="ENCODING", percent=pct)
        )
    return tuple(by_name.values())


def _ready_state(r: Rendition) -> RenditionState:
    return RenditionState(
        name=r.name,
        status="READY",
        percent=100.0,
        width=r.width,
        height=r.height,
        bandwidth_bps=r.bandwidth_bps,
    )


def _rendition_ready(state: VideoState | None, e: RenditionReady) -> VideoState | None:
    if state is None or state.status not in TRANSCODE_ACTIVE or state.job_id != e.job_id:
        return state
    others = tuple(r for r in state.renditions if r.name != e.rendition.name)
    return replace(
        state,
        status=Status.TRANSCODING,
        renditions=(*others, _ready_state(e.rendition)),
        manifest_key=e.manifest_key,
        updated_at=e.ts,
    )


def _succeeded(state: VideoState | None, e: TranscodeSucceeded) -> VideoState | None:
    if state is None or state.status not in TRANSCODE_ACTIVE or state.job_id != e.job_id:
        return state
    return replace(
        state,
        status=Status.READY,
        attempt=e.attempt,
        step=None,
        percent=100.0,
        eta_seconds=0.0,
        renditions=tuple(_ready_state(r) for r in e.renditions),
        manifest_key=e.manifest_key,
        thumbnail_key=e.thumbnail_key,
        duration_seconds=e.duration_seconds,
        error_code=None,
        error_message=None,
        updated_at=e.ts,
    )


def _failed(state: VideoState | None, e: TranscodeFailed) -> VideoState | None:
    if state is None or not _current_job(state, e.job_id, e.attempt):
        return state
    if not e.final:
        return replace(
            state,
            status=Status.PENDING_TRANSCODE,
            attempt=e.attempt + 1,
            step=None,
            error_code=e.reason,
            error_message=e.message,
            updated_at=e.ts,
        )
    return replace(
        state,
        status=Status.FAILED,
        step=None,
        eta_seconds=None,
        error_code=e.reason,
        error_message=e.message,
        updated_at=e.ts,
    )
