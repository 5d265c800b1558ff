"""Avro <-> domain mapping, the only place where the two meet.

Each Avro record ``tritontube.events.<Name>`` maps to the domain dataclass of the same name.
Arrays become tuples, nested records become nested dataclasses.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar, get_args, get_origin

from tritontube.domain import events
from tritontube.streams.codec import AvroCodec, CodecError

RECORD_TYPES: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in (
        events.UploadSessionCreated,
        events.UploadCompleted,
        events.UploadSessionExpired,
        events.TranscodeJob,
        events.TranscodeProgress,
        events.RenditionReady,
        events.TranscodeSucceeded,
        events.TranscodeFailed,
        events.WatchEvent,
        events.VideoStats,
        events.VideoState,
        events.DeadLetter,
        events.Rendition,
        events.RenditionProgress,
        events.RenditionState,
    )
}

T = TypeVar("T")


def to_avro(obj: Any) -> Any:
    """A domain object as the plain dict/list structure fastavro writes."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_avro(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple | list):
        return [to_avro(x) for x in obj]
    return obj


_HINTS: dict[type[Any], dict[str, Any]] = {}


def _hints(cls: type[Any]) -> dict[str, Any]:
    """Resolved type hints of a domain dataclass (computed once per class)."""
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls, vars(events))
    return hints


def from_avro(cls: type[T], value: dict[str, Any]) -> T:
    """Build ``cls`` from a decoded Avro record, ignoring fields the domain does not know."""
    hints = _hints(cls)
    kwargs = {
        f.name: _convert(hints[f.name], value[f.name])
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        if f.name in value
    }
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise CodecError(f"record does not fit {cls.__name__}: {exc}") from exc


def _convert(hint: Any, raw: Any) -> Any:
    if raw is None:
        return None
    origin = get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        inner = [a for a in get_args(hint) if a is not type(None)]
        return _convert(inner[0], raw) if len(inner) == 1 else raw
    if origin is tuple:
        item = get_args(hint)[0]
        return tuple(_convert(item, x) for x in raw)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return from_avro(hint, raw)
    return raw


class EventCodec:
    """Domain events to bytes and back, over :class:`AvroCodec`."""

    def __init__(self, avro: AvroCodec) -> None:
        self.avro = avro

    def encode(self, event: Any) -> bytes:
        name = type(event).__name__
        if name not in RECORD_TYPES:
            raise CodecError(f"{name} is not a record type")
        return self.avro.encode(name, to_avro(event))

    def decode(self, data: bytes | None, expect: tuple[str, ...] | None = None) -> Any:
        decoded = self.avro.decode(data, expect)
        cls = RECORD_TYPES.get(decoded.name)
        if cls is None:
            raise CodecError(f"no domain type for {decoded.name}")
        return from_avro(cls, decoded.value)
