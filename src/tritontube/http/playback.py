"""Playback: ``playbackInfo``, video metadata, "my uploads", and the signed media route.

Who may watch is decided here, once, when a signed media URL is handed out (``load_viewable``):
the owner always; others only public or unlisted videos that are already playable. A video is
playable as soon as its first rendition is READY and the manifest exists (the rule of
``domain.video.is_playable``); before that ``playbackInfo`` answers ``409 NOT_PLAYABLE`` with the
video's status in ``videoStatus``, so a client polls ``transcodeStatus`` (or retries after
``Retry-After``) instead of parsing a half-filled 200.

``/media/{token}/{video_id}/{path}`` streams objects of the video's media folder from the object
store in chunks (the store port is async; nothing blocks the loop), honouring single byte
ranges. It needs no bearer token: the URL itself is the credential (see ``media_tokens``).
"""

from __future__ import annotations

import json
import logging
import math
import re
from datetime import datetime
from typing import Any

from aiohttp import web

from tritontube import metrics
from tritontube.domain import owners
from tritontube.domain.events import VideoState
from tritontube.domain.video import Status, is_playable
from tritontube.http import keys
from tritontube.http.auth import current_user
from tritontube.http.media_tokens import (
    MEDIA_HEADERS,
    MEDIA_TYPES,
    MediaSigner,
    MediaTokenError,
    Refusal,
    object_key,
)
from tritontube.http.params import parse_query
from tritontube.http.problems import PROBLEM_TYPE, ProblemError
from tritontube.http.videos import failure_body, load_state, state_unavailable, video_id_param
from tritontube.http.worker_client import WorkerUnavailableError
from tritontube.queries import ListVideosParams
from tritontube.storage.port import ObjectInfo, ObjectNotFound, ObjectStore, ObjectStoreError

log = logging.getLogger(__name__)

MEDIA_SIGNER = web.AppKey("media_signer", MediaSigner)
CHUNK_BYTES = 512 * 1024
_TRANSIENT = frozenset({Status.UPLOADED, Status.PENDING_TRANSCODE, Status.TRANSCODING})
_RANGE = re.compile(r"^bytes=(?P<start>\d*)-(?P<end>\d*)$")


# -- who may see what -------------------------------------------------------------------------


async def load_viewable(request: web.Request, video_id: str) -> VideoState:
    """The state when the user may see the video: the owner always, others once playable."""
    state = await load_state(request, video_id, owner_only=False)
    if state.owner != current_user(request) and not is_playable(state):
        raise ProblemError(404, "Not Found", "no such video", code="NOT_FOUND")
    return state


# -- URLs -------------------------------------------------------------------------------------


def base_url(request: web.Request) -> str:
    """Where users reach the API, from the settings: never the request's ``Host`` header,
    which the client chooses (``Host: evil.example`` would sign URLs to another site)."""
    return request.app[keys.SETTINGS].http.base_url


async def thumbnail_url(
    request: web.Request, signer: MediaSigner, token: str, state: VideoState
) -> str | None:
    key = state.thumbnail_key
    if not key:
        return None
    url = signer.url(base_url(request), token, state.video_id, key)
    if url is not None:
        return url
    # A thumbnail stored outside the media folder: a short-lived pre-signed GET instead.
    try:
        return await request.app[keys.OBJECT_STORE].presign_get(key, signer.ttl_seconds)
    except ObjectStoreError as exc:
        log.warning("no thumbnail URL for %s: %s", state.video_id, exc)
        return None


def ready_renditions(state: VideoState) -> list[dict[str, Any]]:
    ready = [r for r in state.renditions if r.status == "READY"]
    ready.sort(key=lambda r: (r.bandwidth_bps, r.height), reverse=True)
    return [
        {"name": r.name, "width": r.width, "height": r.height, "bandwidth": r.bandwidth_bps}
        for r in ready
    ]


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def not_playable(state: VideoState, path: str) -> web.Response:
    """409 problem naming the video's status (RFC 9457 extension member ``videoStatus``)."""
    status = state.status
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": "Not playable yet",
        "status": 409,
        "detail": f"the video is {status}; it becomes playable once its first rendition is ready",
        "code": "NOT_PLAYABLE",
        "videoStatus": status,
        "instance": path,
    }
    error = failure_body(state)
    if error is not None:
        body["error"] = error
    headers = {"Retry-After": "2"} if status in _TRANSIENT else None
    return web.Response(
        status=409, text=json.dumps(body), content_type=PROBLEM_TYPE, headers=headers
    )


