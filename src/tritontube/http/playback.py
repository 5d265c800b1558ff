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

import base64
import json
import logging
import math
import re
from datetime import datetime
from typing import Any

import aiohttp
from aiohttp import web

from tritontube import metrics
from tritontube.domain.video import Status
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
from tritontube.http.problems import PROBLEM_TYPE, ProblemError
from tritontube.http.videos import load_state, video_id_param
from tritontube.storage.port import ObjectInfo, ObjectNotFound, ObjectStore, ObjectStoreError

log = logging.getLogger(__name__)

MEDIA_SIGNER = web.AppKey("media_signer", MediaSigner)
CHUNK_BYTES = 512 * 1024
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
_TRANSIENT = frozenset({Status.UPLOADED, Status.PENDING_TRANSCODE, Status.TRANSCODING})
_RANGE = re.compile(r"^bytes=(?P<start>\d*)-(?P<end>\d*)$")


# -- who may see what -------------------------------------------------------------------------


def is_playable(state: dict[str, Any]) -> bool:
    """``domain.video.is_playable`` over the worker's JSON: a manifest and a READY rendition."""
    return bool(state.get("manifest_key")) and any(
        r.get("status") == "READY" for r in state.get("renditions", ())
    )


async def load_viewable(request: web.Request, video_id: str) -> dict[str, Any]:
    """The state when the user may see the video: the owner always, others once playable."""
    state = await load_state(request, video_id, owner_only=False)
    if state["owner"] != current_user(request) and not is_playable(state):
        raise ProblemError(404, "Not Found", "no such video", code="NOT_FOUND")
    return state


# -- URLs -------------------------------------------------------------------------------------


def base_url(request: web.Request) -> str:
    public = request.app[keys.SETTINGS].http.public_url
    return public.rstrip("/") if public else f"{request.scheme}://{request.host}"


async def thumbnail_url(
    request: web.Request, signer: MediaSigner, token: str, state: dict[str, Any]
) -> str | None:
    key = state.get("thumbnail_key")
    if not key:
        return None
    url = signer.url(base_url(request), token, state["video_id"], key)
    if url is not None:
        return url
    # A thumbnail stored outside the media folder: a short-lived pre-signed GET instead.
    try:
        return await request.app[keys.OBJECT_STORE].presign_get(key, signer.ttl_seconds)
    except ObjectStoreError as exc:
        log.warning("no thumbnail URL for %s: %s", state["video_id"], exc)
        return None


def ready_renditions(state: dict[str, Any]) -> list[dict[str, Any]]:
    ready = [r for r in state.get("renditions", ()) if r.get("status") == "READY"]
    ready.sort(key=lambda r: (r.get("bandwidth_bps") or 0, r.get("height") or 0), reverse=True)
    return [
        {
            "name": r["name"],
            "width": r.get("width") or 0,
            "height": r.get("height") or 0,
            "bandwidth": r.get("bandwidth_bps") or 0,
        }
        for r in ready
    ]


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def not_playable(state: dict[str, Any], path: str) -> web.Response:
    """409 problem naming the video's status (RFC 9457 extension member ``videoStatus``)."""
    status = state["status"]
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": "Not playable yet",
        "status": 409,
        "detail": f"the video is {status}; it becomes playable once its first rendition is ready",
        "code": "NOT_PLAYABLE",
        "videoStatus": status,
        "instance": path,
    }
    if status == Status.FAILED and state.get("error_code"):
        body["error"] = {"code": state["error_code"], "message": state.get("error_message") or ""}
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
    token, expires_at = signer.issue(state["video_id"], request.app[keys.DEPS].clock.now())
    manifest = signer.url(base_url(request), token, state["video_id"], state["manifest_key"])
    if manifest is None:
        log.error("manifest of %s is outside its media folder", state["video_id"])
        raise ProblemError(500, "Internal Server Error", "the manifest is not servable")
    metrics.PLAYBACK_INFO_ISSUED.inc()
    return web.json_response(
        {
            "videoId": state["video_id"],
            "title": state["title"],
            "status": state["status"],
            "manifestUrl": manifest,
            "thumbnailUrl": await thumbnail_url(request, signer, token, state),
            "durationSeconds": state.get("duration_seconds"),
            "renditions": ready_renditions(state),
            "subtitles": [],
            "drm": None,
            "expiresAt": _iso(expires_at),
        },
        headers={"Cache-Control": "private, no-store"},
    )


