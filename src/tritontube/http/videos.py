"""Video read endpoints backed by the worker's VideoState table."""

from __future__ import annotations

import logging
import re
from typing import Any

from aiohttp import web

from tritontube.domain.events import VideoState
from tritontube.domain.queue import QueuePosition, is_waiting
from tritontube.http import keys
from tritontube.http.auth import current_user
from tritontube.http.problems import ProblemError
from tritontube.http.worker_client import WorkerUnavailableError

log = logging.getLogger(__name__)

_VIDEO_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def video_id_param(request: web.Request) -> str:
    video_id = request.match_info["video_id"]
    if not _VIDEO_ID.match(video_id):
        raise ProblemError(404, "Not Found", "no such video", code="NOT_FOUND")
    return video_id


def state_unavailable(exc: Exception) -> ProblemError:
    """503 + Retry-After: the workers cannot answer completely now (rebalancing, down)."""
    return ProblemError(
        503,
        "Service Unavailable",
        f"video state unavailable: {exc}",
        code="UNAVAILABLE",
        headers={"Retry-After": "2"},
    )


async def load_state(request: web.Request, video_id: str, *, owner_only: bool) -> VideoState:
    """The video's state, or a 404 problem when it does not exist or the user may not see it."""
    user = current_user(request)
    try:
        state = await request.app[keys.WORKER].video_state(video_id)
    except WorkerUnavailableError as exc:
        raise state_unavailable(exc) from exc
    if state is None:
        raise ProblemError(404, "Not Found", "no such video", code="NOT_FOUND")
    visible = state.owner == user or (not owner_only and state.visibility != "private")
    if not visible:
        raise ProblemError(404, "Not Found", "no such video", code="NOT_FOUND")
    return state


def failure_body(state: VideoState) -> dict[str, str] | None:
    """The reason of a FAILED video, as the SPA shows it; None otherwise."""
    if state.status != "FAILED" or not state.error_code:
        return None
    return {"code": state.error_code, "message": state.error_message or ""}


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


async def transcode_status(request: web.Request) -> web.Response:
    """GET /v1/videos/{video_id}/transcodeStatus (the owner only). While the video waits to
    be encoded, ``queue`` says where it stands ("position 6 of 20") when the workers can
    tell now (the answer comes without it otherwise: a status is never refused for it)."""
    state = await load_state(request, video_id_param(request), owner_only=True)
    place = None
    if is_waiting(state):
        try:
            place = await request.app[keys.WORKER].queue_position(state.video_id)
        except WorkerUnavailableError as exc:
            log.info("no queue position for %s now: %s", state.video_id, exc)
    return web.json_response(transcode_status_body(state, place))
