"""Watch-event ingestion: the use case behind ``SendWatchEvents``.

The signed-in user is the viewer. Every event is validated before anything else is contacted;
then the video must exist, be visible to the user and be playable; then each event is
published on ``watch-events`` (keyed by video id) and acknowledged by the broker before the
call returns. Duplicates are harmless: the analytics agents count an ``eventId`` once.
REST: ``http/watch.py``; gRPC: ``grpc/servicer.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from tritontube import metrics
from tritontube.domain.events import WatchEvent
from tritontube.domain.video import is_playable
from tritontube.http.publisher import BrokerUnavailableError
from tritontube.problems import Problem, invalid, unavailable
from tritontube.services import Services
from tritontube.streams import catalogue
from tritontube.videos import load_state

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


def check_times(events: Sequence[tuple[str, WatchEventIn]], now: datetime) -> None:
    """``occurredAt`` must be plausible: not in the future, not older than a week. Each event
    comes with the prefix of its field path in the request (``events.3.``)."""
    wrong = [
        (f"{prefix}occurredAt", "outside the accepted time range")
        for prefix, e in events
        if e.occurred_at > now + MAX_CLOCK_SKEW or e.occurred_at < now - MAX_EVENT_AGE
    ]
    if wrong:
        raise invalid(*wrong)


async def send_watch_events(
    services: Services, user: str, video_id: str, events: Sequence[tuple[str, WatchEventIn]]
) -> list[WatchEvent]:
    """Publish ``events`` of ``user`` on ``video_id``; the records published."""
    now = services.clock.now()
    check_times(events, now)
    state = await load_state(services, user, video_id, owner_only=False)
    if not is_playable(state):
        raise Problem(409, "Conflict", "the video is not playable yet", code="NOT_PLAYABLE")
    records = [
        WatchEvent(
            event_id=e.event_id,
            video_id=state.video_id,
            user_id=user,
            kind=e.kind,
            position_seconds=e.position_seconds,
            occurred_at=e.occurred_at,
            received_at=now,
        )
        for _, e in events
    ]
    publisher = services.publisher
    try:
        await asyncio.gather(
            *(publisher.publish(catalogue.WATCH_EVENTS, state.video_id, r) for r in records)
        )
    except BrokerUnavailableError as exc:
        raise unavailable("event log", exc, retry_after=5) from exc
    metrics.WATCH_EVENTS_ACCEPTED.inc(len(records))
    return records
