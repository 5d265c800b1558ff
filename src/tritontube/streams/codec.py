"""Avro codecs: schemas parsed once, every message self-describing.

Wire format: Avro single-object encoding exactly as the specification writes it — ``C3 01``,
the writer schema's CRC-64-AVRO fingerprint as 8 bytes in little-endian order, then the Avro
binary body. Any consumer holding the ``.avsc`` files can decode any message, of any version
kept in ``schemas/`` and ``schemas/history/``; it resolves the writer's schema to the
reader's current one.

**Legacy byte order.** Until issue 21 the 8 fingerprint bytes were written reversed
(big-endian), so no conforming decoder found their schema. Everything written then — topics,
archive files, table changelogs — stays readable: when the 8 bytes are not the fingerprint of
any known schema, the decoder looks them up reversed. The two orders cannot be confused:
:class:`SchemaRegistry` refuses to load a set of schemas in which one schema's reversed
fingerprint is another's fingerprint (``tritontube schemas check`` reports it too).
:meth:`SchemaRegistry.to_spec_order` rewrites a legacy header in place of decoding.
"""

from __future__ import annotations

import io
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint, load_schema, to_parsing_canonical_form

NAMESPACE = "tritontube.events"
MAGIC = b"\xc3\x01"
FINGERPRINT_SIZE = 8
HEADER_SIZE = len(MAGIC) + FINGERPRINT_SIZE


class CodecError(Exception):
    """A message could not be encoded or decoded."""


@dataclass(frozen=True)
class Decoded:
    """A decoded message: the record's short name and its fields (reader schema applied).

    ``legacy`` is True when the message carried its fingerprint in the pre-issue-21 byte order.
    """

    name: str
    value: dict[str, Any]
    legacy: bool = False


def full_name(name: str) -> str:
    return name if "." in name else f"{NAMESPACE}.{name}"


def short_name(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def schema_dir() -> Path:
    return Path(str(resources.files("tritontube.schemas")))


def canonical_fingerprint(canonical: str) -> bytes:
    """CRC-64-AVRO of a Parsing Canonical Form, as the 8 bytes single-object encoding writes.

    The specification's 64-bit fingerprint in little-endian order; fastavro's hex string
    already lists those bytes in that order (``"int"`` → ``8f5c393f1ad57572``).
    """
    return bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))


def schema_fingerprint(parsed: Mapping[str, Any]) -> bytes:
    """The 8 fingerprint bytes of a parsed schema, in the order a message carries them."""
    return canonical_fingerprint(to_parsing_canonical_form(dict(parsed)))


def header(fp: bytes) -> bytes:
    """The single-object header for the fingerprint ``fp`` (spec order)."""
    return MAGIC + fp


