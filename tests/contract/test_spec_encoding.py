"""Single-object encoding exactly as the Avro specification writes it, checked against
independent implementations: the specification's own fingerprint example, messages written by
Apache Avro Java (``golden/spec/*.java.bin``, see ``golden/spec/EncodeGolden.java``), Apache's
``avro`` Python package where its canonical form agrees with the specification's, and a run of
Avro Java's ``BinaryMessageDecoder`` over messages our codec writes.

The pre-issue-21 messages (``golden/*.v1.bin``, fingerprint bytes reversed) stay readable, and
no schema's reversed fingerprint can be mistaken for another's.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import avro.io
import avro.schema
import fastavro
import pytest

from java_avro import java_decode
from tritontube.streams.codec import (
    HEADER_SIZE,
    MAGIC,
    AvroCodec,
    CodecError,
    SchemaRegistry,
    ambiguous_fingerprints,
    canonical_fingerprint,
    schema_dir,
    schema_fingerprint,
)

GOLDEN = Path(__file__).parent / "golden"
SPEC = GOLDEN / "spec"
SPEC_INT_FINGERPRINT = "8f5c393f1ad57572"  # the specification's example, "int"
#: Goldens written before issue 21 (fingerprint reversed), listed once: new ones are spec order.
PRE_ISSUE_21 = [
    GOLDEN / line
    for line in (GOLDEN / "pre-issue-21.txt").read_text().splitlines()
    if line and not line.startswith("#")
]
REGEN = "write golden/spec/<Name>.avro.json and run golden/spec/EncodeGolden.java (see its header)"


@pytest.fixture(scope="module")
def registry() -> SchemaRegistry:
    return SchemaRegistry()


@pytest.fixture(scope="module")
def codec(registry: SchemaRegistry) -> AvroCodec:
    return AvroCodec(registry)


def expected_value(registry: SchemaRegistry, name: str) -> dict[str, Any]:
    """The value Avro Java encoded, read from its Avro-JSON input file by fastavro."""
    text = json.dumps(json.loads((SPEC / f"{name}.avro.json").read_text()))
    (value,) = list(fastavro.json_reader(io.StringIO(text), registry.schema(name)))
    assert isinstance(value, dict)
    return value


def java_goldens() -> list[str]:
    return sorted(p.name.split(".")[0] for p in SPEC.glob("*.java.bin") if p.stem != "int.java")


# -- the specification's example ----------------------------------------------------------


def test_the_specification_fingerprint_example_for_int() -> None:
    want = bytes.fromhex(SPEC_INT_FINGERPRINT)
    assert canonical_fingerprint('"int"') == want
    assert avro.schema.parse('"int"').fingerprint("CRC-64-AVRO") == want  # Apache, Python
    java = (SPEC / "int.java.bin").read_bytes()  # Apache, Java: 42 as a single object
    assert java[:HEADER_SIZE] == MAGIC + want
    body = io.BytesIO()
    fastavro.schemaless_writer(body, "int", 42)
    assert java[HEADER_SIZE:] == body.getvalue() == b"\x54"


# -- Apache Avro Java wrote these -----------------------------------------------------------


def test_every_current_record_has_a_java_golden(registry: SchemaRegistry) -> None:
    missing = set(registry.current) - set(java_goldens())
    assert not missing, f"no golden/spec/<Name>.java.bin for {sorted(missing)}: {REGEN}"


@pytest.mark.parametrize("name", java_goldens())
def test_avro_java_messages_decode_and_our_encoder_writes_the_same_bytes(
    codec: AvroCodec, registry: SchemaRegistry, name: str
) -> None:
    java = (SPEC / f"{name}.java.bin").read_bytes()
    assert java[:HEADER_SIZE] == MAGIC + registry.fingerprint_of(name)
    value = expected_value(registry, name)
    decoded = codec.decode(java)
    assert (decoded.name, decoded.value, decoded.legacy) == (name, value, False)
    assert codec.encode(name, value) == java


# -- Apache's avro Python package, where its canonical form is the specification's ----------


def apache_python_schemas(directory: Path) -> dict[str, avro.schema.Schema]:
    """Every .avsc of a folder parsed by Apache's avro package (named types across files)."""
    names = avro.schema.Names()
    pending = sorted(directory.glob("*.avsc"))
    parsed: dict[str, avro.schema.Schema] = {}
    while pending:
        rest = []
        for path in pending:
            known = dict(names.names)
            try:
                schema = avro.schema.make_avsc_object(json.loads(path.read_text()), names)
            except avro.errors.SchemaParseException:
                # It references a type of a file not parsed yet; a failed parse leaves the
                # names it got to registered, which would refuse the retry.
                names.names.clear()
                names.names.update(known)
                rest.append(path)
                continue
            parsed[path.name.removesuffix(".avsc").rsplit(".", 1)[-1]] = schema
        assert len(rest) < len(pending), rest
        pending = rest
    return parsed


