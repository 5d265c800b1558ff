"""Reading videos: who may see what, metadata, "my uploads", transcode status, playback.

The use cases behind ``GetVideo``, ``ListVideos``, ``GetTranscodeStatus`` and
``GetPlaybackInfo`` (REST: ``http/videos.py``, ``http/playback.py``; gRPC: ``grpc/servicer.py``).
Every read goes through the typed worker client, so it is complete with any number of workers.

Who may see a video is decided here, once: the owner always; others only public or unlisted
videos that are already playable (the rule of ``domain.video.is_playable``); nobody a video
its owner deleted (DELETING, then removed). Everyone else gets the same 404 as for an id that
never existed, so a private video's existence does not leak. A signed media URL is handed out
only through :func:`playback_info`, so that rule is applied when the URL is issued.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime

from tritontube.domain import owners
from tritontube.domain import video as vs
from tritontube.domain.events import RenditionState, VideoState
from tritontube.domain.queries import OwnerVideosPage
from tritontube.domain.queue import QueuePosition, is_waiting
from tritontube.http.worker_client import WorkerUnavailableError
from tritontube.problems import Problem, invalid, not_found, unavailable
from tritontube.queries import VIDEO_ID_PATTERN, ListVideosParams
from tritontube.services import Services
from tritontube.storage.port import ObjectStoreError

log = logging.getLogger(__name__)

_VIDEO_ID = re.compile(VIDEO_ID_PATTERN)
_TRANSIENT = frozenset({vs.Status.UPLOADED, vs.Status.PENDING_TRANSCODE, vs.Status.TRANSCODING})


def check_video_id(video_id: str) -> str:
    """A well-formed video id; a 404 otherwise (no such video can exist)."""
    if not _VIDEO_ID.match(video_id):
        raise not_found()
    return video_id


def state_unavailable(exc: Exception) -> Problem:
    """503 + Retry-After: the workers cannot answer completely now (rebalancing, down)."""
    return unavailable("video state", exc)


async def load_state(
    services: Services, user: str, video_id: str, *, owner_only: bool
) -> VideoState:
    """The video's state, or a 404 when it does not exist (or is being deleted) or the user
    may not see it."""
    try:
        state = await services.workers.video_state(check_video_id(video_id))
    except WorkerUnavailableError as exc:
        raise state_unavailable(exc) from exc
    if state is None or vs.is_deleted(state):
        raise not_found()
    visible = state.owner == user or (not owner_only and state.visibility != "private")
    if not visible:
        raise not_found()
    return state


async def load_viewable(services: Services, user: str, video_id: str) -> VideoState:
    """The state when the user may see the video: the owner always, others once playable."""
    state = await load_state(services, user, video_id, owner_only=False)
    if state.owner != user and not vs.is_playable(state):
        raise not_found()
    return state


def ready_renditions(state: VideoState) -> list[RenditionState]:
    """The playable renditions, best first."""
    ready = [r for r in state.renditions if r.status == "READY"]
    ready.sort(key=lambda r: (r.bandwidth_bps, r.height), reverse=True)
    return ready


def failure(state: VideoState) -> tuple[str, str] | None:
    """``(code, message)`` of a FAILED video, as the SPA shows it; None otherwise."""
    if state.status != vs.Status.FAILED or not state.error_code:
        return None
    return state.error_code, state.error_message or ""


# -- GetVideo, ListVideos ------------------------------------------------------------------


@dataclass(frozen=True)
class VideoView:
    """A video as one user sees it (the owner sees progress, failure and the etag)."""

    state: VideoState
    is_owner: bool

    @property
    def etag(self) -> str:
        return vs.metadata_etag(self.state)


async def get_video(services: Services, user: str, video_id: str) -> VideoView:
    state = await load_viewable(services, user, video_id)
    return VideoView(state, is_owner=state.owner == user)


async def list_videos(services: Services, user: str, params: ListVideosParams) -> OwnerVideosPage:
    """The caller's uploads, newest first. Complete with any number of workers: the owner's
    videos are one key of a table repartitioned by owner (``domain.owners``); pages follow a
    cursor, not an offset."""
    if params.owner not in ("me", user):
        raise invalid(("owner", "must be 'me' (public listings are search's job)"))
    if params.page_token is not None:
        try:
            owners.decode_cursor(params.page_token)
        except owners.InvalidPageTokenError:
            raise invalid(("pageToken", "must be a token from a previous page")) from None
    try:
        page = await services.workers.owned(user, params.page_size, params.page_token)
    except WorkerUnavailableError as exc:
        raise state_unavailable(exc) from exc
    videos = tuple(s for s in page.videos if not vs.is_deleted(s))
    return OwnerVideosPage(videos=videos, next_page_token=page.next_page_token)


# -- GetTranscodeStatus ---------------------------------------------------------------------


@dataclass(frozen=True)
class TranscodeView:
    """The owner's view of a transcode; ``queue`` while it waits, when the workers can tell."""

    state: VideoState
    queue: QueuePosition | None = None


