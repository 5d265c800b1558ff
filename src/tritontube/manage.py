"""Managing a video after upload (the owner only): edit its metadata, delete it, retry a
failed transcode. The use cases behind ``UpdateVideo``, ``DeleteVideo`` and
``RetryTranscode`` (REST: ``http/manage.py``; gRPC: ``grpc/servicer.py``).

Each change is an event on ``uploads`` (``VideoMetadataUpdated``, ``VideoDeleted``,
``TranscodeRetryRequested``), folded by the video-state agent like the upload's own events,
so a replay of the topics reproduces it. The API publishes, then waits until the fold is
visible and answers with what it did; whether an edit applies is decided by the fold (the
single consumer of the video's partition), not by the API:

* an edit carries the metadata etag it was based on (REST ``If-Match``, 428 without one) and
  is applied only while that etag is still current, so of two concurrent edits of one
  version exactly one wins and the other answers 412, as a stale etag does at once;
* a delete makes the video DELETING (gone for every reader at once: reads, search, listings,
  recommendations, trending), then the agent removes its objects and folds ``VideoPurged``,
  which removes the state (tombstones on the compacted topics); the call answers once the
  state is gone, or says the purge is still running;
* a retry turns a FAILED video into PENDING_TRANSCODE with a new job (a new id, attempt 1),
  which the agent queues exactly once.

Another user's video is a 404 when they may not see it and a 403 when they may.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tritontube.domain import video as vs
from tritontube.domain.events import (
    TranscodeRetryRequested,
    VideoDeleted,
    VideoMetadataUpdated,
    VideoState,
)
from tritontube.http.publisher import BrokerUnavailableError
from tritontube.http.worker_client import WorkerUnavailableError
from tritontube.problems import (
    Problem,
    etag_mismatch,
    not_found,
    precondition_required,
    unavailable,
)
from tritontube.services import Services
from tritontube.streams import catalogue
from tritontube.uploads import MAX_DESCRIPTION, MAX_TAGS, MAX_TITLE, Visibility, clean_tags
from tritontube.videos import load_viewable

FOLD_TIMEOUT_SECONDS = 10.0
PURGE_TIMEOUT_SECONDS = 15.0


class VideoPatchRequest(BaseModel):
    """The editable metadata (``PATCH /v1/videos/{id}``'s body, gRPC's ``VideoPatch``): the
    fields given change, the others stay; at least one is required."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    title: str | None = Field(None, min_length=1, max_length=MAX_TITLE)
    description: str | None = Field(None, max_length=MAX_DESCRIPTION)
    tags: list[str] | None = Field(None, max_length=MAX_TAGS)
    visibility: Visibility | None = None

    @field_validator("tags")
    @classmethod
    def _tags(cls, tags: list[str] | None) -> list[str] | None:
        return None if tags is None else clean_tags(tags)

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        """``null`` cannot clear a field (a title is required, tags clear with ``[]``)."""
        if isinstance(data, dict):
            nulls = [k for k, v in data.items() if v is None]
            if nulls:
                raise ValueError(f"{', '.join(nulls)}: null is not a value (omit the field)")
            if not data:
                raise ValueError("name at least one of title, description, tags, visibility")
        return data

    def to_patch(self) -> vs.MetadataPatch:
        return vs.MetadataPatch(
            title=self.title,
            description=self.description,
            tags=None if self.tags is None else tuple(self.tags),
            visibility=self.visibility,
        )


def _not_owner() -> Problem:
    return Problem(403, "Forbidden", "only the video's owner may change it", code="NOT_OWNER")


async def _owned(services: Services, user: str, video_id: str) -> VideoState:
    """The video when ``user`` owns it; 404 when they may not see it, 403 when they may."""
    state = await load_viewable(services, user, video_id)
    if state.owner != user:
        raise _not_owner()
    return state


def _unavailable(exc: Exception | str) -> Problem:
    what = "event log" if isinstance(exc, BrokerUnavailableError) else "video state"
    return unavailable(what, exc, retry_after=2)