class SchemaRegistry:
    """Every schema in a directory, parsed once: current versions by name, all by fingerprint.

    ``<dir>/<namespace>.<Name>.avsc`` are the current schemas; ``<dir>/history/<version>/``
    folders are complete snapshots of earlier versions, which remain decodable forever.
    ``by_fingerprint`` is keyed by the 8 bytes as the specification writes them,
    ``legacy_by_fingerprint`` by the same bytes reversed (messages written before issue 21).
    """

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or schema_dir()
        self.current: dict[str, dict[str, Any]] = {}
        self.by_fingerprint: dict[bytes, dict[str, Any]] = {}
        self.files: dict[bytes, Path] = {}
        for path in sorted(self.directory.glob("*.avsc")):
            parsed = _load(path)
            self.current[short_name(parsed["name"])] = parsed
            self._add(schema_fingerprint(parsed), parsed, path)
        for path in sorted(self.directory.glob("history/**/*.avsc")):
            parsed = _load(path)
            self._add(schema_fingerprint(parsed), parsed, path)
        if not self.current:
            raise CodecError(f"no .avsc schemas found in {self.directory}")
        self.legacy_by_fingerprint = {fp[::-1]: s for fp, s in self.by_fingerprint.items()}
        clashes = ambiguous_fingerprints(self.by_fingerprint)
        if clashes:
            names = ", ".join(f"{self.files[a].name} / {self.files[b].name}" for a, b in clashes)
            raise CodecError(f"fingerprint equals another schema's reversed fingerprint: {names}")
        self._fp_of = {n: schema_fingerprint(s) for n, s in self.current.items()}
        # fastavro parses a schema again on every call unless it carries fastavro's own parse
        # hint (about 60% of a small record's decode time). The dicts above stay free of it:
        # canonical forms and fingerprints are computed from them.
        self._fast_current = {n: _fast(s) for n, s in self.current.items()}
        self._fast_by_fp = {fp: _fast(s) for fp, s in self.by_fingerprint.items()}
        current = set(self._fp_of.values())
        self._resolve = {fp: fp not in current for fp in self.by_fingerprint}
        self._plans: dict[bytes, tuple[dict[str, Any], str, dict[str, Any] | None]] = {}
        # The same plans by a message's whole header (magic + fingerprint, either byte order):
        # one dict lookup per message on the hot path (AvroCodec.read).
        self.header_plans: dict[bytes, tuple[dict[str, Any], str, dict[str, Any] | None]] = {}
        for fp in self.by_fingerprint:
            plan = self._plan(fp)
            self.header_plans[MAGIC + fp] = plan
            if fp[::-1] not in self.by_fingerprint:
                self.header_plans.setdefault(MAGIC + fp[::-1], plan)

    def _add(self, fp: bytes, parsed: dict[str, Any], path: Path) -> None:
        if fp not in self.by_fingerprint:
            self.by_fingerprint[fp] = parsed
            self.files[fp] = path

    def schema(self, name: str) -> dict[str, Any]:
        try:
            return self.current[short_name(name)]
        except KeyError:
            raise CodecError(f"unknown record type {name!r}") from None

    def fingerprint_of(self, name: str) -> bytes:
        return self._fp_of[short_name(self.schema(name)["name"])]

    def fast_schema(self, name: str) -> dict[str, Any]:
        """The current schema of ``name``, parsed by fastavro (what the encoder writes with)."""
        try:
            return self._fast_current[short_name(name)]
        except KeyError:
            raise CodecError(f"unknown record type {name!r}") from None

    def decoding_plan(self, data: bytes) -> tuple[dict[str, Any], str, dict[str, Any] | None, bool]:
        """How to decode a message: its writer schema (parsed by fastavro), the record's
        short name, the reader schema to resolve it to (None when the writer is the current
        version) and whether the header was in the legacy byte order. Computed once per
        fingerprint."""
        fp, legacy = self._fingerprint_of(data)
        return (*self._plan(fp), legacy)

    def _plan(self, fp: bytes) -> tuple[dict[str, Any], str, dict[str, Any] | None]:
        plan = self._plans.get(fp)
        if plan is None:
            writer = self._fast_by_fp[fp]
            name = short_name(writer["name"])
            current = self._fast_current.get(name)
            reader = current if self._resolve[fp] and current is not None else None
            plan = self._plans[fp] = (writer, name, reader)
        return plan

    def writer_of(self, data: bytes) -> tuple[dict[str, Any], bool]:
        """The writer schema named by a message's header, and whether it is in legacy order."""
        fp, legacy = self._fingerprint_of(data)
        return self.by_fingerprint[fp], legacy

    def _fingerprint_of(self, data: bytes) -> tuple[bytes, bool]:
        """The writer schema's fingerprint (spec order) and whether the header was legacy."""
        if len(data) < HEADER_SIZE:
            raise CodecError("message too short for Avro single-object encoding")
        if data[:2] != MAGIC:
            raise CodecError(f"not Avro single-object encoding (header {data[:2]!r})")
        fp = data[2:HEADER_SIZE]
        if fp in self.by_fingerprint:
            return fp, False
        if fp in self.legacy_by_fingerprint:
            return fp[::-1], True
        raise CodecError(f"unknown schema fingerprint {fp.hex()}")

    def to_spec_order(self, data: bytes | None) -> bytes | None:
        """``data`` with a legacy (reversed) fingerprint put in spec order; anything else as is.

        Only the 8 fingerprint bytes change; the body is not decoded. Used where history is
        copied back into topics (restore, replay into a topic).
        """
        if data is None or len(data) < HEADER_SIZE or data[:2] != MAGIC:
            return data
        fp = data[2:HEADER_SIZE]
        if fp in self.by_fingerprint or fp not in self.legacy_by_fingerprint:
            return data
        return MAGIC + fp[::-1] + data[HEADER_SIZE:]


def ambiguous_fingerprints(by_fingerprint: Mapping[bytes, Any]) -> list[tuple[bytes, bytes]]:
    """Pairs (a, b) of different schemas' fingerprints where a reversed equals b.

    Such a pair would make a legacy message of one schema look like a current message of the
    other; a palindromic fingerprint names the same schema either way and is no clash.
    """
    return sorted(
        (fp, fp[::-1]) for fp in by_fingerprint if fp < fp[::-1] and fp[::-1] in by_fingerprint
    )


def _fast(schema: dict[str, Any]) -> dict[str, Any]:
    parsed = fastavro.parse_schema(schema)
    if not isinstance(parsed, dict):
        raise CodecError(f"{schema.get('name')} is not a named record schema")
    return parsed


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
        schema = self.registry.fast_schema(name)
        buf = io.BytesIO()
        buf.write(header(self.registry.fingerprint_of(name)))
        try:
            fastavro.schemaless_writer(buf, schema, dict(value))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise CodecError(f"cannot encode {name}: {exc}") from exc
        return buf.getvalue()

    def read(
        self, data: bytes | None, expect: Collection[str] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """:meth:`decode`'s record name and fields, without the :class:`Decoded` around them
        (the batched agents decode every record: one header lookup, one fastavro call)."""
        plan = None if data is None else self.registry.header_plans.get(data[:HEADER_SIZE])
        if data is None or plan is None:  # too short, not single-object, unknown: say which
            decoded = self.decode(data, expect)
            return decoded.name, decoded.value
        writer, name, reader = plan
        if expect is not None and name not in expect:
            raise CodecError(f"unexpected record type {name}")
        try:
            value = fastavro.schemaless_reader(io.BytesIO(data[HEADER_SIZE:]), writer, reader)
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
        return name, value

    def decode(self, data: bytes | None, expect: Collection[str] | None = None) -> Decoded:
        if not data:
            raise CodecError("message too short for Avro single-object encoding")
        writer, name, reader, legacy = self.registry.decoding_plan(data)
        if expect is not None and name not in expect:
            raise CodecError(f"unexpected record type {name}")
        try:
            value = fastavro.schemaless_reader(io.BytesIO(data[HEADER_SIZE:]), writer, reader)
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
        return Decoded(name=name, value=value, legacy=legacy)
