"""Schemas as a contract: backward-transitive compatibility, and the topic documentation.

**Every file.** :func:`check` covers every ``.avsc`` in ``schemas/`` and ``schemas/history/*/``
by globbing, so a new file is checked without a code change: it must parse (named types resolve
from the other files of its folder), be named ``<namespace>.<Name>.avsc`` by its full name, be in
the ``tritontube.events`` namespace, document itself and every field, and no schema's
fingerprint may equal another's reversed (``streams.codec``: the pre-issue-21 byte order).

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
from tritontube.streams.codec import (
    NAMESPACE,
    CodecError,
    SchemaRegistry,
    _load,
    schema_dir,
    schema_fingerprint,
    short_name,
)

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
    """A current record that cannot read a history version's data, or (``in_file``) a problem
    of one schema file itself, ``record`` then being the file's name."""

    record: str
    version: str
    problem: str
    in_file: bool = False

    def __str__(self) -> str:
        if self.in_file:
            return f"{self.record} ({self.version}): {self.problem}"
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


def schema_files(directory: Path | None = None) -> list[Path]:
    """Every ``.avsc`` :func:`check` covers: the current ones and every history version's."""
    root = directory or schema_dir()
    return sorted(root.glob("*.avsc")) + sorted(root.glob("history/*/*.avsc"))


def lint(directory: Path | None = None) -> list[Incompatibility]:
    """Problems of the files themselves (see the module doc), each named by file."""
    root = directory or schema_dir()
    problems: list[Incompatibility] = []
    for path in schema_files(root):
        version = "current" if path.parent == root else path.parent.name
        try:
            raw = json.loads(path.read_text())
            parsed = _load(path)
        except (ValueError, CodecError) as exc:
            problems.append(
                Incompatibility(path.name, version, f"does not parse: {exc}", in_file=True)
            )
            continue
        if f"{parsed['name']}.avsc" != path.name:
            problems.append(Incompatibility(path.name, version, f"names {parsed['name']}", True))
        if not str(parsed["name"]).startswith(f"{NAMESPACE}."):
            problems.append(Incompatibility(path.name, version, f"not in {NAMESPACE}", True))
        if version == "current":
            undocumented = [f["name"] for f in raw.get("fields", []) if not f.get("doc")]
            if not raw.get("doc") or undocumented:
                what = ", ".join(undocumented) or "the record"
                problems.append(Incompatibility(path.name, version, f"no doc: {what}", True))
    if not problems:
        try:
            SchemaRegistry(root)
        except CodecError as exc:  # e.g. a fingerprint clash between the byte orders
            problems.append(Incompatibility(str(root), "current", str(exc), in_file=True))
    return problems


def check(directory: Path | None = None) -> list[Incompatibility]:
    """Every problem of every schema file, and every incompatibility of the current schemas
    with every historical version."""
    problems = lint(directory)
    if problems:
        return problems
    registry = SchemaRegistry(directory)
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