def metadata_body(state: dict[str, Any], *, is_owner: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "videoId": state["video_id"],
        "title": state["title"],
        "description": state.get("description", ""),
        "tags": list(state.get("tags", ())),
        "owner": state["owner"],
        "visibility": state.get("visibility", "public"),
        "status": state["status"],
        "playable": is_playable(state),
        "durationSeconds": state.get("duration_seconds"),
        "renditions": ready_renditions(state),
        "createdAt": state.get("created_at"),
        "updatedAt": state.get("updated_at"),
    }
    if is_owner:
        body["progress"] = round(float(state.get("percent") or 0.0), 2)
        if state["status"] == Status.FAILED and state.get("error_code"):
            body["error"] = {
                "code": state["error_code"],
                "message": state.get("error_message") or "",
            }
    return body


async def video_metadata(request: web.Request) -> web.Response:
    """GET /v1/videos/{video_id}"""
    state = await load_viewable(request, video_id_param(request))
    body = metadata_body(state, is_owner=state["owner"] == current_user(request))
    return web.json_response(body, headers={"Cache-Control": "private, no-cache"})


def _page_size(request: web.Request) -> int:
    raw = request.query.get("pageSize", str(DEFAULT_PAGE_SIZE))
    # isascii: '³'.isdigit() is True, and int('³') raises.
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_PAGE_SIZE:
        raise _invalid("pageSize", f"an integer from 1 to {MAX_PAGE_SIZE}")
    return int(raw)


def _page_offset(request: web.Request) -> int:
    raw = request.query.get("pageToken")
    if not raw:
        return 0
    try:
        # ValueError: non-ASCII input, bad base64 (binascii.Error), bad UTF-8, unicode digits.
        value = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        digits = value[2:]
        if (
            not (value.startswith("o:") and digits.isascii() and digits.isdigit())
            or len(value) > 20
        ):
            raise ValueError(value)
        return int(digits)
    except ValueError:
        raise _invalid("pageToken", "a token from a previous page") from None


def _next_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).rstrip(b"=").decode()


def _invalid(field: str, expected: str) -> ProblemError:
    return ProblemError(
        422,
        "Invalid request",
        f"{field} must be {expected}",
        code="VALIDATION",
        errors=[{"field": field, "message": f"must be {expected}"}],
    )


async def owned_states(request: web.Request, owner: str) -> list[dict[str, Any]]:
    """Every state the worker holds for ``owner``, newest first (the worker's ``/videos``)."""
    settings = request.app[keys.SETTINGS]
    url = f"{settings.http.worker_url.rstrip('/')}/videos"
    session = request.app[keys.CLIENT_SESSION]
    try:
        async with session.get(
            url, params={"owner": owner}, timeout=aiohttp.ClientTimeout(total=5)
        ) as resp:
            if resp.status != 200:
                raise _state_unavailable(f"worker answered {resp.status}")
            data = await resp.json()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise _state_unavailable(str(exc) or type(exc).__name__) from exc
    videos: list[dict[str, Any]] = data.get("videos", [])
    return videos


def _state_unavailable(detail: str) -> ProblemError:
    return ProblemError(
        503,
        "Service Unavailable",
        f"video state unavailable: {detail}",
        code="UNAVAILABLE",
        headers={"Retry-After": "2"},
    )


async def list_videos(request: web.Request) -> web.Response:
    """GET /v1/videos?owner=me: the caller's uploads with their status, newest first."""
    user = current_user(request)
    owner = request.query.get("owner")
    if owner not in ("me", user):
        raise _invalid("owner", "'me' (public listings are search's job)")
    size = _page_size(request)
    offset = _page_offset(request)
    states = await owned_states(request, user)
    page = states[offset : offset + size]
    more = offset + size < len(states)
    return web.json_response(
        {
            "videos": [metadata_body(s, is_owner=True) for s in page],
            "nextPageToken": _next_token(offset + size) if more else None,
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