async def transcode_status(services: Services, user: str, video_id: str) -> TranscodeView:
    """The owner's view of the transcode (anyone else: 404). While the video waits to be
    encoded, its place in the queue ("position 6 of 20") when the workers can tell now: a
    status is never refused for it."""
    state = await load_state(services, user, video_id, owner_only=True)
    place = None
    if is_waiting(state):
        try:
            place = await services.workers.queue_position(state.video_id)
        except WorkerUnavailableError as exc:
            log.info("no queue position for %s now: %s", state.video_id, exc)
    return TranscodeView(state, place)


# -- GetPlaybackInfo ------------------------------------------------------------------------


@dataclass(frozen=True)
class Playback:
    """Signed URLs of a playable video, valid until ``expires_at``."""

    state: VideoState
    manifest_url: str
    thumbnail_url: str | None
    expires_at: datetime


def not_playable(state: VideoState) -> Problem:
    """409 naming the video's status (problem extension ``videoStatus``), with Retry-After
    while the transcode is still on its way."""
    status = state.status
    extensions: dict[str, object] = {"videoStatus": status}
    failed = failure(state)
    if failed is not None:
        extensions["error"] = {"code": failed[0], "message": failed[1]}
    return Problem(
        409,
        "Not playable yet",
        f"the video is {status}; it becomes playable once its first rendition is ready",
        code="NOT_PLAYABLE",
        headers={"Retry-After": "2"} if status in _TRANSIENT else None,
        extensions=extensions,
    )


async def playback_info(services: Services, user: str, video_id: str) -> Playback:
    state = await load_viewable(services, user, video_id)
    if not vs.is_playable(state):
        raise not_playable(state)
    signer = services.signer
    base = services.settings.http.base_url  # never a request's Host header
    token, expires_at = signer.issue(state.video_id, services.clock.now())
    manifest = signer.url(base, token, state.video_id, state.manifest_key or "")
    if manifest is None:
        log.error("manifest of %s is outside its media folder", state.video_id)
        raise Problem(500, "Internal Server Error", "the manifest is not servable")
    return Playback(
        state=state,
        manifest_url=manifest,
        thumbnail_url=await _thumbnail_url(services, token, state),
        expires_at=expires_at,
    )


async def _thumbnail_url(services: Services, token: str, state: VideoState) -> str | None:
    key = state.thumbnail_key
    if not key:
        return None
    signer = services.signer
    url = signer.url(services.settings.http.base_url, token, state.video_id, key)
    if url is not None:
        return url
    # A thumbnail stored outside the media folder: a short-lived pre-signed GET instead.
    try:
        return await services.store.presign_get(key, signer.ttl_seconds)
    except ObjectStoreError as exc:
        log.warning("no thumbnail URL for %s: %s", state.video_id, exc)
        return None
