"""Properties of the Avro codecs (hypothesis): any valid record round-trips; arbitrary bytes
never raise anything but CodecError."""

from __future__ import annotations

import contextlib
import dataclasses
import types
import typing
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tritontube.deps import build_deps
from tritontube.domain.media import LADDER, RenditionSpec
from tritontube.indexer.documents import VideoDocument
from tritontube.settings import Settings
from tritontube.streams.codec import MAGIC, CodecError
from tritontube.streams.records import RECORD_TYPES, EventCodec, is_record_type, type_hints

CODEC: EventCodec = build_deps(Settings()).codec
PROFILE = settings(max_examples=150, deadline=None, database=None)

# Avro timestamp-millis: millisecond precision, UTC.
_TIMES = st.integers(0, 4_000_000_000_000).map(
    lambda ms: datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
)
_TEXT = st.text(max_size=40)
_INT = st.integers(-(2**31), 2**31 - 1)
_LONG = st.integers(-(2**63), 2**63 - 1)
_FLOAT = st.floats(allow_nan=False, width=64)


def _strategy(hint: Any, name: str) -> st.SearchStrategy[Any]:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Literal:
        return st.sampled_from(args)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return st.none() | _strategy(inner[0], name)
    if origin is tuple:
        return st.lists(_strategy(args[0], name), max_size=3).map(tuple)
    if hint is str:
        return _TEXT
    if hint is int:
        return _INT if name in _INT_FIELDS else _LONG
    if hint is float:
        return _FLOAT
    if hint is bool:
        return st.booleans()
    if hint is bytes:
        return st.binary(max_size=40)
    if hint is datetime:
        return _TIMES
    if is_record_type(hint):
        return _record(hint)
    raise AssertionError(f"no strategy for {hint!r}")


def _int_fields() -> set[str]:
    """Names of fields declared `int` (32-bit) in any schema; everything else integral is long."""
    found: set[str] = set()
    for schema in CODEC.avro.registry.current.values():
        for f in schema.get("fields", []):
            t = f["type"]
            if t == "int" or (isinstance(t, list) and "int" in t):
                found.add(f["name"])
    return found


_INT_FIELDS = _int_fields()


# Fields whose domain type validates more than Avro does (``VideoDocument.__post_init__``).
_NARROWER: dict[tuple[type[Any], str], st.SearchStrategy[Any]] = {
    (VideoDocument, "video_id"): st.text(min_size=1, max_size=40),
    (VideoDocument, "views"): st.integers(0, 2**63 - 1),
    (VideoDocument, "version"): st.integers(0, 2**63 - 1),
}


# Types whose constructor validates their fields together: drawn from valid values.
_WHOLE: dict[type[Any], st.SearchStrategy[Any]] = {
    RenditionSpec: st.sampled_from(LADDER),
}


def _record(cls: type[Any]) -> st.SearchStrategy[Any]:
    if cls in _WHOLE:
        return _WHOLE[cls]
    hints = type_hints(cls)
    fields = {
        name: _NARROWER[(cls, name)] if (cls, name) in _NARROWER else _strategy(hints[name], name)
        for name in hints
        if name in _names(cls)
    }
    return st.builds(cls, **fields)


def _names(cls: type[Any]) -> tuple[str, ...]:
    if dataclasses.is_dataclass(cls):
        return tuple(f.name for f in dataclasses.fields(cls))
    return tuple(cls._fields)


@pytest.mark.parametrize("name", sorted(RECORD_TYPES))
def test_every_record_type_round_trips(name: str) -> None:
    @PROFILE
    @given(_record(RECORD_TYPES[name]))
    def check(record: Any) -> None:
        assert CODEC.decode(CODEC.encode(record)) == record

    check()


@PROFILE
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_codec_error(data: bytes) -> None:
    with contextlib.suppress(CodecError):
        CODEC.decode(data)


# Both byte orders: the specification's, and the reversed one written before issue 21.
_FINGERPRINTS = sorted(CODEC.avro.registry.by_fingerprint) + sorted(
    CODEC.avro.registry.legacy_by_fingerprint
)


@PROFILE
@given(st.sampled_from(_FINGERPRINTS), st.binary(max_size=300))
def test_valid_header_with_garbage_body_raises_only_codec_error(fp: bytes, body: bytes) -> None:
    with contextlib.suppress(CodecError):
        CODEC.decode(MAGIC + fp + body)


@PROFILE
@given(st.sampled_from(sorted(RECORD_TYPES)), st.data())
def test_truncated_or_bitflipped_records_raise_only_codec_error(
    name: str, data: st.DataObject
) -> None:
    raw = bytearray(CODEC.encode(data.draw(_record(RECORD_TYPES[name]))))
    cut = data.draw(st.integers(0, len(raw)))
    flips = data.draw(st.lists(st.integers(0, max(0, len(raw) - 1)), max_size=4))
    for i in flips:
        if i < len(raw):
            raw[i] ^= 0xFF
    with contextlib.suppress(CodecError):
        CODEC.decode(bytes(raw[:cut]))