OUTSIDE_SECTION = """\
## Reading the topics from outside

Everything an analytics consumer needs is the `.avsc` files (`src/tritontube/schemas/`,
`history/` included) and a Kafka client. Three consumers that import nothing from TritonTube:
`examples/analytics_consumer.py` (aiokafka + fastavro), `examples/decode_with_avsc.py` (fastavro)
and `examples/DecodeWithAvsc.java` (Apache Avro Java).

### Keys

Every key is the UTF-8 text of the field named in the key column above (`video_id`, `user_id`
on `watch-events-by-user`, `owner` on `video-state-by-owner`): plain bytes, not Avro, no length
prefix, no schema-registry framing. A dead-letter topic keeps the key of the message it holds.
The worker's table changelogs (`<app_id>-<table>-changelog`, internal to the worker, archived
with the topics) have UTF-8 text keys too: the video id, `<video_id>/<user_id>` for watch
sessions, the user id for watch history, the owner for `owner_videos`, `p<partition>` for the
trending top list.

### Values: Avro single-object encoding

Every value on every topic above and its dead-letter topic is one Avro message in the
[single-object encoding](https://avro.apache.org/docs/1.12.0/specification/#single-object-encoding)
exactly as the specification writes it:

| bytes | content |
|---|---|
| 0-1 | `C3 01` |
| 2-9 | the writer schema's CRC-64-AVRO fingerprint (of its Parsing Canonical Form), little-endian |
| 10- | the Avro binary encoding of the record |

Any conforming decoder finds the writer schema among the `.avsc` files by that fingerprint:
Apache Avro Java's `BinaryMessageDecoder` (with every version added by `addSchema`), fastavro
(`fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO")` is the hex of bytes 2-9, in
order), or your own lookup. The table changelogs hold Avro messages the same way, one record
type per table (`video_state`: `VideoState`; `watch_sessions`: `WatchSession`;
`video_analytics`: `VideoAnalytics`; `trending_top`: `PartitionTrending`; `watch_history`:
`UserHistory`; `search_sources`: `SearchSource`; `owner_videos`: `OwnerVideos`). Changelogs
written before December 2026 hold JSON objects for all but `video_state` (a value starting with
`{`); the worker still reads them. The fingerprints, as they appear in bytes 2-9:

FINGERPRINT_TABLE
Checked against independent implementations (`tests/contract/test_spec_encoding.py`): the
specification's example (`"int"` → `8f5c393f1ad57572`), messages written by Apache Avro Java,
and Avro Java decoding what the platform writes, on every topic and in the archive.

### Messages written before issue 21: reversed fingerprints

Until issue 21 TritonTube wrote bytes 2-9 in the reverse order (big-endian), so a conforming
decoder finds no schema for them (Avro Java: `MissingSchemaException`). Such messages remain
wherever they were written then: the archive files, the topics of a Kafka cluster, the table
changelogs. To tell them apart, look bytes 2-9 up as they are; if no schema has
that fingerprint, reverse the 8 bytes and look again — a match is a message written before the
change. No schema's reversed fingerprint is another schema's fingerprint (the table above;
`tritontube schemas check` fails if a new schema ever made them clash), so the two lookups can
never name different schemas. All three examples do exactly this and report such messages as
`legacy`. For example, `VideoStats` now starts `c3 01 b4 ca 06 f1 ae a5 13 1f`; before the change
it started `c3 01 1f 13 a5 ae f1 06 ca b4`.

TritonTube itself reads both orders everywhere (agents, replay, rebuild). `tritontube archive
restore` (and so `make dev` on start) and `tritontube replay --to-topic` put the 8 bytes of such
messages in the specification's order on the way back into the broker (nothing else changes),
so restored and replayed topics are fully conforming; the archive keeps the bytes as written.

### Reading "to the end" on the embedded broker

The embedded development broker (Tansu 0.6, `make dev`) answers ListOffsets LATEST with the
base offset of the newest stored batch + 1: wrong whenever that batch held more than one record.
Every client's "end offset" / "high watermark" query goes through it — librdkafka's
`get_watermark_offsets` and `query_watermark_offsets`, aiokafka's `end_offsets` and
`seek_to_end`, `auto.offset.reset=latest`, kcat's `-e`. Measured with librdkafka 2.16 and
aiokafka 0.14: 500 records sent in batches to 3 partitions that then held 148, 213 and 144
records; both clients answered high watermarks 148, 1 and 1. The records are all there and
Fetch returns them; only the reported end is wrong. So a consumer that reads "until the end
offset" silently stops early, and one that starts "at the end" starts too early. Read safely:

* **until idle**: consume from the beginning (or your committed offset) and stop after a few
  seconds without a message (`examples/analytics_consumer.py --idle-exit 5`);
* **from the archive**: the archive files are complete up to the archiver's flush window (see
  below) and list their offsets in their names;
* TritonTube's own consumers correct the answer with a Fetch (`streams/broker_compat.py`).

Apache Kafka answers correctly; none of this applies there.

### Clients tested

CLIENT_TABLE

No Java Kafka client is tested: none can be installed from the package registries this project
builds with.
"""

HISTORY_SECTION = """\
## Event history: archive, replay, restore

The **archiver** (`tritontube archiver`, `agents/archiver.py`; its own process and consumer
group, so run one or several) copies every topic above, every dead-letter topic and the
worker's table changelogs into the object store as Avro object container files:

    archive/<topic>/<partition>/<yyyy>/<mm>/<dd>/<start-offset>-<end-offset>.avro

(offsets zero-padded to 20 digits, both inclusive; the date is the first record's timestamp).
Each record is a `tritontube.archive.ArchivedRecord` envelope: topic, partition, offset,
timestamp, key bytes, value bytes, headers. The value bytes are the original message as it was
written (Avro single-object encoding; before issue 21 with the fingerprint reversed, see above),
and any Avro tool reads the files (`fastavro.reader`, `avro-tools tojson`); decode the values
with the `.avsc` files as in `examples/decode_with_avsc.py`.

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
written (by one member of the archiver group, the owner of `uploads` partition 0) only once the
archiver group's committed offsets show every partition archived up to the ends read after
them (Faust flushes its changelog and forwarded events before it commits, so everything the
committed events produced is then archived). The restore commits the worker's group there,
never past what it restored, and the workers process the events after it again, as after a
restart on a real Kafka cluster; their folds ignore events they have already applied.

**Replay.** `tritontube replay` reads the live topics (by offset or record timestamp) or the
archive (by time range) and copies the records into a new topic (`--to-topic`: same partition,
key, headers, timestamp and value, a pre-issue-21 fingerprint put in spec order), positions a
consumer group (`--to-group`), or rebuilds the video-state table and a fresh search index
(`--rebuild`; `--snapshot FILE` also writes the rebuilt states as JSON). **Every mode is a dry
run unless `--execute`**: it reads and counts the selection and says what it would write, but
creates no topic, commits no offset and writes no index (only the `--snapshot` file, which you
asked for by name). `tritontube archive list` shows the archive; `tritontube archive restore`
is a dry run too until `--execute`, and then produces the archive into empty broker topics.
"""


