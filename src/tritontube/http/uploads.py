"""Upload sessions: a pre-signed direct upload, then a verified, idempotent CompleteUpload.

Two ways up, both straight to the object store: one pre-signed POST (a form whose policy pins
the key, the content type and exactly the declared size), or, for clients that say
``resumable: true`` and files above ``upload.multipart_threshold_bytes``, an S3 multipart
upload: the client PUTs parts to pre-signed part URLs in parallel, asks which parts are stored
after a reload or a dropped connection (``http/multipart.py``), and completeUpload joins them.
The browser never streams video through this service. The session lives only as events on
``uploads`` and in the worker's VideoState table; this module reads that table through the
worker and publishes events, nothing else.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from datetime import timedelta
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tritontube import metrics
from tritontube.domain import video
from tritontube.domain.events import UploadCompleted, UploadSessionCreated, VideoState
from tritontube.domain.multipart import PartPlan, check_parts, plan_parts
from tritontube.http import keys
from tritontube.http.auth import current_user
from tritontube.http.media_sniff import looks_like_video
from tritontube.http.problems import ProblemError, validation_problem
from tritontube.http.publisher import BrokerUnavailableError
from tritontube.http.worker_client import WorkerUnavailableError
from tritontube.storage.port import ObjectStoreError, PartInfo, UploadNotFound
from tritontube.streams import catalogue

MAX_TAGS = 20
MAX_TAG_LENGTH = 40
SNIFF_BYTES = 512
UPLOAD_ID_PATTERN = r"^[A-Za-z0-9._~=+/-]+$"


class UploadUrlRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=False, str_strip_whitespace=True)

    title: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=5000)
    tags: list[str] = Field(default_factory=list, max_length=MAX_TAGS)
    file_name: str = Field(alias="fileName", min_length=1, max_length=255)
    content_type: str = Field(alias="contentType", min_length=3, max_length=100)
    size_bytes: int = Field(alias="sizeBytes", gt=0, strict=True)
    visibility: Literal["public", "unlisted", "private"] = "public"
    resumable: bool = Field(
        False,
        strict=True,
        description="The client can upload in parts: above the server's threshold the "
        "session is a multipart upload (`multipart` in the answer) instead of a form POST.",
    )

    @field_validator("tags")
    @classmethod
    def _tags(cls, tags: list[str]) -> list[str]:
        clean: list[str] = []
        for tag in tags:
            t = tag.strip().lower()
            if not t or len(t) > MAX_TAG_LENGTH or any(ch in t for ch in "\x00\r\n\t"):
                raise ValueError(f"each tag must be 1-{MAX_TAG_LENGTH} printable characters")
            if t not in clean:
                clean.append(t)
        return clean

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


async def read_json(request: web.Request, model: type[BaseModel]) -> Any:
    if request.content_type != "application/json":
        raise ProblemError(
            415, "Unsupported Media Type", "send the body as application/json", code="MEDIA_TYPE"
        )
    try:
        raw = await request.text()
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        # ValueError covers JSONDecodeError, UnicodeDecodeError and integers beyond
        # sys.get_int_max_str_digits() (a 5000-digit number is a CPU bomb, not a size).
        raise ProblemError(400, "Malformed JSON", str(exc)[:200], code="MALFORMED_JSON") from None
    if not isinstance(data, dict):
        raise ProblemError(
            422, "Invalid request", "the body must be a JSON object", code="VALIDATION"
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_problem(exc) from None


def new_video_id() -> str:
    return uuid.uuid4().hex[:16]


def _reject(reason: str) -> None:
    metrics.UPLOADS_REJECTED.labels(reason).inc()


def _unavailable(what: str, exc: Exception) -> ProblemError:
    return ProblemError(
        503,
        "Service Unavailable",
        f"{what} unavailable: {exc}",
        code="UNAVAILABLE",
        headers={"Retry-After": "5"},
    )


async def create_upload_url(request: web.Request) -> web.Response:
    """POST /v1/videos:uploadURL"""
    settings = request.app[keys.SETTINGS]
    user = current_user(request)
    try:
        body: UploadUrlRequest = await read_json(request, UploadUrlRequest)
    except ProblemError:
        _reject("invalid")
        raise
    up = settings.upload
    in_parts = body.resumable and body.size_bytes > up.multipart_threshold_bytes
    limit = up.multipart_max_size_bytes if in_parts else up.max_size_bytes
    if body.size_bytes > limit:
        _reject("too_large")
        hint = (
            f" (up to {up.multipart_max_size_bytes} in parts with resumable: true)"
            if not body.resumable and body.size_bytes <= up.multipart_max_size_bytes
            else ""
        )
        raise ProblemError(
            413,
            "Upload too large",
            f"sizeBytes exceeds the maximum of {limit}{hint}",
            code="TOO_LARGE",
            errors=[{"field": "sizeBytes", "message": "too large"}],
        )
    if (
        not body.content_type.startswith("video/")
        or body.content_type not in up.allowed_content_types
    ):
        _reject("content_type")
        raise ProblemError(
            415,
            "Unsupported content type",
            f"contentType must be one of {', '.join(up.allowed_content_types)}",
            code="CONTENT_TYPE",
            errors=[{"field": "contentType", "message": "not allowed"}],
        )
    started = time.perf_counter()
    now = request.app[keys.DEPS].clock.now().replace(microsecond=0)
    video_id = new_video_id()
    key = video.source_key(video_id, body.file_name)
    store = request.app[keys.OBJECT_STORE]
    answer: dict[str, Any]
    try:
        if in_parts:
            plan = plan_parts(body.size_bytes, up.part_size_bytes)
            upload_id = await store.create_multipart(key, body.content_type)
            ttl = up.multipart_session_ttl_seconds
            answer = {
                "multipart": {
                    "uploadId": upload_id,
                    "partSizeBytes": plan.part_size,
                    "partCount": plan.count,
                }
            }
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
            answer = {"upload": {"url": post.url, "fields": dict(post.fields)}}
    except ObjectStoreError as exc:
        raise _unavailable("object store", exc) from exc
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
        await request.app[keys.PUBLISHER].publish(catalogue.UPLOADS, video_id, event)
    except BrokerUnavailableError as exc:
        raise _unavailable("event log", exc) from exc
    metrics.UPLOADS_STARTED.inc()
    return web.json_response(
        {
            "videoId": video_id,
            **answer,
            "expiresAt": expires_at.isoformat().replace("+00:00", "Z"),
            "etag": etag,
        },
        headers={"ETag": f'"{etag}"'},
    )


def _if_match(request: web.Request) -> str:
    raw = request.headers.get("If-Match")
    if raw is None or not raw.strip():
        raise ProblemError(
            428, "Precondition Required", "send the session's etag in If-Match", code="IF_MATCH"
        )
    value = raw.strip()
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"')


def _complete_answer(state: VideoState) -> web.Response:
    """The same answer for every repeat: what the completion recorded (PENDING_TRANSCODE and
    its job), plus where the video is now (``currentStatus``, which moves on)."""
    return web.json_response(
        {
            "videoId": state.video_id,
            "status": video.Status.PENDING_TRANSCODE,
            "jobId": state.job_id,
            "currentStatus": state.status,
        },
        headers={"ETag": f'"{state.upload_etag}"'},
    )


async def complete_upload(request: web.Request) -> web.Response:
    """POST /v1/videos:completeUpload"""
    app = request.app
    user = current_user(request)
    etag = _if_match(request)
    body: CompleteUploadRequest = await read_json(request, CompleteUploadRequest)
    worker = app[keys.WORKER]
    try:
        # The session event may still be in flight right after uploadURL: wait briefly.
        state = await worker.wait_for(body.video_id, lambda s: s is not None, timeout=2.0)
    except WorkerUnavailableError as exc:
        raise _unavailable("video state", exc) from exc
    if state is None:
        await _store_reachable(request)  # the embedded event log is read from the store
    if state is None or state.owner != user:
        _reject("not_found")
        raise ProblemError(404, "Not Found", "no such upload session", code="NOT_FOUND")
    if state.upload_etag != etag:
        _reject("stale_etag")
        raise ProblemError(
            412, "Precondition Failed", "If-Match does not match the session", code="ETAG_MISMATCH"
        )
    if state.status not in (
        video.Status.UPLOAD_PENDING,
        video.Status.UPLOADED,
        video.Status.EXPIRED,
    ):
        return _complete_answer(state)  # already completed: same answer, nothing published
    now = app[keys.DEPS].clock.now()
    if state.status == video.Status.EXPIRED or now >= state.expires_at:
        _reject("expired")
        raise ProblemError(410, "Gone", "the upload session has expired", code="SESSION_EXPIRED")
    if body.upload_id is not None:
        await _join_parts(request, state, body.upload_id)
    await _verify_object(request, state)
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
        await app[keys.PUBLISHER].publish(catalogue.UPLOADS, state.video_id, event)
        done = await worker.wait_for(
            state.video_id,
            lambda s: s is not None and s.status != video.Status.UPLOAD_PENDING,
            timeout=10.0,
        )
    except BrokerUnavailableError as exc:
        raise _unavailable("event log", exc) from exc
    except WorkerUnavailableError as exc:
        raise _unavailable("video state", exc) from exc
    if done is None or done.status == video.Status.UPLOAD_PENDING:
        raise _unavailable("video state", TimeoutError("completion not yet applied"))
    metrics.UPLOADS_COMPLETED.inc()
    return _complete_answer(done)


def part_plan(request: web.Request, state: VideoState) -> PartPlan:
    """The parts a multipart session's declared size was cut into (as at its start)."""
    part_size = request.app[keys.SETTINGS].upload.part_size_bytes
    return plan_parts(state.declared_size_bytes, part_size)


