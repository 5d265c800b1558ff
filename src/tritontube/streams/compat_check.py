"""Schemas as a contract: backward-transitive compatibility, and the topic documentation.

**Compatibility.** Every current ``schemas/<ns>.<Name>.avsc`` must be able to *read* data
written with every earlier version kept in ``schemas/history/<version>/`` (backward
transitive). :func:`can_read` implements the Avro specification's schema-resolution rules
(record fields matched by name or alias, defaults for fields the writer lacks, numeric and
string/bytes promotions, unions, enums, arrays, maps, fixed); :func:`check` additionally
round-trips generated sample data through fastavro with the writer and reader schemas, so our
rules and the library agree.

**Docs.** :func:`render_topics_doc` produces ``docs/topics.md`` from the catalogue and the
schemas (a contract test keeps the file in sync; ``tritontube schemas doc`` prints it).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro
from fastavro.utils import generate_many

from tritontube.streams import catalogue
from tritontube.streams.codec import SchemaRegistry, _load, schema_dir, short_name

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
PROMOTIONS = {
    "int": {"long", "float", "double"},
    "long": {"float", "double"},
    "float": {"double"},
    "string": {"bytes"},
    "bytes": {"string"},
}
SAMPLES = 25


@dataclass(frozen=True)
class Incompatibility:
    record: str
    version: str
    problem: str

    def __str__(self) -> str:
        return f"{self.record}: cannot read {self.version} data: {self.problem}"


class _Names:
    """Named types seen while walking one schema (parsed schemas reference them by name)."""

    def __init__(self) -> None:
        self.types: dict[str, Any] = {}

    def resolve(self, schema: Any) -> Any:
        if isinstance(schema, str) and schema not in PRIMITIVES:
            return self.types.get(schema, schema)
        if (
            isinstance(schema, dict)
            and "name" in schema
            and schema.get("type")
            in (
                "record",
                "enum",
                "fixed",
                "error",
            )
        ):
            self.types.setdefault(_full(schema), schema)
        return schema


def _full(schema: dict[str, Any]) -> str:
    name = str(schema["name"])
    ns = schema.get("namespace")
    return name if "." in name or not ns else f"{ns}.{name}"


def _kind(schema: Any) -> str:
    if isinstance(schema, list):
        return "union"
    if isinstance(schema, dict):
        t = schema["type"]
        return t if isinstance(t, str) and t in PRIMITIVES else str(t)
    return str(schema)


def can_read(reader: Any, writer: Any) -> list[str]:
    """Problems a reader with ``reader`` has with data written with ``writer`` (empty: fine)."""
    return list(_check(reader, writer, _Names(), _Names(), "", set()))


def _check(
    reader: Any, writer: Any, rn: _Names, wn: _Names, path: str, seen: set[tuple[str, str]]
) -> Iterator[str]:
    reader, writer = rn.resolve(reader), wn.resolve(writer)
    rk, wk = _kind(reader), _kind(writer)
    here = path or "<root>"
    if wk == "union":
        for i, branch in enumerate(writer):
            if not _any_ok(reader, branch, rn, wn, seen):
                yield f"{here}: writer union branch {i} ({_kind(wn.resolve(branch))}) unreadable"
        return
    if rk == "union":
        if not _any_ok(reader, writer, rn, wn, seen):
            yield f"{here}: no reader union branch reads writer type {wk}"
        return
    if rk in PRIMITIVES or wk in PRIMITIVES:
        if rk != wk and rk not in PROMOTIONS.get(wk, set()):
            yield f"{here}: type changed from {wk} to {rk}"
        return
    if rk != wk:
        yield f"{here}: type changed from {wk} to {rk}"
        return
    if rk == "record":
        yield from _check_record(reader, writer, rn, wn, path, seen)
    elif rk == "enum":
        missing = set(writer["symbols"]) - set(reader["symbols"])
        if missing and "default" not in reader:
            yield f"{here}: enum symbols {sorted(missing)} unknown to the reader"
    elif rk == "array":
        yield from _check(reader["items"], writer["items"], rn, wn, f"{path}[]", seen)
    elif rk == "map":
        yield from _check(reader["values"], writer["values"], rn, wn, f"{path}{{}}", seen)
    elif rk == "fixed" and (reader["size"] != writer["size"] or not _same_name(reader, writer)):
        yield f"{here}: fixed size or name changed"


def _same_name(reader: dict[str, Any], writer: dict[str, Any]) -> bool:
    aliases = set(reader.get("aliases", ()))
    return _full(reader) == _full(writer) or writer["name"] in aliases or _full(writer) in aliases


def _check_record(
    reader: dict[str, Any],
    writer: dict[str, Any],
    rn: _Names,
    wn: _Names,
    path: str,
    seen: set[tuple[str, str]],
) -> Iterator[str]:
    pair = (_full(reader), _full(writer))
    if pair in seen:
        return  # recursive type: already being checked
    seen = seen | {pair}
    if not _same_name(reader, writer):
        yield f"{path or '<root>'}: record name changed from {_full(writer)} to {_full(reader)}"
        return
    by_name = {f["name"]: f for f in writer["fields"]}
    for field in writer["fields"]:
        wn.resolve(field["type"])
    for field in reader["fields"]:
        names = [field["name"], *field.get("aliases", ())]
        match = next((by_name[n] for n in names if n in by_name), None)
        where = f"{path}.{field['name']}" if path else field["name"]
        if match is None:
            rn.resolve(field["type"])
            if "default" not in field:
                yield f"{where}: new field without a default"
            continue
        yield from _check(field["type"], match["type"], rn, wn, where, seen)


def _any_ok(reader: Any, writer: Any, rn: _Names, wn: _Names, seen: set[tuple[str, str]]) -> bool:
    branches = reader if isinstance(reader, list) else [reader]
    return any(not list(_check(b, writer, rn, wn, "", seen)) for b in branches)


def _roundtrip(reader: dict[str, Any], writer: dict[str, Any]) -> str | None:
    """Write generated samples with ``writer``, read them with ``reader``; the error if any."""
    try:
        for sample in generate_many(writer, SAMPLES):
            buf = io.BytesIO()
            fastavro.schemaless_writer(buf, writer, sample)
            buf.seek(0)
            fastavro.schemaless_reader(buf, writer, reader)
    except (
        ValueError,
        TypeError,
        KeyError,
        EOFError,
        fastavro.read.SchemaResolutionError,
    ) as exc:
        return f"fastavro schema resolution failed: {exc}"
    return None


def history_versions(directory: Path | None = None) -> dict[str, dict[str, dict[str, Any]]]:
    """``{version: {record short name: parsed schema}}`` from ``schemas/history/*/``."""
    root = (directory or schema_dir()) / "history"
    versions: dict[str, dict[str, dict[str, Any]]] = {}
    if not root.is_dir():
        return versions
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        schemas = {}
        for path in sorted(folder.glob("*.avsc")):
            parsed = _load(path)
            schemas[short_name(parsed["name"])] = parsed
        versions[folder.name] = schemas
    return versions


def check(directory: Path | None = None) -> list[Incompatibility]:
    """Every incompatibility of the current schemas with every historical version."""
    registry = SchemaRegistry(directory)
    problems: list[Incompatibility] = []
    for version, schemas in history_versions(directory).items():
        for name, old in sorted(schemas.items()):
            new = registry.current.get(name)
            if new is None:
                problems.append(Incompatibility(name, version, "record type was removed"))
                continue
            found = can_read(new, old)
            if not found:
                error = _roundtrip(new, old)
                found = [error] if error else []
            problems += [Incompatibility(name, version, p) for p in found]
    return problems


# -- docs/topics.md -----------------------------------------------------------------------

HISTORY_SECTION = """\
## Event history: archive, replay, restore

The worker's **archiver** (`agents/archiver.py`) copies every topic above, every dead-letter
topic and the worker's table changelogs into the object store as Avro object container files:

    archive/<topic>/<partition>/<yyyy>/<mm>/<dd>/<start-offset>-<end-offset>.avro

(offsets zero-padded to 20 digits, both inclusive; the date is the first record's timestamp).
Each record is a `tritontube.archive.ArchivedRecord` envelope: topic, partition, offset,
timestamp, key bytes, value bytes, headers. The value bytes are the original message (Avro
single-object encoding), so a replay is byte-exact and any Avro tool reads the files
(`fastavro.reader`, `avro-tools tojson`); decode the values with the `.avsc` files as in
`examples/decode_with_avsc.py`.

A partition's buffer is written when it holds `archive.flush_records` records or
`archive.flush_bytes` bytes, or when its oldest record waited `archive.flush_interval_seconds`
(default 5 s). The archiver commits a partition's offset only after its file is stored, and
resumes after the largest archived offset it finds, so every offset is archived exactly once.

**Not crash recovery.** The embedded broker is durable (Tansu keeps its log in the object
store, written before it acknowledges), so an acknowledged event survives a `kill -9` of any
process and a restart of `make dev`; the stack no longer restores the archive on start
(`archive.restore_on_start`, off by default). The archive is history beyond the topics'
retention and the source of replays; `tritontube archive restore` still refills a broker that
lost its log (empty partitions only).

**Checkpoints.** Each partition flushes on its own clock, so an event can be archived while
the table change it caused is not yet. The archiver therefore also keeps
`archive/_checkpoints/<app_id>.json`: the worker group's committed offsets, read first, and
written only once every partition is archived up to the ends read after them (Faust flushes
its changelog and forwarded events before it commits, so everything the committed events
produced is then archived). The restore commits the worker's group there, never past what
it restored, and the worker processes the events after it again, as after a worker restart on
a real Kafka cluster; its folds ignore events they have already applied.

**Replay.** `tritontube replay` reads the live topics (by offset or record timestamp) or the
archive (by time range) and writes byte-exact copies into a new topic (`--to-topic`),
positions a consumer group (`--to-group`, a dry run unless `--execute`), or rebuilds the
video-state table and a fresh search index (`--rebuild`). `tritontube archive list|restore`
inspects or restores the archive.
"""


def _type_name(schema: Any) -> str:
    if isinstance(schema, list):
        return " \\| ".join(_type_name(s) for s in schema)
    if isinstance(schema, dict):
        if "logicalType" in schema:
            return str(schema["logicalType"])
        t = schema["type"]
        if t == "array":
            return f"array<{_type_name(schema['items'])}>"
        if t == "map":
            return f"map<{_type_name(schema['values'])}>"
        if t in ("record", "enum", "fixed"):
            return short_name(str(schema["name"]))
        return _type_name(t)
    return short_name(str(schema))


def _record_section(name: str, raw: dict[str, Any]) -> list[str]:
    lines = [f"#### {name}", "", str(raw.get("doc", "")), "", "| field | type | doc |"]
    lines.append("|---|---|---|")
    for field in raw["fields"]:
        default = f" (default `{json.dumps(field['default'])}`)" if "default" in field else ""
        doc = str(field.get("doc", "")).replace("|", "\\|")
        lines.append(f"| `{field['name']}` | {_type_name(field['type'])} | {doc}{default} |")
    return [*lines, ""]


def render_topics_doc(directory: Path | None = None) -> str:
    """The text of ``docs/topics.md``."""
    root = directory or schema_dir()
    raw = {
        short_name(json.loads(p.read_text())["name"]): json.loads(p.read_text())
        for p in sorted(root.glob("*.avsc"))
    }
    out = [
        "# Topics",
        "",
        "Generated from `streams/catalogue.py` and `schemas/*.avsc` by",
        "`tritontube schemas doc > docs/topics.md`; a contract test keeps it in sync.",
        "Every message is Avro single-object encoding (`C3 01`, the writer schema's",
        "CRC-64-AVRO fingerprint, the body); every topic has a dead-letter topic `<topic>.dlq`",
        "of `DeadLetter` records.",
        "",
        "| topic | key | records | policy | producers | consumers |",
        "|---|---|---|---|---|---|",
    ]
    for spec in catalogue.TOPICS:
        policy = "compacted" if spec.compacted else "delete"
        if spec.retention_ms == -1:
            policy += ", kept forever"
        elif spec.retention_ms:
            policy += f", {spec.retention_ms // catalogue.DAY_MS} days"
        out.append(
            f"| `{spec.name}` | {spec.key} | {', '.join(spec.records)} | {policy} | "
            f"{spec.producers} | {spec.consumers} |"
        )
    out += ["", "## Records", ""]
    for spec in catalogue.TOPICS:
        out += [f"### `{spec.name}` (key: {spec.key})", ""]
        for record in spec.records:
            out += _record_section(record, raw[record])
    out += ["### Nested and other records", ""]
    listed = {r for spec in catalogue.TOPICS for r in spec.records}
    for name in sorted(set(raw) - listed):
        out += _record_section(name, raw[name])
    return "\n".join(out) + "\n" + HISTORY_SECTION