def test_apache_python_agrees_where_its_canonical_form_does(
    codec: AvroCodec, registry: SchemaRegistry
) -> None:
    # avro 1.12 keeps {"type": "long"} for logical types, which the specification's
    # canonical form reduces to "long": those schemas get other fingerprints there.
    from fastavro.schema import to_parsing_canonical_form

    compared = []
    for name, schema in apache_python_schemas(schema_dir()).items():
        if schema.canonical_form != to_parsing_canonical_form(registry.schema(name)):
            continue
        fp = schema.fingerprint("CRC-64-AVRO")
        assert fp == registry.fingerprint_of(name)
        body = io.BytesIO()
        value = expected_value(registry, name)
        avro.io.DatumWriter(schema).write(value, avro.io.BinaryEncoder(body))
        assert codec.encode(name, value) == MAGIC + fp + body.getvalue()
        compared.append(name)
    assert {"Rendition", "RenditionProgress", "RenditionState"} <= set(compared)


# -- legacy byte order ----------------------------------------------------------------------


@pytest.mark.parametrize("golden", PRE_ISSUE_21, ids=lambda p: p.stem)
def test_pre_issue_21_messages_decode_as_legacy_and_convert_to_spec_order(
    codec: AvroCodec, registry: SchemaRegistry, golden: Path
) -> None:
    old = golden.read_bytes()
    decoded = codec.decode(old)
    assert decoded.legacy
    assert old[2:HEADER_SIZE] not in registry.by_fingerprint
    fixed = registry.to_spec_order(old)
    assert fixed is not None
    assert fixed[:2] == MAGIC and fixed[2:HEADER_SIZE] == old[2:HEADER_SIZE][::-1]
    assert fixed[HEADER_SIZE:] == old[HEADER_SIZE:]
    again = codec.decode(fixed)
    assert (again.name, again.value, again.legacy) == (decoded.name, decoded.value, False)
    assert registry.to_spec_order(fixed) == fixed  # spec order is left alone


@pytest.mark.parametrize(
    "data", [None, b"", b"\xc3", b"plain text value", b'{"json": 1}', b"\xc3\x01" + b"\x00" * 9]
)
def test_to_spec_order_leaves_everything_else_untouched(
    registry: SchemaRegistry, data: bytes | None
) -> None:
    assert registry.to_spec_order(data) == data


def test_no_schema_s_reversed_fingerprint_is_another_s(registry: SchemaRegistry) -> None:
    fps = set(registry.by_fingerprint)
    assert len(fps) >= len(registry.current)
    assert ambiguous_fingerprints(registry.by_fingerprint) == []
    assert not {fp[::-1] for fp in fps if fp != fp[::-1]} & fps


def test_a_clash_between_the_byte_orders_is_found() -> None:
    a, b, palindrome = bytes(range(8)), bytes(range(8))[::-1], b"\x01\x02\x03\x04\x04\x03\x02\x01"
    assert ambiguous_fingerprints({a: "A", b: "B", palindrome: "P"}) == [(a, b)]
    assert ambiguous_fingerprints({a: "A", palindrome: "P"}) == []


def test_the_registry_refuses_schema_folders_whose_byte_orders_clash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No two real schemas clash (2^-64 per pair), so make the fingerprint function clash.
    import tritontube.streams.codec as codec_module

    for path in schema_dir().glob("*.avsc"):
        (tmp_path / path.name).write_text(path.read_text())
    forced = {
        "tritontube.events.WatchEvent": b"\x11" * 4 + b"\x22" * 4,
        "tritontube.events.VideoStats": b"\x22" * 4 + b"\x11" * 4,  # the same, reversed
    }

    def clashing(parsed: Any) -> bytes:
        return forced.get(parsed["name"]) or schema_fingerprint(parsed)

    monkeypatch.setattr(codec_module, "schema_fingerprint", clashing)
    with pytest.raises(CodecError, match="reversed fingerprint"):
        SchemaRegistry(tmp_path)


# -- Avro Java decodes what we write --------------------------------------------------------


def test_avro_java_decodes_every_message_our_codec_writes(
    codec: AvroCodec, registry: SchemaRegistry
) -> None:
    ours = [(f"new/{n}", codec.encode(n, expected_value(registry, n))) for n in java_goldens()]
    legacy = [(f"old/{p.stem}", p.read_bytes()) for p in PRE_ISSUE_21]
    bad = [("bad/garbage", b"not avro"), ("bad/unknown", MAGIC + b"\x00" * 8 + b"\x02")]
    messages = [*ours, *legacy, *bad]  # one JVM run: it is the slow part
    results, summary = java_decode(schema_dir(), messages)
    assert [r["label"] for r in results] == [label for label, _ in messages]
    assert [r["label"] for r in results if "error" in r] == [label for label, _ in bad]
    assert (
        f"decoded {len(ours)} (spec byte order), {len(legacy)} (legacy byte order), failed 2"
        in summary
    )
    for result, (label, data) in zip(results, [*ours, *legacy], strict=False):
        assert result["legacy"] == label.startswith("old/")
        mine = codec.decode(data)
        assert result["record"] == f"tritontube.events.{mine.name}"
        text = json.dumps(result["value"])
        (theirs,) = list(fastavro.json_reader(io.StringIO(text), registry.schema(mine.name)))
        assert theirs == mine.value, label
