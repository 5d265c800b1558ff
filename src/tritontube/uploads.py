"""Upload sessions: a pre-signed direct upload, then a verified, idempotent CompleteUpload.

The use cases behind ``CreateUploadURL``, ``CompleteUpload``, ``SignUploadParts`` and
``ListUploadParts`` (REST: ``http/uploads.py``, ``http/multipart.py``; gRPC:
``grpc/servicer.py``). Two ways up, both straight to the object store: one pre-signed POST (a
form whose policy pins the key, the content type and exactly the declared size), or, for
clients that say ``resumable: true`` and files above ``upload.multipart_threshold_bytes``, an
S3 multipart upload: the client PUTs parts to pre-signed part URLs in parallel, asks which
parts are stored after a reload or a dropped connection, and CompleteUpload joins them (the
protocol Uppy's AwsS3 multipart plugin and Mux/Cloudflare direct uploads use). The browser
never streams video through the API. The session
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

import re
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
from tritontube.domain.multipart import MAX_PARTS, PartPlan, check_parts, plan_parts
from tritontube.http.media_sniff import looks_like_video
from tritontube.http.publisher import BrokerUnavailableError
from tritontube.http.worker_client import WorkerUnavailableError
from tritontube.problems import Problem, etag_mismatch, invalid, not_found, unavailable
from tritontube.services import Services
from tritontube.storage.port import ObjectStoreError, PartInfo, PresignedPost, UploadNotFound
from tritontube.streams import catalogue
from tritontube.videos import check_video_id, state_unavailable

MAX_TAGS = 20
MAX_TAG_LENGTH = 40
MAX_TITLE = 200
MAX_DESCRIPTION = 5000
SNIFF_BYTES = 512
UPLOAD_ID_PATTERN = r"^[A-Za-z0-9._~=+/-]+$"
MAX_PARTS_PER_REQUEST = 100
_UPLOAD_ID = re.compile(UPLOAD_ID_PATTERN)
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
    resumable: bool = Field(
        False,
        strict=True,
        description="The client can upload in parts: above the server's threshold the "
        "session is a multipart upload (`multipart` in the answer) instead of a form POST.",
    )

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
    upload_id: str | None = Field(
        None,
        alias="uploadId",
        min_length=1,
        max_length=256,
        pattern=UPLOAD_ID_PATTERN,
        description="The multipart session's upload id: its parts are joined first.",
    )


class SignPartsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    upload_id: str = Field(
        alias="uploadId", min_length=1, max_length=256, pattern=UPLOAD_ID_PATTERN
    )
    part_numbers: list[int] = Field(
        alias="partNumbers", min_length=1, max_length=MAX_PARTS_PER_REQUEST
    )

    @field_validator("part_numbers")
    @classmethod
    def _numbers(cls, numbers: list[int]) -> list[int]:
        if any(not 1 <= n <= MAX_PARTS for n in numbers):
            raise ValueError(f"each part number must be within 1..{MAX_PARTS}")
        return sorted(set(numbers))


def new_video_id() -> str:
    return uuid.uuid4().hex[:16]


def count_rejection(reason: str) -> None:
    metrics.UPLOADS_REJECTED.labels(reason).inc()


def rejected(reason: str, problem: Problem) -> Problem:
    """``problem``, counted as an upload rejected for ``reason``."""
    count_rejection(reason)
    return problem


@dataclass(frozen=True)
class MultipartSession:
    """A multipart upload: its id and how the file is cut into parts."""

    upload_id: str
    plan: PartPlan


@dataclass(frozen=True)
class UploadGrant:
    """A new upload session: where the file goes (a form POST, or parts of a multipart
    upload), until when, and its etag."""

    video_id: str
    post: PresignedPost | None
    multipart: MultipartSession | None
    expires_at: datetime
    etag: str


async def create_upload_url(services: Services, user: str, body: UploadUrlRequest) -> UploadGrant:
    up = services.settings.upload
    in_parts = body.resumable and body.size_bytes > up.multipart_threshold_bytes
    limit = up.multipart_max_size_bytes if in_parts else up.max_size_bytes
    if body.size_bytes > limit:
        hint = (
            f" (up to {up.multipart_max_size_bytes} in parts with resumable: true)"
            if not body.resumable and body.size_bytes <= up.multipart_max_size_bytes
            else ""
        )
        raise rejected(
            "too_large",
            Problem(
                413,
                "Upload too large",
                f"sizeBytes exceeds the maximum of {limit}{hint}",
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
    store = services.store
    post: PresignedPost | None = None
    multipart: MultipartSession | None = None
    try:
        if in_parts:
            plan = plan_parts(body.size_bytes, up.part_size_bytes)
            upload_id = await store.create_multipart(key, body.content_type)
            multipart = MultipartSession(upload_id=upload_id, plan=plan)
            ttl = up.multipart_session_ttl_seconds
        else:
            # The policy pins the key, the type and the declared size: the store refuses
            # any other.
            post = await store.presign_post(
                key,
                body.content_type,
                body.size_bytes,
                up.session_ttl_seconds,
                min_size_bytes=body.size_bytes,
            )
            ttl = up.session_ttl_seconds
    except ObjectStoreError as exc:
        raise unavailable("object store", exc, retry_after=5) from exc
    metrics.UPLOAD_PRESIGN_SECONDS.observe(time.perf_counter() - started)
    expires_at = now + timedelta(seconds=ttl)
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
    return UploadGrant(
        video_id=video_id, post=post, multipart=multipart, expires_at=expires_at, etag=etag
    )


async def complete_upload(
    services: Services, user: str, video_id: str, etag: str, upload_id: str | None = None
) -> VideoState:
    """The video's state once the completion is folded: PENDING_TRANSCODE or later, with the
    job it recorded. ``etag`` is the session's (If-Match, already unquoted); ``upload_id`` a
    multipart session's, whose parts are joined first."""
    workers = services.workers
    try:
        # The session event may still be in flight right after uploadURL: wait briefly.
        state = await workers.wait_for(video_id, lambda s: s is not None, timeout=2.0)
    except WorkerUnavailableError as exc:
        raise unavailable("video state", exc, retry_after=5) from exc
    if state is None:
        await _store_reachable(services)  # the embedded event log is read from the store
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
    if upload_id is not None:
        await _join_parts(services, state, upload_id)
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


