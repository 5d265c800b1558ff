"""The event archive format: object keys and Avro object container files.

One archive file holds a contiguous run of one topic-partition's records, in offset order::

    archive/<topic>/<partition>/<yyyy>/<mm>/<dd>/<start-offset:020d>-<end-offset:020d>.avro

The date is the (UTC) record timestamp of the file's first record; start and end offsets are
both inclusive. Keys are deterministic: the same run of records always gets the same key, so
a rewrite after a crash overwrites instead of duplicating, and listing
``archive/<topic>/<partition>/`` tells how far a partition is archived (the largest end offset).

Each file is a standard Avro object container file (deflate codec) of
:data:`ENVELOPE_SCHEMA` records. The envelope keeps the message exactly as the broker had it
(key bytes, value bytes, headers, timestamp), so a replay can produce it back byte for byte;
the value is itself Avro single-object encoding, decodable with the published ``.avsc`` files.
``fastavro.reader``, ``avro-tools tojson`` or any other Avro tool opens the files without our
code.

Beside the files, ``archive/_checkpoints/<group>.json`` holds the worker group's committed
offsets at a moment the archive reflects completely (see ``agents.archiver``); the embedded
stack's restore commits the group there. Pure: no I/O beyond bytes in and out.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import fastavro

DEFAULT_PREFIX: Final = "archive/"
CONTENT_TYPE: Final = "application/avro"
CODEC: Final = "deflate"

ENVELOPE_SCHEMA: Final[dict[str, Any]] = {
    "type": "record",
    "name": "ArchivedRecord",
    "namespace": "tritontube.archive",
    "doc": "One Kafka record exactly as the broker stored it.",
    "fields": [
        {"name": "topic", "type": "string", "doc": "Source topic."},
        {"name": "partition", "type": "int", "doc": "Source partition."},
        {"name": "offset", "type": "long", "doc": "Offset in the source partition."},
        {
            "name": "timestamp",
            "type": {"type": "long", "logicalType": "timestamp-millis"},
            "doc": "The record's timestamp (UTC).",
        },
        {
            "name": "timestamp_type",
            "type": "int",
            "doc": "0 = CreateTime (set by the producer), 1 = LogAppendTime.",
            "default": 0,
        },
        {"name": "key", "type": ["null", "bytes"], "doc": "Raw key bytes.", "default": None},
        {
            "name": "value",
            "type": ["null", "bytes"],
            "doc": "Raw value bytes (Avro single-object encoding for TritonTube events).",
            "default": None,
        },
        {
            "name": "headers",
            "type": {
                "type": "array",
                "items": {
                    "type": "record",
                    "name": "Header",
                    "fields": [
                        {"name": "key", "type": "string"},
                        {"name": "value", "type": ["null", "bytes"], "default": None},
                    ],
                },
            },
            "doc": "Record headers in order.",
            "default": [],
        },
    ],
}
_PARSED: Final = fastavro.parse_schema(ENVELOPE_SCHEMA)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_NAME_RE: Final = re.compile(r"^(\d{20})-(\d{20})\.avro$")


class ArchiveFormatError(Exception):
    """An archive key or file that does not follow the format."""


@dataclass(frozen=True, slots=True)
class ArchivedRecord:
    """One record of one topic-partition, as the broker had it."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()
    timestamp_type: int = 0

    @property
    def timestamp(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp_ms / 1000, UTC)


@dataclass(frozen=True, slots=True)
class ArchiveFile:
    """Where one archive file sits and which offsets it holds (inclusive)."""

    key: str
    topic: str
    partition: int
    day: str  # yyyy/mm/dd
    start_offset: int
    end_offset: int


def normalise_prefix(prefix: str) -> str:
    return prefix if prefix.endswith("/") else f"{prefix}/"


def partition_prefix(prefix: str, topic: str, partition: int) -> str:
    return f"{normalise_prefix(prefix)}{topic}/{partition}/"


def topic_prefix(prefix: str, topic: str) -> str:
    return f"{normalise_prefix(prefix)}{topic}/"


def archive_key(prefix: str, records: Sequence[ArchivedRecord]) -> str:
    """The deterministic key of a file holding ``records`` (one partition, offset order)."""
    if not records:
        raise ArchiveFormatError("an archive file needs at least one record")
    first, last = records[0], records[-1]
    day = first.timestamp.strftime("%Y/%m/%d")
    name = f"{first.offset:020d}-{last.offset:020d}.avro"
    return f"{partition_prefix(prefix, first.topic, first.partition)}{day}/{name}"


def parse_key(prefix: str, key: str) -> ArchiveFile:
    """Inverse of :func:`archive_key`; raises :class:`ArchiveFormatError` on foreign keys."""
    root = normalise_prefix(prefix)
    if not key.startswith(root):
        raise ArchiveFormatError(f"{key!r} is not under {root!r}")
    parts = key[len(root) :].split("/")
    if len(parts) != 6:
        raise ArchiveFormatError(f"{key!r} does not match <topic>/<p>/<yyyy>/<mm>/<dd>/<name>")
    topic, partition, yyyy, mm, dd, name = parts
    match = _NAME_RE.match(name)
    if not match or not (partition.isascii() and partition.isdigit()):
        raise ArchiveFormatError(f"{key!r} has no <start>-<end>.avro name")
    return ArchiveFile(
        key=key,
        topic=topic,
        partition=int(partition),
        day=f"{yyyy}/{mm}/{dd}",
        start_offset=int(match.group(1)),
        end_offset=int(match.group(2)),
    )