# -- /v1 handlers -----------------------------------------------------------------------------


async def playback_info(request: web.Request) -> web.Response:
    """GET /v1/videos/{video_id}/playbackInfo"""
    state = await load_viewable(request, video_id_param(request))
    if not is_playable(state):
        return not_playable(state, request.path)
    signer = request.app[MEDIA_SIGNER]
    token, expires_at = signer.issue(state.video_id, request.app[keys.DEPS].clock.now())
    manifest = signer.url(base_url(request), token, state.video_id, state.manifest_key or "")
    if manifest is None:
        log.error("manifest of %s is outside its media folder", state.video_id)
        raise ProblemError(500, "Internal Server Error", "the manifest is not servable")
    metrics.PLAYBACK_INFO_ISSUED.inc()
    return web.json_response(
        {
            "videoId": state.video_id,
            "title": state.title,
            "status": state.status,
            "manifestUrl": manifest,
            "thumbnailUrl": await thumbnail_url(request, signer, token, state),
            "durationSeconds": state.duration_seconds,
            "renditions": ready_renditions(state),
            "subtitles": [],
            "drm": None,
            "expiresAt": _iso(expires_at),
        },
        headers={"Cache-Control": "private, no-store"},
    )


def metadata_body(state: VideoState, *, is_owner: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "videoId": state.video_id,
        "title": state.title,
        "description": state.description,
        "tags": list(state.tags),
        "owner": state.owner,
        "visibility": state.visibility,
        "status": state.status,
        "playable": is_playable(state),
        "durationSeconds": state.duration_seconds,
        "renditions": ready_renditions(state),
        "createdAt": state.created_at.isoformat(),
        "updatedAt": state.updated_at.isoformat(),
    }
    if is_owner:
        body["progress"] = round(state.percent, 2)
        error = failure_body(state)
        if error is not None:
            body["error"] = error
    return body


async def video_metadata(request: web.Request) -> web.Response:
    """GET /v1/videos/{video_id}"""
    state = await load_viewable(request, video_id_param(request))
    body = metadata_body(state, is_owner=state.owner == current_user(request))
    return web.json_response(body, headers={"Cache-Control": "private, no-cache"})


def _invalid(field: str, expected: str) -> ProblemError:
    return ProblemError(
        422,
        "Invalid request",
        f"{field} must be {expected}",
        code="VALIDATION",
        errors=[{"field": field, "message": f"must be {expected}"}],
    )


async def list_videos(request: web.Request) -> web.Response:
    """GET /v1/videos?owner=me: the caller's uploads with their status, newest first.

    Complete with any number of workers: the owner's videos are one key of a table
    repartitioned by owner (``domain.owners``); pages follow a cursor, not an offset."""
    user = current_user(request)
    params = parse_query(request, ListVideosParams)
    if params.owner not in ("me", user):
        raise _invalid("owner", "'me' (public listings are search's job)")
    if params.page_token is not None:
        try:
            owners.decode_cursor(params.page_token)
        except owners.InvalidPageTokenError:
            raise _invalid("pageToken", "a token from a previous page") from None
    try:
        page = await request.app[keys.WORKER].owned(user, params.page_size, params.page_token)
    except WorkerUnavailableError as exc:
        raise state_unavailable(exc) from exc
    return web.json_response(
        {
            "videos": [metadata_body(s, is_owner=True) for s in page.videos],
            "nextPageToken": page.next_page_token,
        },
        headers={"Cache-Control": "private, no-cache"},
    )


# -- /media: signed object streaming ------------------------------------------------------------


def _refuse(reason: Refusal) -> ProblemError:
    metrics.PLAYBACK_MEDIA_REFUSED.labels(reason.value).inc()
    if reason is Refusal.BAD_PATH:
        return ProblemError(404, "Not Found", "no such media object", code="NOT_FOUND")
    detail = "the media URL has expired" if reason is Refusal.EXPIRED else "invalid media URL"
    return ProblemError(403, "Forbidden", detail, code=f"MEDIA_URL_{reason.value.upper()}")