# -- multipart sessions ---------------------------------------------------------------------


def part_plan(services: Services, state: VideoState) -> PartPlan:
    """The parts a multipart session's declared size was cut into (as at its start)."""
    return plan_parts(state.declared_size_bytes, services.settings.upload.part_size_bytes)


async def stored_parts(services: Services, state: VideoState, upload_id: str) -> list[PartInfo]:
    """The parts the store holds for the session's upload ``upload_id`` (404 when that upload
    is not the session's, or is finished or aborted)."""
    try:
        return await services.store.list_parts(state.source_key, upload_id)
    except UploadNotFound:
        raise Problem(
            404, "Not Found", "no such multipart upload for this video", code="UPLOAD_NOT_FOUND"
        ) from None
    except ObjectStoreError as exc:
        raise unavailable("object store", exc, retry_after=5) from exc


async def _join_parts(services: Services, state: VideoState, upload_id: str) -> None:
    """Join the stored parts into the source object once all are there, each of its planned
    size (409 naming the missing ones otherwise). A repeat after the join finds the object."""
    store = services.store
    key = state.source_key
    try:
        joined = await store.head(key)
    except ObjectStoreError as exc:
        raise unavailable("object store", exc, retry_after=5) from exc
    if joined is not None and joined.size == state.declared_size_bytes:
        try:
            await store.list_parts(key, upload_id)
        except UploadNotFound:
            return  # joined by an earlier completeUpload
        except ObjectStoreError as exc:
            raise unavailable("object store", exc, retry_after=5) from exc
    parts = await stored_parts(services, state, upload_id)
    check = check_parts(part_plan(services, state), ((p.part_number, p.size) for p in parts))
    if not check.complete:
        missing = list(check.missing[:20]) + (["..."] if len(check.missing) > 20 else [])
        raise rejected(
            "parts_missing",
            Problem(
                409,
                "Conflict",
                f"parts missing: {missing}; parts of the wrong size: {list(check.wrong)[:20]}",
                code="PARTS_INCOMPLETE",
            ),
        )
    try:
        await store.complete_multipart(key, upload_id, parts)
    except UploadNotFound:
        return  # joined concurrently by a duplicate request
    except ObjectStoreError as exc:
        raise unavailable("object store", exc, retry_after=5) from exc


