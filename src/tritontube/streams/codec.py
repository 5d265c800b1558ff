"""Avro codecs: schemas parsed once, every message self-describing.

Wire format (default): Avro single-object encoding — ``C3 01`` + the writer schema's
CRC-64-AVRO fingerprint (8 bytes, little endian) + the Avro binary body. Any consumer holding
the ``.avsc`` files can decode any message, of any version kept in ``schemas/`` and
``schemas/history/``; it resolves the writer's schema to the reader's current one.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint, load_schema, to_parsing_canonical_form

NAMESPACE = "tritontube.events"
MAGIC = b"\xc3\x01"
_HEADER = struct.Struct("<2sQ")


class CodecError(Exception):
    """A message could not be encoded or decoded."""


@dataclass(frozen=True)
class Decoded:
    """A decoded message: the record's short name and its fields (reader schema applied)."""

    name: str
    value: dict[str, Any]


def full_name(name: str) -> str:
    return name if "." in name else f"{NAMESPACE}.{name}"


def short_name(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def schema_dir() -> Path:
    return Path(str(resources.files("tritontube.schemas")))


def schema_fingerprint(parsed: Mapping[str, Any]) -> int:
    canonical = to_parsing_canonical_form(dict(parsed))
    return int(fingerprint(canonical, "CRC-64-AVRO"), 16)


class SchemaRegistry:
    """Every schema in a directory, parsed once: current versions by name, all by fingerprint.

    ``<dir>/<namespace>.<Name>.avsc`` are the current schemas; ``<dir>/history/<version>/``
    folders are complete snapshots of earlier versions, which remain decodable forever.
    """

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or schema_dir()
        self.current: dict[str, dict[str, Any]] = {}
        self.by_fingerprint: dict[int, dict[str, Any]] = {}
        for path in sorted(self.directory.glob("*.avsc")):
            parsed = _load(path)
            self.current[short_name(parsed["name"])] = parsed
            self.by_fingerprint[schema_fingerprint(parsed)] = parsed
        for path in sorted(self.directory.glob("history/**/*.avsc")):
            parsed = _load(path)
            self.by_fingerprint.setdefault(schema_fingerprint(parsed), parsed)
        if not self.current:
            raise CodecError(f"no .avsc schemas found in {self.directory}")
        self._fp_of = {n: schema_fingerprint(s) for n, s in self.current.items()}

    def schema(self, name: str) -> dict[str, Any]:
        try:
            return self.current[short_name(name)]
        except KeyError:
            raise CodecError(f"unknown record type {name!r}") from None

    def fingerprint_of(self, name: str) -> int:
        return self._fp_of[short_name(self.schema(name)["name"])]


def _load(path: Path) -> dict[str, Any]:
    """Parse one schema; named types it references resolve from files in the same folder."""
    try:
        parsed = load_schema(str(path), _write_hint=False)
    except (ValueError, fastavro.schema.SchemaParseException, OSError) as exc:
        raise CodecError(f"cannot parse schema {path}: {exc}") from exc
    if not isinstance(parsed, dict):
        raise CodecError(f"{path} is not a named record schema")
    return parsed


class AvroCodec:
    """Encode records as single-object Avro; decode any known writer version."""

    def __init__(self, registry: SchemaRegistry) -> None:
        self.registry = registry

    def encode(self, name: str, value: Mapping[str, Any]) -> bytes:
        schema = self.registry.schema(name)
        buf = io.BytesIO()
        buf.write(_HEADER.pack(MAGIC, self.registry.fingerprint_of(name)))
        try:
            fastavro.schemaless_writer(buf, schema, dict(value))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise CodecError(f"cannot encode {name}: {exc}") from exc
        return buf.getvalue()

    def decode(self, data: bytes | None, expect: Iterable[str] | None = None) -> Decoded:
        if not data or len(data) < _HEADER.size:
            raise CodecError("message too short for Avro single-object encoding")
        magic, fp = _HEADER.unpack_from(data)
        if magic != MAGIC:
            raise CodecError(f"not Avro single-object encoding (header {data[:2]!r})")
        writer = self.registry.by_fingerprint.get(fp)
        if writer is None:
            raise CodecError(f"unknown schema fingerprint {fp:016x}")
        name = short_name(writer["name"])
        if expect is not None and name not in set(expect):
            raise CodecError(f"unexpected record type {name}")
        reader = self.registry.current.get(name, writer)
        try:
            value = fastavro.schemaless_reader(io.BytesIO(data[_HEADER.size :]), writer, reader)
        except (
            ValueError,
            TypeError,
            EOFError,
            IndexError,
            UnicodeDecodeError,
            fastavro.read.SchemaResolutionError,
        ) as exc:
            raise CodecError(f"cannot decode {name}: {exc}") from exc
        if not isinstance(value, dict):
            raise CodecError(f"{name} did not decode to a record")
        return Decoded(name=name, value=value)
