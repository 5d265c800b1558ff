"""Playback over REST: ``GET /v1/videos/{video_id}/playbackInfo`` and the signed media route.

``playbackInfo`` is an adapter of ``tritontube.videos.playback_info``, which decides who may
watch (the owner always; others only public or unlisted videos that are already playable) and
hands out the signed URLs. Before the first rendition is ready it answers ``409 NOT_PLAYABLE``
with the video's status in ``videoStatus``, so a client polls ``transcodeStatus`` (or retries
after ``Retry-After``) instead of parsing a half-filled 200.

``/media/{token}/{video_id}/{path}`` streams objects of the video's media folder from the object
store in chunks (the store port is async; nothing blocks the loop), honouring single byte
ranges. It needs no bearer token: the URL itself is the credential (see ``media_tokens``). A
deleted video's objects are gone from the store, so its URLs answer 404 from then on.
"""

from __future__ import annotations

import logging
import math
import re
from datetime import datetime

from aiohttp import web

from tritontube import metrics, videos
from tritontube.http.auth import current_user
from tritontube.http.keys import services
from tritontube.http.media_tokens import (
    MEDIA_HEADERS,
    MEDIA_TYPES,
    MediaTokenError,
    Refusal,
    object_key,
)
from tritontube.http.problems import ProblemError
from tritontube.http.videos import renditions_json
from tritontube.storage.port import ObjectInfo, ObjectNotFound, ObjectStore, ObjectStoreError

log = logging.getLogger(__name__)

CHUNK_BYTES = 512 * 1024
_RANGE = re.compile(r"^bytes=(?P<start>\d*)-(?P<end>\d*)$")


# -- /v1 handlers -----------------------------------------------------------------------------


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


async def playback_info(request: web.Request) -> web.Response:
    """GET /v1/videos/{video_id}/playbackInfo"""
    grant = await videos.playback_info(
        services(request), current_user(request), request.match_info["video_id"]
    )
    metrics.PLAYBACK_INFO_ISSUED.inc()
    state = grant.state
    return web.json_response(
        {
            "videoId": state.video_id,
            "title": state.title,
            "status": state.status,
            "manifestUrl": grant.manifest_url,
            "thumbnailUrl": grant.thumbnail_url,
            "durationSeconds": state.duration_seconds,
            "renditions": renditions_json(state),
            "subtitles": [],
            "drm": None,
            "expiresAt": _iso(grant.expires_at),
        },
        headers={"Cache-Control": "private, no-store"},
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
    svc = services(request)
    now = svc.clock.now()
    try:
        expires_at = svc.signer.verify(request.match_info["token"], video_id, now)
        key = object_key(video_id, request.match_info["path"])
    except MediaTokenError as exc:
        raise _refuse(exc.reason) from None
    content_type = media_type(key)
    store = svc.store
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