async def _store_reachable(services: Services) -> None:
    """503 rather than "no such session" while the object store is down: the worker cannot
    read a session the log acknowledged when the log's storage (the embedded broker keeps it
    in the object store) cannot be read."""
    try:
        await services.store.ping()
    except ObjectStoreError as exc:
        raise unavailable("object store", exc, retry_after=5) from exc


async def open_session(services: Services, user: str, video_id: str) -> VideoState:
    """The caller's own session, still open for parts (404 / 409 / 410 otherwise). Right
    after uploadURL the session event may still be on its way to the worker: wait for it
    briefly, as completeUpload does."""
    try:
        state = await services.workers.wait_for(
            check_video_id(video_id), lambda s: s is not None, timeout=2.0
        )
    except WorkerUnavailableError as exc:
        raise state_unavailable(exc) from exc
    if state is None or state.owner != user or video.is_deleted(state):
        raise not_found()
    now = services.clock.now()
    if state.status == video.Status.EXPIRED or now >= state.expires_at:
        raise Problem(410, "Gone", "the upload session has expired", code="SESSION_EXPIRED")
    if state.status != video.Status.UPLOAD_PENDING:
        raise Problem(409, "Conflict", "the upload is already complete", code="UPLOAD_COMPLETED")
    return state


@dataclass(frozen=True)
class SignedPart:
    number: int
    size_bytes: int
    url: str


@dataclass(frozen=True)
class SignedParts:
    """Pre-signed PUT URLs for some parts of a multipart session, valid until ``expires_at``."""

    video_id: str
    upload_id: str
    plan: PartPlan
    parts: list[SignedPart]
    expires_at: datetime


async def sign_parts(
    services: Services, user: str, video_id: str, body: SignPartsRequest
) -> SignedParts:
    state = await open_session(services, user, video_id)
    plan = part_plan(services, state)
    outside = [n for n in body.part_numbers if n > plan.count]
    if outside:
        raise invalid(("partNumbers", f"outside 1..{plan.count}: {outside}"))
    await stored_parts(services, state, body.upload_id)  # 404 unless it is this session's
    now = services.clock.now()
    remaining = int((state.expires_at - now).total_seconds())
    ttl = max(1, min(services.settings.upload.part_url_ttl_seconds, remaining))
    try:
        parts = [
            SignedPart(
                number=n,
                size_bytes=plan.expected_size(n),
                url=await services.store.presign_upload_part(
                    state.source_key, body.upload_id, n, ttl
                ),
            )
            for n in body.part_numbers
        ]
    except ObjectStoreError as exc:
        raise unavailable("object store", exc, retry_after=5) from exc
    return SignedParts(
        video_id=state.video_id,
        upload_id=body.upload_id,
        plan=plan,
        parts=parts,
        expires_at=now + timedelta(seconds=ttl),
    )


async def list_parts(
    services: Services, user: str, video_id: str, upload_id: str
) -> tuple[VideoState, PartPlan, list[PartInfo]]:
    """The parts the store holds for a session's multipart upload (to resume it)."""
    state = await open_session(services, user, video_id)
    if not 1 <= len(upload_id) <= 256 or not _UPLOAD_ID.match(upload_id):
        raise invalid(("uploadId", "missing or malformed"))
    return state, part_plan(services, state), await stored_parts(services, state, upload_id)


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