async def _publish_and_wait(
    services: Services,
    video_id: str,
    event: Any,
    done: Callable[[VideoState | None], bool],
    timeout: float = FOLD_TIMEOUT_SECONDS,
) -> VideoState | None:
    """Publish ``event`` on ``uploads``, then the state once ``done`` holds (the last state
    seen when it does not within ``timeout``)."""
    try:
        await services.publisher.publish(catalogue.UPLOADS, video_id, event)
        return await services.workers.wait_for(video_id, done, timeout=timeout)
    except (BrokerUnavailableError, WorkerUnavailableError) as exc:
        raise _unavailable(exc) from exc


def _applied(event_id: str) -> Callable[[VideoState | None], bool]:
    def check(state: VideoState | None) -> bool:
        return state is None or event_id in state.recent_event_ids or vs.is_deleted(state)

    return check


# -- UpdateVideo -----------------------------------------------------------------------------


async def update_video(
    services: Services,
    user: str,
    video_id: str,
    patch: VideoPatchRequest,
    etag: str | None,
) -> VideoState:
    """The video after the edit (unchanged, and nothing published, when the patch changes
    nothing). ``etag``: the metadata etag the edit is based on (If-Match, unquoted)."""
    if etag is None:
        raise precondition_required("send the video's etag in If-Match")
    state = await _owned(services, user, video_id)
    if vs.metadata_etag(state) != etag:
        raise etag_mismatch("If-Match does not match the video's current etag")
    changes = vs.metadata_changes(state, patch.to_patch())
    if changes.is_empty:
        return state
    event = VideoMetadataUpdated(
        event_id=uuid.uuid4().hex,
        video_id=state.video_id,
        owner=user,
        expected_etag=etag,
        updated_at=services.clock.now(),
        title=changes.title,
        description=changes.description,
        tags=changes.tags,
        visibility=changes.visibility,
    )

    def settled(s: VideoState | None) -> bool:
        """Applied, or lost to another edit (the etag moved on), or the video is gone."""
        return _applied(event.event_id)(s) or (s is not None and vs.metadata_etag(s) != etag)

    after = await _publish_and_wait(services, state.video_id, event, settled)
    if after is None or vs.is_deleted(after):
        raise not_found()
    if event.event_id in after.recent_event_ids:
        return after
    if vs.metadata_etag(after) != etag:
        # Another edit of the same version was folded first: this one lost.
        raise etag_mismatch("the video was changed concurrently; read it again")
    raise _unavailable("the edit is not applied yet")


# -- DeleteVideo -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Deletion:
    video_id: str
    purged: bool  # False: gone for every reader, its objects still being removed


async def delete_video(
    services: Services, user: str, video_id: str, etag: str | None = None
) -> Deletion:
    """Delete the video; ``etag`` (optional If-Match) must then be the current one."""
    state = await _owned(services, user, video_id)
    if etag is not None and vs.metadata_etag(state) != etag:
        raise etag_mismatch("If-Match does not match the video's current etag")
    event = VideoDeleted(
        event_id=uuid.uuid4().hex,
        video_id=state.video_id,
        owner=user,
        deleted_at=services.clock.now(),
    )
    after = await _publish_and_wait(
        services, state.video_id, event, lambda s: s is None, timeout=PURGE_TIMEOUT_SECONDS
    )
    if after is not None and not vs.is_deleted(after):
        raise _unavailable("the deletion is not applied yet")
    return Deletion(video_id=state.video_id, purged=after is None)


# -- RetryTranscode --------------------------------------------------------------------------


async def retry_transcode(services: Services, user: str, video_id: str) -> VideoState:
    """A FAILED video queued again with a new job; 409 for any other status."""
    state = await _owned(services, user, video_id)
    if state.status != vs.Status.FAILED:
        raise Problem(
            409,
            "Conflict",
            f"the video is {state.status}; only a FAILED video can be transcoded again",
            code="NOT_RETRYABLE",
            extensions={"videoStatus": state.status},
        )
    event = TranscodeRetryRequested(
        event_id=uuid.uuid4().hex,
        video_id=state.video_id,
        owner=user,
        requested_at=services.clock.now(),
    )
    after = await _publish_and_wait(
        services,
        state.video_id,
        event,
        lambda s: _applied(event.event_id)(s) or (s is not None and s.status != vs.Status.FAILED),
    )
    if after is None or vs.is_deleted(after):
        raise not_found()
    if after.status == vs.Status.FAILED:
        raise _unavailable("the retry is not applied yet")
    return after