async def stored_parts(request: web.Request, state: VideoState, upload_id: str) -> list[PartInfo]:
    """The parts the store holds for the session's upload ``upload_id`` (404 problem when that
    upload is not the session's, or is finished or aborted)."""
    try:
        return await request.app[keys.OBJECT_STORE].list_parts(state.source_key, upload_id)
    except UploadNotFound:
        raise ProblemError(
            404, "Not Found", "no such multipart upload for this video", code="UPLOAD_NOT_FOUND"
        ) from None
    except ObjectStoreError as exc:
        raise _unavailable("object store", exc) from exc


async def _join_parts(request: web.Request, state: VideoState, upload_id: str) -> None:
    """Join the stored parts into the source object once all are there, each of its planned
    size (409 naming the missing ones otherwise). A repeat after the join finds the object."""
    store = request.app[keys.OBJECT_STORE]
    key = state.source_key
    try:
        joined = await store.head(key)
    except ObjectStoreError as exc:
        raise _unavailable("object store", exc) from exc
    if joined is not None and joined.size == state.declared_size_bytes:
        try:
            await store.list_parts(key, upload_id)
        except UploadNotFound:
            return  # joined by an earlier completeUpload
        except ObjectStoreError as exc:
            raise _unavailable("object store", exc) from exc
    parts = await stored_parts(request, state, upload_id)
    check = check_parts(part_plan(request, state), ((p.part_number, p.size) for p in parts))
    if not check.complete:
        _reject("parts_missing")
        missing = list(check.missing[:20]) + (["..."] if len(check.missing) > 20 else [])
        raise ProblemError(
            409,
            "Conflict",
            f"parts missing: {missing}; parts of the wrong size: {list(check.wrong)[:20]}",
            code="PARTS_INCOMPLETE",
        )
    try:
        await store.complete_multipart(key, upload_id, parts)
    except UploadNotFound:
        return  # joined concurrently by a duplicate request
    except ObjectStoreError as exc:
        raise _unavailable("object store", exc) from exc


