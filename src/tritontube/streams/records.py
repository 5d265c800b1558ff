"""Avro <-> domain mapping, the only place where the two meet.

Each Avro record ``tritontube.events.<Name>`` maps to the domain type of the same name (a
frozen dataclass or a NamedTuple): topic records, table values and the worker's query answers.
Arrays become tuples, nested records become nested domain types.
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar, get_args, get_origin

from tritontube.domain import analytics, events, owners, queries, queue
from tritontube.indexer import documents, join
from tritontube.streams.codec import AvroCodec, CodecError

RECORD_TYPES: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in (
        events.UploadSessionCreated,
        events.UploadCompleted,
        events.UploadSessionExpired,
        events.VideoMetadataUpdated,
        events.VideoDeleted,
        events.VideoPurged,
        events.TranscodeRetryRequested,
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
        events.TranscodeChunk,
        events.TranscodeChunked,
        events.ChunkProgress,
        events.ChunkEncoded,
        events.ChunkFailed,
        events.ChunkedJob,
        events.ChunkPart,
        events.MediaFile,
        events.Probe,
        events.RenditionSpec,
        queue.WaitingVideo,
        queue.WaitingVideos,
        queue.QueuePosition,
        # table values
        analytics.WatchSession,
        analytics.VideoAnalytics,
        analytics.TrendingBucket,
        analytics.TrendingEntry,
        analytics.PartitionTrending,
        analytics.HistoryEntry,
        analytics.UserHistory,
        join.SearchSource,
        owners.OwnedVideo,
        owners.OwnerVideos,
        # the search-documents topic
        documents.VideoDocument,
        # the worker's query answers
        queries.VideoStateBatch,
        queries.OwnerVideosPage,
        queries.TrendingAnswer,
        queries.TopicAssignment,
        queries.WorkerMember,
        queries.WorkerCluster,
    )
}

T = TypeVar("T")


def to_avro(obj: Any) -> Any:
    """A domain object as the plain dict/list structure fastavro writes."""
    plan = _ENCODE_PLANS.get(type(obj))
    if plan is None:
        if _field_names(type(obj)) is None:
            if isinstance(obj, tuple | list):
                return [to_avro(x) for x in obj]
            return obj
        plan = _encode_plan(type(obj))
    out = {}
    for name, convert in plan:
        raw = getattr(obj, name)
        out[name] = raw if convert is None or raw is None else convert(raw)
    return out


_PLAIN: tuple[Any, ...] = (str, int, float, bool, bytes, datetime)
_ENCODE_PLANS: dict[type[Any], tuple[tuple[str, Converter | None], ...]] = {}


def _encode_plan(cls: type[Any]) -> tuple[tuple[str, Converter | None], ...]:
    """Each field of a record type with how its value becomes Avro's (None: as it is), from
    the type hints, so that a field of plain values costs no recursion per value."""
    hints = type_hints(cls)
    plan = tuple((name, _encoder(hints[name])) for name in _field_names(cls) or ())
    _ENCODE_PLANS[cls] = plan
    return plan


def _encoder(hint: Any) -> Converter | None:
    origin = get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        inner = [a for a in get_args(hint) if a is not type(None)]
        return _encoder(inner[0]) if len(inner) == 1 else to_avro
    if origin is typing.Literal or hint in _PLAIN:
        return None
    if origin is tuple:
        args = get_args(hint)
        if args and all(a in _PLAIN for a in args if a is not Ellipsis):
            return list
        return to_avro
    return to_avro


# Per-class plans, computed once: every event goes through these, so the dataclass and
# typing introspection must not run per record.
_FIELD_NAMES: dict[type[Any], tuple[str, ...] | None] = {}
Converter = Callable[[Any], Any]
_PLANS: dict[type[Any], tuple[tuple[str, Converter | None], ...]] = {}


def is_record_type(cls: Any) -> bool:
    """A domain type with named fields: a dataclass or a NamedTuple."""
    return isinstance(cls, type) and (
        dataclasses.is_dataclass(cls) or (issubclass(cls, tuple) and hasattr(cls, "_fields"))
    )


def _field_names(cls: type[Any]) -> tuple[str, ...] | None:
    """The field names of a record type (dataclass or NamedTuple), None for any other type."""
    try:
        return _FIELD_NAMES[cls]
    except KeyError:
        names: tuple[str, ...] | None = None
        if dataclasses.is_dataclass(cls):
            names = tuple(f.name for f in dataclasses.fields(cls))
        elif is_record_type(cls):
            names = tuple(cls._fields)
        _FIELD_NAMES[cls] = names
        return names


def type_hints(cls: type[Any]) -> dict[str, Any]:
    """The resolved annotations of a record type (its own module's names)."""
    return typing.get_type_hints(cls, vars(sys.modules[cls.__module__]))


def _plan(cls: type[Any]) -> tuple[tuple[str, Converter | None], ...]:
    """Each field of a domain record type with the converter of its raw Avro value."""
    plan = _PLANS.get(cls)
    if plan is None:
        hints = type_hints(cls)
        names = _field_names(cls) or ()
        plan = _PLANS[cls] = tuple((name, _converter(hints[name])) for name in names)
        if all(convert is None for _, convert in plan):
            _PLAIN_RECORDS[cls] = frozenset(names)
    return plan


# Record types whose every field is taken as fastavro decodes it (after _plan saw them).
_PLAIN_RECORDS: dict[type[Any], frozenset[str]] = {}


def from_avro(cls: type[T], value: dict[str, Any]) -> T:
    """Build ``cls`` from a decoded Avro record, ignoring fields the domain does not know."""
    if cls in _PLAIN_RECORDS and len(value) == len(_PLAIN_RECORDS[cls]):
        # Every field as fastavro gave it, and the record has exactly the domain's fields.
        try:
            return cls(**value)
        except TypeError:
            pass  # other field names: the general path says what does not fit
    kwargs = {}
    for name, convert in _plan(cls):
        if name in value:
            raw = value[name]
            kwargs[name] = raw if convert is None or raw is None else convert(raw)
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise CodecError(f"record does not fit {cls.__name__}: {exc}") from exc


def _converter(hint: Any) -> Converter | None:
    """How a non-null raw value of type ``hint`` becomes a domain value (None: as it is)."""
    origin = get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        inner = [a for a in get_args(hint) if a is not type(None)]
        return _converter(inner[0]) if len(inner) == 1 else None
    if origin is tuple:
        item = _converter(get_args(hint)[0])
        if item is None:
            return tuple
        return lambda raw: tuple(None if x is None else item(x) for x in raw)
    if is_record_type(hint):
        record: type[Any] = hint
        return lambda raw: from_avro(record, raw)
    return None


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
        name, value = self.avro.read(data, expect)
        cls = RECORD_TYPES.get(name)
        if cls is None:
            raise CodecError(f"no domain type for {name}")
        return from_avro(cls, value)

    def decode_as(self, data: bytes | None, cls: type[T]) -> T:
        """Decode a record that must be of type ``cls``."""
        value: T = self.decode(data, expect=(cls.__name__,))
        return value