#: (client, version, result, where it is exercised) for the "Clients tested" table.
CLIENTS: tuple[tuple[str, str, str, str], ...] = (
    (
        "librdkafka via `confluent-kafka` (PyPI)",
        "2.16.1 (bundles librdkafka 2.16.0)",
        "reads every topic",
        "`tests/integration/test_archive_replay.py`",
    ),
    (
        "aiokafka",
        "0.14.0",
        "reads every topic",
        "`examples/analytics_consumer.py`, `tests/integration/test_archive_replay.py`",
    ),
    (
        "Apache Avro Java (Debian `libavro-java`)",
        "1.8.2 on OpenJDK 17",
        "decodes every value on every topic and in the archive",
        "`examples/DecodeWithAvsc.java`, `tests/contract/test_spec_encoding.py`",
    ),
    ("fastavro", "1.13", "decodes every value", "`examples/decode_with_avsc.py`"),
    (
        "Apache `avro` for Python",
        "1.12.2",
        "agrees where its canonical form does; for `timestamp-millis` fields it keeps "
        '`{"type":"long"}`, which the specification reduces to `"long"`, so its fingerprints '
        "of those schemas differ: do not compute fingerprints with it",
        "`tests/contract/test_spec_encoding.py`",
    ),
    (
        "kcat with librdkafka 2.0.2 (Debian 12)",
        "1.7.1 / 2.0.2",
        'cannot connect: `kcat -L` fails with "ApiVersionRequest failed: Local: Read '
        'underflow"; use librdkafka 2.x from `confluent-kafka`',
        "by hand, not in the suite",
    ),
)


def client_table() -> str:
    lines = ["| client | version | result | where |", "|---|---|---|---|"]
    lines += [f"| {' | '.join(row)} |" for row in CLIENTS]
    return "\n".join(lines) + "\n"


def fingerprint_table(directory: Path | None = None) -> str:
    """Every schema's fingerprint bytes, in spec order and as written before issue 21, with
    the versions (``current``, ``history/<v>``) that have that exact schema."""
    root = directory or schema_dir()
    rows: dict[bytes, tuple[str, list[str]]] = {}
    for path in schema_files(root):
        fp = schema_fingerprint(_load(path))
        version = "current" if path.parent == root else path.parent.name
        name = short_name(path.name.removesuffix(".avsc"))
        rows.setdefault(fp, (name, []))[1].append(version)
    lines = ["| record | versions | bytes 2-9 | before issue 21 |", "|---|---|---|---|"]
    for fp, (name, versions) in sorted(rows.items(), key=lambda kv: (kv[1][0], kv[1][1])):
        lines.append(
            f"| {name} | {', '.join(versions)} | `{fp.hex(' ')}` | `{fp[::-1].hex(' ')}` |"
        )
    return "\n".join(lines) + "\n\n"


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
        "CRC-64-AVRO fingerprint in little-endian order, the body; see below); every topic has a",
        "dead-letter topic `<topic>.dlq` of `DeadLetter` records. Keys are UTF-8 text.",
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
    outside = OUTSIDE_SECTION.replace("FINGERPRINT_TABLE\n", fingerprint_table(root))
    out += ["", outside.replace("CLIENT_TABLE\n", client_table())]
    out += ["## Records", ""]
    for spec in catalogue.TOPICS:
        out += [f"### `{spec.name}` (key: {spec.key})", ""]
        for record in spec.records:
            out += _record_section(record, raw[record])
    out += ["### Nested records and table values", ""]
    listed = {r for spec in catalogue.TOPICS for r in spec.records}
    for name in sorted(set(raw) - listed):
        out += _record_section(name, raw[name])
    return "\n".join(out) + "\n" + HISTORY_SECTION
