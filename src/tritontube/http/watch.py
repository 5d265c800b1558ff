"""REST adapter of watch-event ingestion (``tritontube.watch``):
``POST /v1/videos/{video_id}/watchEvents``.

The body is one event ``{"eventId", "kind", "positionSeconds", "occurredAt"}`` or a batch
``{"events": [<event>, ...]}`` (1-100 events, the SPA's buffered heartbeats); the answer is
``202 {"accepted": n, "eventIds": [...]}`` once the broker acknowledged every event.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError

from tritontube import watch
from tritontube.http.auth import current_user
from tritontube.http.keys import services
from tritontube.http.uploads import read_json
from tritontube.problems import validation_problem
from tritontube.videos import check_video_id
from tritontube.watch import WatchEventBatch, WatchEventIn


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


async def post_watch_events(request: web.Request) -> web.Response:
    """POST /v1/videos/{video_id}/watchEvents -> 202 {"accepted": n, "eventIds": [...]}."""
    user = current_user(request)
    video_id = check_video_id(request.match_info["video_id"])
    events = await read_events(request)
    records = await watch.send_watch_events(services(request), user, video_id, events)
    return web.json_response(
        {"accepted": len(records), "eventIds": [r.event_id for r in records]}, status=202
    )
