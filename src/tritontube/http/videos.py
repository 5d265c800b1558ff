"""REST adapters of the video reads and their JSON: ``GET /v1/videos/{video_id}``,
``GET /v1/videos?owner=me``, ``GET /v1/videos/{video_id}/transcodeStatus``.

Parse, call the use case (``tritontube.videos``), serialise; nothing else.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tritontube import videos
from tritontube.domain.events import VideoState
from tritontube.domain.queue import QueuePosition
from tritontube.domain.video import is_playable
from tritontube.http.auth import current_user
from tritontube.http.keys import services
from tritontube.http.params import parse_query
from tritontube.queries import ListVideosParams


def video_id_param(request: web.Request) -> str:
    return videos.check_video_id(request.match_info["video_id"])


def failure_body(state: VideoState) -> dict[str, str] | None:
    """The reason of a FAILED video, as the SPA shows it; None otherwise."""
    failed = videos.failure(state)
    return None if failed is None else {"code": failed[0], "message": failed[1]}


def renditions_json(state: VideoState) -> list[dict[str, Any]]:
    return [
        {"name": r.name, "width": r.width, "height": r.height, "bandwidth": r.bandwidth_bps}
        for r in videos.ready_renditions(state)
    ]


def transcode_status_body(state: VideoState, queue: QueuePosition | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "videoId": state.video_id,
        "status": state.status,
        "progress": round(state.percent, 2),
        "step": state.step,
        "etaSeconds": state.eta_seconds,
        "attempt": state.attempt,
        "renditions": [
            {"name": r.name, "status": r.status, "progress": round(r.percent, 2)}
            for r in state.renditions
        ],
        "version": state.version,
        "updatedAt": state.updated_at.isoformat(),
    }
    error = failure_body(state)
    if error is not None:
        body["error"] = error
    if queue is not None:
        body["queue"] = {"position": queue.position, "length": queue.length}
    return body


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
        "renditions": renditions_json(state),
        "createdAt": state.created_at.isoformat(),
        "updatedAt": state.updated_at.isoformat(),
    }
    if is_owner:
        body["progress"] = round(state.percent, 2)
        error = failure_body(state)
        if error is not None:
            body["error"] = error
        body["etag"] = videos.VideoView(state, is_owner=True).etag
    return body


def video_response(view: videos.VideoView) -> web.Response:
    """A video's metadata; the owner also gets its etag in ``ETag`` (PATCH's If-Match)."""
    headers = {"Cache-Control": "private, no-cache"}
    if view.is_owner:
        headers["ETag"] = f'"{view.etag}"'
    return web.json_response(metadata_body(view.state, is_owner=view.is_owner), headers=headers)


async def transcode_status(request: web.Request) -> web.Response:
    """GET /v1/videos/{video_id}/transcodeStatus (the owner only); ``queue`` while waiting."""
    view = await videos.transcode_status(
        services(request), current_user(request), request.match_info["video_id"]
    )
    return web.json_response(transcode_status_body(view.state, view.queue))


async def video_metadata(request: web.Request) -> web.Response:
    """GET /v1/videos/{video_id}"""
    view = await videos.get_video(
        services(request), current_user(request), request.match_info["video_id"]
    )
    return video_response(view)


async def list_videos(request: web.Request) -> web.Response:
    """GET /v1/videos?owner=me: the caller's uploads with their status, newest first."""
    params = parse_query(request, ListVideosParams)
    page = await videos.list_videos(services(request), current_user(request), params)
    return web.json_response(
        {
            "videos": [metadata_body(s, is_owner=True) for s in page.videos],
            "nextPageToken": page.next_page_token,
        },
        headers={"Cache-Control": "private, no-cache"},
    )
