"""Per-request log context and the access log line.

The outermost middleware binds ``request_id`` (the client's ``X-Request-Id`` when it is a
plain token, else a new one), ``method``, ``route`` (the template, never the raw path) and the
path's ``video_id`` to the request's context, so every log line written while handling it
carries them (``tritontube/logs.py``); it writes one ``request`` line when the answer is
known, and every response carries the id back in ``X-Request-Id``. Events the request
publishes carry the id to the workers in a Kafka header (``http/publisher.py``).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from tritontube.queries import VIDEO_ID_PATTERN

log = logging.getLogger("tritontube.http.access")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REQUEST_ID_HEADER = "X-Request-Id"
REQUEST_ID = web.RequestKey("request_id", str)
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")
_VIDEO_ID = re.compile(VIDEO_ID_PATTERN)


def request_id_of(request: web.Request) -> str:
    given = request.headers.get(REQUEST_ID_HEADER, "")
    return given if _CLIENT_ID.match(given) else uuid.uuid4().hex


@web.middleware
async def request_context_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = request_id_of(request)
    request[REQUEST_ID] = request_id
    resource = request.match_info.route.resource
    fields: dict[str, object] = {
        "request_id": request_id,
        "method": request.method,
        "route": resource.canonical if resource is not None else "unmatched",
    }
    video_id = request.match_info.get("video_id")
    if video_id is not None and _VIDEO_ID.match(video_id):
        fields["video_id"] = video_id
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(**fields)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        log.info(
            "request",
            extra={
                "status": status,
                "duration_ms": round(1000 * (time.perf_counter() - started), 2),
            },
        )


async def add_request_id(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: the id on every answer, streamed media included."""
    request_id = request.get(REQUEST_ID)
    if request_id is not None:
        response.headers[REQUEST_ID_HEADER] = request_id


def current_request_id() -> str | None:
    """The id bound to the running request, if any (for headers of published events)."""
    value = structlog.contextvars.get_contextvars().get("request_id")
    return value if isinstance(value, str) else None
