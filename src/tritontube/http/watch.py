"""Watch-event ingestion: ``POST /v1/videos/{video_id}/watchEvents``.

The body is one event ``{"eventId", "kind", "positionSeconds", "occurredAt"}`` or a batch
``{"events": [<event>, ...]}`` (1-100 events, the SPA's buffered heartbeats). The signed-in
user is the viewer. Every event is validated before anything else is contacted; then the
video must exist, be visible to the user and be playable; then each event is published on
``watch-events`` (keyed by video id) and acknowledged by the broker before the 202.
Duplicates are harmless: the analytics agents count an ``eventId`` once.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any, Literal

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from tritontube import metrics
from tritontube.domain.events import WatchEvent
from tritontube.domain.video import is_playable
from tritontube.http import keys
from tritontube.http.auth import current_user
from tritontube.http.problems import ProblemError, validation_problem
from tritontube.http.publisher import BrokerUnavailableError
from tritontube.http.uploads import read_json
from tritontube.http.videos import load_state, video_id_param
from tritontube.streams import catalogue

MAX_BATCH = 100
MAX_POSITION_SECONDS = 7 * 24 * 3600.0
MAX_CLOCK_SKEW = timedelta(minutes=5)
MAX_EVENT_AGE = timedelta(days=7)


class WatchEventIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    event_id: str = Field(
        alias="eventId", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$"
    )
    kind: Literal["PLAY", "HEARTBEAT", "PAUSE", "SEEK", "ENDED"]
    # strict: a JSON number only ("5" and true are not positions).
    position_seconds: float = Field(
        alias="positionSeconds", ge=0, le=MAX_POSITION_SECONDS, allow_inf_nan=False, strict=True
    )
    occurred_at: AwareDatetime = Field(alias="occurredAt")


class WatchEventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[WatchEventIn] = Field(min_length=1, max_length=MAX_BATCH)


class _AnyObject(BaseModel):
    model_config = ConfigDict(extra="allow")


async def read_events(request: web.Request) -> list[tuple[str, WatchEventIn]]:
    """The events of either body form, each with its field path prefix for errors."""
    envelope: _AnyObject = await read_json(request, _AnyObject)
    data: dict[str, Any] = envelope.model_dump()
    try:
        if "events" in data:
            batch = WatchEventBatch.model_validate(data)
            return [(f"events.{i}.", e) for i, e in enumerate(batch.events)]
        return [("", WatchEventIn.model_validate(data))]
    except ValidationError as exc:
        raise validation_problem(exc) from None


def check_times(events: list[tuple[str, WatchEventIn]], now: datetime) -> None:
    """``occurredAt`` must be plausible: not in the future, not older than a week."""
    errors = [
        {"field": f"{prefix}occurredAt", "message": "outside the accepted time range"}
        for prefix, e in events
        if e.occurred_at > now + MAX_CLOCK_SKEW or e.occurred_at < now - MAX_EVENT_AGE
    ]
    if errors:
        names = ", ".join(e["field"] for e in errors)
        raise ProblemError(
            422, "Invalid request", f"invalid field(s): {names}", code="VALIDATION", errors=errors
        )


async def post_watch_events(request: web.Request) -> web.Response:
    """POST /v1/videos/{video_id}/watchEvents -> 202 {"accepted": n, "eventIds": [...]}."""
    user = current_user(request)
    video_id = video_id_param(request)
    events = await read_events(request)
    now = request.app[keys.DEPS].clock.now()
    check_times(events, now)
    state = await load_state(request, video_id, owner_only=False)
    if not is_playable(state):
        raise ProblemError(409, "Conflict", "the video is not playable yet", code="NOT_PLAYABLE")
    records = [
        WatchEvent(
            event_id=e.event_id,
            video_id=video_id,
            user_id=user,
            kind=e.kind,
            position_seconds=e.position_seconds,
            occurred_at=e.occurred_at,
            received_at=now,
        )
        for _, e in events
    ]
    publisher = request.app[keys.PUBLISHER]
    try:
        await asyncio.gather(
            *(publisher.publish(catalogue.WATCH_EVENTS, video_id, r) for r in records)
        )
    except BrokerUnavailableError as exc:
        raise ProblemError(
            503,
            "Service Unavailable",
            f"event log unavailable: {exc}",
            code="UNAVAILABLE",
            headers={"Retry-After": "5"},
        ) from exc
    metrics.WATCH_EVENTS_ACCEPTED.inc(len(records))
    return web.json_response(
        {"accepted": len(records), "eventIds": [r.event_id for r in records]}, status=202
    )
