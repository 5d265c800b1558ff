"""Resumable uploads of large files: pre-signed part URLs and the parts already stored.

The protocol Uppy's AwsS3 multipart plugin and Mux/Cloudflare direct uploads use:

1. ``POST /v1/videos:uploadURL`` with ``resumable: true`` and a size above the threshold
   answers ``multipart: {uploadId, partSizeBytes, partCount}`` (an S3 multipart upload);
2. ``POST /v1/videos/{video_id}/uploadParts`` signs PUT URLs for the part numbers asked for
   (a batch at a time; the client PUTs them to the object store in parallel);
3. ``GET /v1/videos/{video_id}/uploadParts?uploadId=`` lists the parts the store holds, so a
   client resumes after a reload or a dropped connection without sending them again;
4. ``POST /v1/videos:completeUpload`` with ``uploadId`` joins the parts (every one there, each
   of its planned size) and verifies the object as for a form upload.

Only the session's owner, while the session is ``UPLOAD_PENDING`` and not expired; the upload
id must be the one of the session's key (the store answers NoSuchUpload otherwise). An
abandoned multipart upload is aborted when its session expires (the video-state agent).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator

from tritontube.domain import video
from tritontube.domain.events import VideoState
from tritontube.domain.multipart import MAX_PARTS, PartPlan
from tritontube.http import keys
from tritontube.http.auth import current_user
from tritontube.http.problems import ProblemError
from tritontube.http.uploads import UPLOAD_ID_PATTERN, part_plan, read_json, stored_parts
from tritontube.http.videos import state_unavailable, video_id_param
from tritontube.http.worker_client import WorkerUnavailableError
from tritontube.storage.port import ObjectStoreError

MAX_PARTS_PER_REQUEST = 100
_UPLOAD_ID = re.compile(UPLOAD_ID_PATTERN)


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


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


async def _open_session(request: web.Request) -> VideoState:
    """The caller's own session, still open for parts (404 / 409 / 410 problems otherwise).
    Right after uploadURL the session event may still be on its way to the worker: wait for
    it briefly, as completeUpload does."""
    video_id = video_id_param(request)
    try:
        state = await request.app[keys.WORKER].wait_for(
            video_id, lambda s: s is not None, timeout=2.0
        )
    except WorkerUnavailableError as exc:
        raise state_unavailable(exc) from exc
    if state is None or state.owner != current_user(request):
        raise ProblemError(404, "Not Found", "no such video", code="NOT_FOUND")
    now = request.app[keys.DEPS].clock.now()
    if state.status == video.Status.EXPIRED or now >= state.expires_at:
        raise ProblemError(410, "Gone", "the upload session has expired", code="SESSION_EXPIRED")
    if state.status != video.Status.UPLOAD_PENDING:
        raise ProblemError(
            409, "Conflict", "the upload is already complete", code="UPLOAD_COMPLETED"
        )
    return state


def _plan_json(plan: PartPlan) -> dict[str, int]:
    return {"sizeBytes": plan.size_bytes, "partSizeBytes": plan.part_size, "partCount": plan.count}


async def sign_parts(request: web.Request) -> web.Response:
    """POST /v1/videos/{video_id}/uploadParts: pre-signed PUT URLs for some parts."""
    state = await _open_session(request)
    body: SignPartsRequest = await read_json(request, SignPartsRequest)
    plan = part_plan(request, state)
    outside = [n for n in body.part_numbers if n > plan.count]
    if outside:
        raise ProblemError(
            422,
            "Invalid request",
            f"this upload has parts 1..{plan.count}",
            code="VALIDATION",
            errors=[{"field": "partNumbers", "message": f"outside 1..{plan.count}: {outside}"}],
        )
    await stored_parts(request, state, body.upload_id)  # 404 unless it is this session's upload
    settings = request.app[keys.SETTINGS]
    now = request.app[keys.DEPS].clock.now()
    remaining = int((state.expires_at - now).total_seconds())
    ttl = max(1, min(settings.upload.part_url_ttl_seconds, remaining))
    store = request.app[keys.OBJECT_STORE]
    try:
        parts = [
            {
                "partNumber": n,
                "sizeBytes": plan.expected_size(n),
                "url": await store.presign_upload_part(state.source_key, body.upload_id, n, ttl),
            }
            for n in body.part_numbers
        ]
    except ObjectStoreError as exc:
        raise ProblemError(
            503,
            "Service Unavailable",
            f"object store unavailable: {exc}",
            code="UNAVAILABLE",
            headers={"Retry-After": "5"},
        ) from exc
    return web.json_response(
        {
            "videoId": state.video_id,
            "uploadId": body.upload_id,
            **_plan_json(plan),
            "parts": parts,
            "expiresAt": _iso(now + timedelta(seconds=ttl)),
        },
        headers={"Cache-Control": "no-store"},
    )


async def list_parts(request: web.Request) -> web.Response:
    """GET /v1/videos/{video_id}/uploadParts?uploadId=: the parts the store holds."""
    state = await _open_session(request)
    upload_id = request.query.get("uploadId", "")
    if not 1 <= len(upload_id) <= 256 or not _UPLOAD_ID.match(upload_id):
        raise ProblemError(
            422,
            "Invalid request",
            "uploadId must be the session's upload id",
            code="VALIDATION",
            errors=[{"field": "uploadId", "message": "missing or malformed"}],
        )
    plan = part_plan(request, state)
    parts = await stored_parts(request, state, upload_id)
    return web.json_response(
        {
            "videoId": state.video_id,
            "uploadId": upload_id,
            **_plan_json(plan),
            "parts": [
                {"partNumber": p.part_number, "sizeBytes": p.size, "etag": p.etag} for p in parts
            ],
        },
        headers={"Cache-Control": "no-store"},
    )
