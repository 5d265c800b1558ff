"""Upload sessions: a pre-signed direct upload, then a verified, idempotent CompleteUpload.

The use cases behind ``CreateUploadURL`` and ``CompleteUpload`` (REST: ``http/uploads.py``;
gRPC: ``grpc/servicer.py``). The browser never streams video through the API. The session
lives only as events on ``uploads`` and in the workers' VideoState table; this module reads
that table through the worker client and publishes events, nothing else.

CompleteUpload verifies the session (owner, expiry -> 410, etag -> 412/428), that the object
really exists (409) and matches what was declared (size and content type -> 422, a recognised
video container -> 415): the development object stores do not enforce POST policies, so the
service never trusts them. A repeat with the same etag returns the same answer and publishes
nothing; the decision "exactly one job" is the video-state agent's (the single consumer of the
video's partition), so concurrent duplicates cannot race.
"""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tritontube import metrics
from tritontube.domain import video
from tritontube.domain.events import UploadCompleted, UploadSessionCreated, VideoState
from tritontube.http.media_sniff import looks_like_video
from tritontube.http.publisher import BrokerUnavailableError
from tritontube.http.worker_client import WorkerUnavailableError
from tritontube.problems import Problem, etag_mismatch, not_found, unavailable
from tritontube.services import Services
from tritontube.storage.port import ObjectStoreError, PresignedPost
from tritontube.streams import catalogue

MAX_TAGS = 20
MAX_TAG_LENGTH = 40
MAX_TITLE = 200
MAX_DESCRIPTION = 5000
SNIFF_BYTES = 512
Visibility = Literal["public", "unlisted", "private"]


def clean_tags(tags: list[str]) -> list[str]:
    """Trimmed, lower-cased, each once; ValueError naming the rule otherwise."""
    clean: list[str] = []
    for tag in tags:
        t = tag.strip().lower()
        if not t or len(t) > MAX_TAG_LENGTH or any(ch in t for ch in "\x00\r\n\t"):
            raise ValueError(f"each tag must be 1-{MAX_TAG_LENGTH} printable characters")
        if t not in clean:
            clean.append(t)
    return clean


class UploadUrlRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=False, str_strip_whitespace=True)

    title: str = Field(min_length=1, max_length=MAX_TITLE)
    description: str = Field("", max_length=MAX_DESCRIPTION)
    tags: list[str] = Field(default_factory=list, max_length=MAX_TAGS)
    file_name: str = Field(alias="fileName", min_length=1, max_length=255)
    content_type: str = Field(alias="contentType", min_length=3, max_length=100)
    size_bytes: int = Field(alias="sizeBytes", gt=0, strict=True)
    visibility: Visibility = "public"

    @field_validator("tags")
    @classmethod
    def _tags(cls, tags: list[str]) -> list[str]:
        return clean_tags(tags)

    @field_validator("file_name")
    @classmethod
    def _file_name(cls, name: str) -> str:
        if any(ord(ch) < 32 for ch in name) or "/" in name or "\\" in name or name in (".", ".."):
            raise ValueError("fileName must be a plain file name without path separators")
        return name

    @field_validator("content_type")
    @classmethod
    def _content_type(cls, value: str) -> str:
        return value.lower()


class CompleteUploadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    video_id: str = Field(alias="videoId", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")


def new_video_id() -> str:
    return uuid.uuid4().hex[:16]


def count_rejection(reason: str) -> None:
    metrics.UPLOADS_REJECTED.labels(reason).inc()


def rejected(reason: str, problem: Problem) -> Problem:
    """``problem``, counted as an upload rejected for ``reason``."""
    count_rejection(reason)
    return problem


@dataclass(frozen=True)
class UploadGrant:
    """A new upload session: where the browser posts the file, until when, and its etag."""

    video_id: str
    post: PresignedPost
    expires_at: datetime
    etag: str


async def create_upload_url(services: Services, user: str, body: UploadUrlRequest) -> UploadGrant:
    up = services.settings.upload
    if body.size_bytes > up.max_size_bytes:
        raise rejected(
            "too_large",
            Problem(
                413,
                "Upload too large",
                f"sizeBytes exceeds the maximum of {up.max_size_bytes}",
                code="TOO_LARGE",
                errors=[{"field": "sizeBytes", "message": "too large"}],
            ),
        )
    if (
        not body.content_type.startswith("video/")
        or body.content_type not in up.allowed_content_types
    ):
        raise rejected(
            "content_type",
            Problem(
                415,
                "Unsupported content type",
                f"contentType must be one of {', '.join(up.allowed_content_types)}",
                code="CONTENT_TYPE",
                errors=[{"field": "contentType", "message": "not allowed"}],
            ),
        )
    started = time.perf_counter()
    now = services.clock.now().replace(microsecond=0)
    video_id = new_video_id()
    key = video.source_key(video_id, body.file_name)
    try:
        post = await services.store.presign_post(
            key, body.content_type, body.size_bytes, up.session_ttl_seconds
        )
    except ObjectStoreError as exc:
        raise unavailable("object store", exc, retry_after=5) from exc
    metrics.UPLOAD_PRESIGN_SECONDS.observe(time.perf_counter() - started)
    expires_at = now + timedelta(seconds=up.session_ttl_seconds)
    etag = secrets.token_urlsafe(18)
    event = UploadSessionCreated(
        event_id=uuid.uuid4().hex,
        video_id=video_id,
        owner=user,
        title=body.title,
        description=body.description,
        tags=tuple(body.tags),
        file_name=body.file_name,
        content_type=body.content_type,
        declared_size_bytes=body.size_bytes,
        source_key=key,
        etag=etag,
        created_at=now,
        expires_at=expires_at,
        visibility=body.visibility,
    )
    try:
        await services.publisher.publish(catalogue.UPLOADS, video_id, event)
    except BrokerUnavailableError as exc:
        raise unavailable("event log", exc, retry_after=5) from exc
    metrics.UPLOADS_STARTED.inc()
    return UploadGrant(video_id=video_id, post=post, expires_at=expires_at, etag=etag)


async def complete_upload(services: Services, user: str, video_id: str, etag: str) -> VideoState:
    """The video's state once the completion is folded: PENDING_TRANSCODE or later, with the
    job it recorded. ``etag`` is the session's (If-Match, already unquoted)."""
    workers = services.workers
    try:
        # The session event may still be in flight right after uploadURL: wait briefly.
        state = await workers.wait_for(video_id, lambda s: s is not None, timeout=2.0)
    except WorkerUnavailableError as exc:
        raise unavailable("video state", exc, retry_after=5) from exc
    if state is None or state.owner != user or video.is_deleted(state):
        raise rejected("not_found", not_found("no such upload session"))
    if state.upload_etag != etag:
        raise rejected("stale_etag", etag_mismatch("If-Match does not match the session"))
    if state.status not in (
        video.Status.UPLOAD_PENDING,
        video.Status.UPLOADED,
        video.Status.EXPIRED,
    ):
        return state  # already completed: same answer, nothing published
    now = services.clock.now()
    if state.status == video.Status.EXPIRED or now >= state.expires_at:
        raise rejected(
            "expired",
            Problem(410, "Gone", "the upload session has expired", code="SESSION_EXPIRED"),
        )
    await verify_object(services, state)
    event = UploadCompleted(
        event_id=uuid.uuid4().hex,
        video_id=state.video_id,
        owner=user,
        etag=etag,
        source_key=state.source_key,
        size_bytes=state.declared_size_bytes,
        content_type=state.content_type,
        completed_at=now,
    )
    try:
        await services.publisher.publish(catalogue.UPLOADS, state.video_id, event)
        done = await workers.wait_for(
            state.video_id,
            lambda s: s is not None and s.status != video.Status.UPLOAD_PENDING,
            timeout=10.0,
        )
    except BrokerUnavailableError as exc:
        raise unavailable("event log", exc, retry_after=5) from exc
    except WorkerUnavailableError as exc:
        raise unavailable("video state", exc, retry_after=5) from exc
    if done is None or done.status == video.Status.UPLOAD_PENDING:
        raise unavailable("video state", "completion not yet applied", retry_after=5)
    metrics.UPLOADS_COMPLETED.inc()
    return done


async def verify_object(services: Services, state: VideoState) -> None:
    """The development object stores do not enforce POST policies: check the object ourselves."""
    store = services.store
    key = state.source_key
    try:
        info = await store.head(key)
        head = b"" if info is None or info.size == 0 else await store.get_range(key, 0, SNIFF_BYTES)
    except ObjectStoreError as exc:
        raise unavailable("object store", exc, retry_after=5) from exc
    if info is None:
        raise rejected(
            "missing_object",
            Problem(409, "Conflict", "the file has not been uploaded", code="OBJECT_MISSING"),
        )
    if info.size != state.declared_size_bytes:
        raise rejected(
            "size_mismatch",
            Problem(
                422,
                "Upload does not match",
                f"uploaded {info.size} bytes but {state.declared_size_bytes} were declared",
                code="SIZE_MISMATCH",
            ),
        )
    if (info.content_type or "").lower() != state.content_type:
        raise rejected(
            "content_type_mismatch",
            Problem(
                422,
                "Upload does not match",
                f"uploaded content type {info.content_type!r}, declared {state.content_type!r}",
                code="CONTENT_TYPE_MISMATCH",
            ),
        )
    if not looks_like_video(head):
        raise rejected(
            "not_video",
            Problem(
                415,
                "Not a video",
                "the uploaded file is not a recognised video container",
                code="NOT_VIDEO",
            ),
        )
