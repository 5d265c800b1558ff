"""Log context of the event an agent is handling: a Faust sensor.

Faust calls ``on_stream_event_in`` inside the agent's own task as the agent takes the next
event from its stream, and ``on_stream_event_out`` once the agent is done with it. The sensor
binds ``topic``, ``partition``, ``offset``, the message key under its catalogue name
(``video_id`` for every topic keyed by video, ``user_id`` for the per-viewer one) and the
``request_id`` header of the API request that published the record; every log line the agent
writes meanwhile carries them (``tritontube/logs.py``). Context variables are per task, so
agents running side by side never see each other's fields.
"""

from __future__ import annotations

import re
from typing import Any

import structlog
from faust import Sensor
from faust.types import TP, EventT, StreamT

from tritontube.logs import printable
from tritontube.streams import catalogue

_FIELD = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def _key_names() -> dict[str, str]:
    """The field name of each topic's key, for keys named by a plain identifier."""
    return {
        spec.name: spec.key
        for spec in vars(catalogue).values()
        if isinstance(spec, catalogue.TopicSpec) and _FIELD.match(spec.key)
    }


def _text(raw: Any, limit: int = 128) -> str:
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    return printable(str(raw), limit)


def _header(headers: Any, name: str) -> str | None:
    items = headers.items() if isinstance(headers, dict) else headers or ()
    for key, value in items:
        if (key.decode() if isinstance(key, bytes) else str(key)).lower() == name:
            return _text(value, 64)
    return None


class LogContextSensor(Sensor):
    """Binds the handled event's coordinates to the agent task's log context."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._keys = _key_names()

    def on_stream_event_in(
        self, tp: TP, offset: int, stream: StreamT, event: EventT
    ) -> dict[str, Any] | None:
        message = event.message
        fields: dict[str, Any] = {"topic": tp.topic, "partition": tp.partition, "offset": offset}
        if message.key is not None:
            fields[self._keys.get(tp.topic, "key")] = _text(message.key)
        request_id = _header(message.headers, catalogue.REQUEST_ID_HEADER)
        if request_id:
            fields["request_id"] = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(**fields)
        return None

    def on_stream_event_out(
        self,
        tp: TP,
        offset: int,
        stream: StreamT,
        event: EventT,
        state: dict[str, Any] | None = None,
    ) -> None:
        structlog.contextvars.clear_contextvars()