def media_type(key: str) -> str:
    """The fixed Content-Type of a media object; 404 for any other file type."""
    dot = key.rfind(".")
    known = MEDIA_TYPES.get(key[dot:].lower()) if dot > key.rfind("/") else None
    if known is None:
        metrics.PLAYBACK_MEDIA_REFUSED.labels(Refusal.BAD_PATH.value).inc()
        raise ProblemError(404, "Not Found", "no such media object", code="NOT_FOUND")
    return known


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end inclusive) of a single ``bytes=`` range; None for the whole object.

    Multiple ranges are answered with the whole object (RFC 9110 allows ignoring Range);
    an unsatisfiable range is a 416 problem.
    """
    if header is None:
        return None
    match = _RANGE.match(header.strip())
    if match is None:
        return None
    first, last = match["start"], match["end"]
    if not first and not last:
        return None
    if not first:  # suffix: the last N bytes
        start, end = max(0, size - int(last)), size - 1
    else:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    if start >= size or start > end or (not first and int(last) == 0):
        raise ProblemError(
            416,
            "Range Not Satisfiable",
            f"the object has {size} bytes",
            code="RANGE",
            headers={"Content-Range": f"bytes */{size}"},
        )
    return start, end


def _cache_control(key: str, expires_at: datetime, now: datetime) -> str:
    if key.endswith(".mpd"):
        # Rewritten while further renditions land: always revalidate (ETag).
        return "public, no-cache"
    remaining = max(0, math.floor((expires_at - now).total_seconds()))
    return f"public, max-age={min(remaining, 86400)}, immutable"


async def media(request: web.Request) -> web.StreamResponse:
    """GET|HEAD /media/{token}/{video_id}/{path}: a signed, streamed media object."""
    video_id = request.match_info["video_id"]
    now = request.app[keys.DEPS].clock.now()
    try:
        expires_at = request.app[MEDIA_SIGNER].verify(request.match_info["token"], video_id, now)
        key = object_key(video_id, request.match_info["path"])
    except MediaTokenError as exc:
        raise _refuse(exc.reason) from None
    content_type = media_type(key)
    store = request.app[keys.OBJECT_STORE]
    info = await _head(store, key)
    headers = {
        "Accept-Ranges": "bytes",
        "Cache-Control": _cache_control(key, expires_at, now),
        "ETag": f'"{info.etag}"',
        "Last-Modified": info.last_modified.strftime("%a, %d %b %Y %H:%M:%S GMT"),
        **MEDIA_HEADERS,
    }
    if f'"{info.etag}"' in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    span = byte_range(request.headers.get("Range"), info.size)
    start, end = span if span is not None else (0, info.size - 1)
    response = web.StreamResponse(status=200 if span is None else 206, headers=headers)
    response.content_type = content_type
    response.content_length = end - start + 1
    if span is not None:
        response.headers["Content-Range"] = f"bytes {start}-{end}/{info.size}"
    if request.method == "HEAD" or info.size == 0:
        await response.prepare(request)
        return response
    first = await _read(store, key, start, end)  # before the headers: failures stay problems
    await response.prepare(request)
    await _stream(request, response, store, key, first, start, end)
    return response


async def _head(store: ObjectStore, key: str) -> ObjectInfo:
    try:
        info = await store.head(key)
    except ObjectStoreError as exc:
        raise _store_problem(exc) from exc
    if info is None:
        raise ProblemError(404, "Not Found", "no such media object", code="NOT_FOUND")
    return info


async def _read(store: ObjectStore, key: str, start: int, end: int) -> bytes:
    try:
        return await store.get_range(key, start, min(CHUNK_BYTES, end - start + 1))
    except ObjectStoreError as exc:
        raise _store_problem(exc) from exc


def _store_problem(exc: ObjectStoreError) -> ProblemError:
    if isinstance(exc, ObjectNotFound):
        return ProblemError(404, "Not Found", "no such media object", code="NOT_FOUND")
    return ProblemError(
        503,
        "Service Unavailable",
        "object store unavailable",
        code="UNAVAILABLE",
        headers={"Retry-After": "2"},
    )


async def _stream(
    request: web.Request,
    response: web.StreamResponse,
    store: ObjectStore,
    key: str,
    first: bytes,
    start: int,
    end: int,
) -> None:
    """Write ``first`` then the rest of [start, end] chunk by chunk; cut the connection on failure.

    The headers (and Content-Length) are already sent, so a store failure mid-way cannot become a
    problem document: the client sees a truncated body, which is the honest signal.
    """
    chunk, position = first, start
    while chunk:
        await response.write(chunk)
        metrics.PLAYBACK_MEDIA_BYTES.inc(len(chunk))
        position += len(chunk)
        if position > end:
            return
        try:
            chunk = await store.get_range(key, position, min(CHUNK_BYTES, end - position + 1))
        except ObjectStoreError as exc:
            log.warning("media stream of %s broke at byte %d: %s", key, position, exc)
            break
    if request.transport is not None:
        request.transport.close()