async def _store_reachable(request: web.Request) -> None:
    """503 rather than "no such session" while the object store is down: the worker cannot
    read a session the log acknowledged when the log's storage (the embedded broker keeps it
    in the object store) cannot be read."""
    try:
        await request.app[keys.OBJECT_STORE].ping()
    except ObjectStoreError as exc:
        raise _unavailable("object store", exc) from exc


async def _verify_object(request: web.Request, state: VideoState) -> None:
    """The development object stores do not enforce POST policies: check the object ourselves."""
    store = request.app[keys.OBJECT_STORE]
    key = state.source_key
    try:
        info = await store.head(key)
        head = b"" if info is None or info.size == 0 else await store.get_range(key, 0, SNIFF_BYTES)
    except ObjectStoreError as exc:
        raise _unavailable("object store", exc) from exc
    if info is None:
        _reject("missing_object")
        raise ProblemError(409, "Conflict", "the file has not been uploaded", code="OBJECT_MISSING")
    if info.size != state.declared_size_bytes:
        _reject("size_mismatch")
        raise ProblemError(
            422,
            "Upload does not match",
            f"uploaded {info.size} bytes but {state.declared_size_bytes} were declared",
            code="SIZE_MISMATCH",
        )
    if (info.content_type or "").lower() != state.content_type:
        _reject("content_type_mismatch")
        raise ProblemError(
            422,
            "Upload does not match",
            f"uploaded content type {info.content_type!r}, declared {state.content_type!r}",
            code="CONTENT_TYPE_MISMATCH",
        )
    if not looks_like_video(head):
        _reject("not_video")
        raise ProblemError(
            415,
            "Not a video",
            "the uploaded file is not a recognised video container",
            code="NOT_VIDEO",
        )
