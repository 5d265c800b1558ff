"""REST adapters of the upload use cases (``tritontube.uploads``):
``POST /v1/videos:uploadURL`` and ``POST /v1/videos:completeUpload`` (the parts of a
resumable upload: ``http/multipart.py``).

Parse the JSON body (and If-Match), call the use case, serialise the answer; the rules live in
``tritontube.uploads``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError

from tritontube import uploads
from tritontube.domain import video
from tritontube.domain.events import VideoState
from tritontube.http.auth import current_user
from tritontube.http.keys import SETTINGS, services
from tritontube.problems import Problem, precondition_required, validation_problem
from tritontube.uploads import CompleteUploadRequest, UploadUrlRequest

__all__ = ["complete_upload", "create_upload_url", "if_match", "read_json", "required_if_match"]

JSON_TYPES = ("application/json", "application/merge-patch+json")


async def read_json(request: web.Request, model: type[BaseModel]) -> Any:
    if request.content_type not in JSON_TYPES:
        raise Problem(
            415, "Unsupported Media Type", "send the body as application/json", code="MEDIA_TYPE"
        )
    try:
        async with asyncio.timeout(request.app[SETTINGS].http.body_timeout_seconds):
            raw = await request.read()
    except TimeoutError:
        raise Problem(
            408,
            "Request Timeout",
            "the request body did not arrive in time",
            code="BODY_TIMEOUT",
            headers={"Connection": "close"},
        ) from None
    try:
        data = json.loads(raw.decode("utf-8"))  # RFC 8259 §8.1: JSON exchanged is UTF-8
    except (ValueError, RecursionError) as exc:
        # ValueError covers JSONDecodeError, UnicodeDecodeError and integers beyond
        # sys.get_int_max_str_digits() (a 5000-digit number is a CPU bomb, not a size).
        raise Problem(400, "Malformed JSON", str(exc)[:200], code="MALFORMED_JSON") from None
    if not isinstance(data, dict):
        raise Problem(422, "Invalid request", "the body must be a JSON object", code="VALIDATION")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_problem(exc) from None


def if_match(request: web.Request) -> str | None:
    """The entity tag of ``If-Match`` without quotes (a weak ``W/`` prefix dropped), if any."""
    raw = request.headers.get("If-Match")
    if raw is None or not raw.strip():
        return None
    value = raw.strip()
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"')


def required_if_match(request: web.Request, what: str) -> str:
    """:func:`if_match`, or a 428 asking for ``what``."""
    value = if_match(request)
    if value is None:
        raise precondition_required(f"send {what} in If-Match")
    return value


async def create_upload_url(request: web.Request) -> web.Response:
    """POST /v1/videos:uploadURL"""
    user = current_user(request)
    try:
        body: UploadUrlRequest = await read_json(request, UploadUrlRequest)
    except Problem:
        uploads.count_rejection("invalid")
        raise
    grant = await uploads.create_upload_url(services(request), user, body)
    where: dict[str, Any] = {}
    if grant.post is not None:
        where["upload"] = {"url": grant.post.url, "fields": dict(grant.post.fields)}
    if grant.multipart is not None:
        where["multipart"] = {
            "uploadId": grant.multipart.upload_id,
            "partSizeBytes": grant.multipart.plan.part_size,
            "partCount": grant.multipart.plan.count,
        }
    return web.json_response(
        {
            "videoId": grant.video_id,
            **where,
            "expiresAt": grant.expires_at.isoformat().replace("+00:00", "Z"),
            "etag": grant.etag,
        },
        headers={"ETag": f'"{grant.etag}"'},
    )


def complete_body(state: VideoState) -> dict[str, Any]:
    """The same answer for every repeat: what the completion recorded (PENDING_TRANSCODE and
    its job), plus where the video is now (``currentStatus``, which moves on)."""
    return {
        "videoId": state.video_id,
        "status": video.Status.PENDING_TRANSCODE,
        "jobId": state.job_id,
        "currentStatus": state.status,
    }


async def complete_upload(request: web.Request) -> web.Response:
    """POST /v1/videos:completeUpload"""
    user = current_user(request)
    etag = required_if_match(request, "the session's etag")
    body: CompleteUploadRequest = await read_json(request, CompleteUploadRequest)
    state = await uploads.complete_upload(
        services(request), user, body.video_id, etag, body.upload_id
    )
    return web.json_response(complete_body(state), headers={"ETag": f'"{state.upload_etag}"'})