def parse_keys(prefix: str, keys: Iterable[str]) -> list[ArchiveFile]:
    """The archive files among ``keys`` in replay order (topic, partition, start offset)."""
    files = []
    for key in keys:
        try:
            files.append(parse_key(prefix, key))
        except ArchiveFormatError:
            continue  # not an archive file (a temporary or foreign object): not ours to read
    return sorted(files, key=lambda f: (f.topic, f.partition, f.start_offset))


def last_archived_offset(files: Iterable[ArchiveFile]) -> int | None:
    """The largest archived offset among ``files`` (one partition), or None when none."""
    ends = [f.end_offset for f in files]
    return max(ends) if ends else None


def encode_file(records: Sequence[ArchivedRecord]) -> bytes:
    """An Avro object container file of ``records``; identical records give identical bytes."""
    if not records:
        raise ArchiveFormatError("an archive file needs at least one record")
    first, last = records[0], records[-1]
    # A sync marker derived from the content keeps rewrites byte-identical (fastavro would
    # otherwise draw a random one per file).
    marker = hashlib.sha256(
        f"{first.topic}/{first.partition}/{first.offset}-{last.offset}".encode()
    ).digest()[:16]
    metadata = {
        "tritontube.topic": first.topic,
        "tritontube.partition": str(first.partition),
        "tritontube.start_offset": str(first.offset),
        "tritontube.end_offset": str(last.offset),
        "tritontube.min_timestamp_ms": str(min(r.timestamp_ms for r in records)),
        "tritontube.max_timestamp_ms": str(max(r.timestamp_ms for r in records)),
    }
    buf = io.BytesIO()
    fastavro.writer(
        buf,
        _PARSED,
        (_to_avro(r) for r in records),
        codec=CODEC,
        metadata=metadata,
        sync_marker=marker,
    )
    return buf.getvalue()


def decode_file(data: bytes) -> Iterator[ArchivedRecord]:
    """The records of one archive file, in the order written."""
    try:
        reader = fastavro.reader(io.BytesIO(data))
        for raw in reader:
            yield _from_avro(raw)  # type: ignore[arg-type]
    except (ValueError, EOFError, TypeError, KeyError) as exc:
        raise ArchiveFormatError(f"not a readable archive file: {exc}") from exc


def checkpoint_key(prefix: str, group: str) -> str:
    """Where the archiver keeps ``group``'s committed offsets that the archive fully reflects
    (not an archive file: :func:`parse_keys` skips it)."""
    return f"{normalise_prefix(prefix)}_checkpoints/{group}.json"


def encode_checkpoint(group: str, offsets: Mapping[tuple[str, int], int], at: datetime) -> bytes:
    """A checkpoint file: ``group``'s committed offset per (topic, partition), as JSON."""
    by_topic: dict[str, dict[str, int]] = {}
    for (topic, partition), offset in sorted(offsets.items()):
        by_topic.setdefault(topic, {})[str(partition)] = offset
    body = {"group": group, "writtenAt": at.isoformat(), "offsets": by_topic}
    return json.dumps(body, indent=1, sort_keys=True).encode()


def decode_checkpoint(data: bytes) -> dict[tuple[str, int], int]:
    """Inverse of :func:`encode_checkpoint`; raises :class:`ArchiveFormatError` when malformed."""
    try:
        body = json.loads(data)
        return {
            (str(topic), int(partition)): int(offset)
            for topic, partitions in body["offsets"].items()
            for partition, offset in partitions.items()
        }
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ArchiveFormatError(f"not a checkpoint file: {exc}") from exc


def from_consumer_record(msg: Any) -> ArchivedRecord:
    """An aiokafka ``ConsumerRecord`` (duck-typed) as an archive record."""
    return ArchivedRecord(
        topic=msg.topic,
        partition=msg.partition,
        offset=msg.offset,
        timestamp_ms=msg.timestamp,
        timestamp_type=msg.timestamp_type,
        key=msg.key,
        value=msg.value,
        headers=tuple((str(k), None if v is None else bytes(v)) for k, v in msg.headers or ()),
    )


def _to_avro(record: ArchivedRecord) -> dict[str, Any]:
    return {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": record.timestamp_ms,
        "timestamp_type": record.timestamp_type,
        "key": record.key,
        "value": record.value,
        "headers": [{"key": k, "value": v} for k, v in record.headers],
    }


def _from_avro(raw: dict[str, Any]) -> ArchivedRecord:
    ts = raw["timestamp"]
    ts_ms = (ts - _EPOCH) // timedelta(milliseconds=1) if isinstance(ts, datetime) else int(ts)
    return ArchivedRecord(
        topic=raw["topic"],
        partition=int(raw["partition"]),
        offset=int(raw["offset"]),
        timestamp_ms=ts_ms,
        timestamp_type=int(raw.get("timestamp_type", 0)),
        key=raw["key"],
        value=raw["value"],
        headers=tuple((h["key"], h["value"]) for h in raw.get("headers", ())),
    )
