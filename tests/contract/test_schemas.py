"""Schemas as a contract: every .avsc parses, golden payloads of every record still decode,
and a consumer with only fastavro and the .avsc files decodes what the app encodes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tritontube.streams import catalogue
from tritontube.streams.codec import AvroCodec, CodecError, SchemaRegistry, schema_dir
from tritontube.streams.records import RECORD_TYPES

GOLDEN = Path(__file__).parent / "golden"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def codec() -> AvroCodec:
    return AvroCodec(SchemaRegistry())


def _normalise(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normalise(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def test_every_schema_file_parses_and_is_named_by_its_full_name() -> None:
    files = sorted(schema_dir().glob("*.avsc"))
    assert files
    registry = SchemaRegistry()
    for path in files:
        schema = registry.schema(path.stem.rsplit(".", 1)[-1])
        assert f"{schema['name']}.avsc" == path.name


def test_every_record_in_the_catalogue_has_a_schema_and_a_domain_type() -> None:
    registry = SchemaRegistry()
    records = {r for spec in catalogue.TOPICS for r in spec.records} | {"DeadLetter"}
    for record in records:
        registry.schema(record)
        assert record in RECORD_TYPES


def test_every_field_is_documented() -> None:
    for path in schema_dir().glob("*.avsc"):
        schema = json.loads(path.read_text())
        assert schema.get("doc"), path.name
        for field in schema["fields"]:
            assert field.get("doc"), f"{path.name}: {field['name']}"


@pytest.mark.parametrize("golden", sorted(GOLDEN.glob("*.bin")), ids=lambda p: p.stem)
def test_golden_payloads_still_decode(codec: AvroCodec, golden: Path) -> None:
    expected = json.loads(golden.with_suffix(".json").read_text())
    decoded = codec.decode(golden.read_bytes())
    assert decoded.name == golden.name.split(".")[0]
    # Fields added later carry defaults; every field the old payload had must survive.
    current = _normalise(decoded.value)
    assert {k: current[k] for k in expected} == expected


def test_every_current_record_has_a_golden_payload() -> None:
    names = {p.name.split(".")[0] for p in GOLDEN.glob("*.bin")}
    assert set(SchemaRegistry().current) <= names


@pytest.mark.parametrize(
    "data",
    [b"", b"\xc3", b"garbage-garbage", b"\xc3\x01" + b"\x00" * 8 + b"x", b"\xc3\x01" + b"\xff" * 9],
    ids=["empty", "short", "no-magic", "unknown-fingerprint", "truncated"],
)
def test_undecodable_bytes_raise_codec_error(codec: AvroCodec, data: bytes) -> None:
    with pytest.raises(CodecError):
        codec.decode(data)


def test_truncated_body_of_a_known_schema_raises_codec_error(codec: AvroCodec) -> None:
    good = (GOLDEN / "WatchEvent.v1.bin").read_bytes()
    with pytest.raises(CodecError):
        codec.decode(good[:14])


def test_encoding_a_record_that_does_not_fit_its_schema_raises(codec: AvroCodec) -> None:
    with pytest.raises(CodecError):
        codec.encode("WatchEvent", {"event_id": "e"})


def test_a_separate_script_decodes_app_messages_with_only_the_avsc_files(
    codec: AvroCodec, tmp_path: Path
) -> None:
    """examples/decode_with_avsc.py reads both byte orders and counts what it cannot read."""
    legacy = [  # written before issue 21, listed in golden/pre-issue-21.txt
        GOLDEN / line
        for line in (GOLDEN / "pre-issue-21.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    spec = [p for p in sorted((GOLDEN / "spec").glob("*.java.bin")) if p.stem != "int.java"]
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"\xc3\x01" + b"\x00" * 8 + b"not a known schema")
    files = [*legacy, *spec, garbage]
    result = subprocess.run(
        [
            sys.executable,
            "-I",
            str(ROOT / "examples" / "decode_with_avsc.py"),
            str(schema_dir()),
            *map(str, files),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 1, result.stderr  # one message failed
    assert result.stderr.strip() == (
        f"decoded {len(spec)} (spec byte order), {len(legacy)} (legacy byte order), failed 1"
    )
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == len(files)
    assert "error" in lines[-1] and garbage.name in lines[-1]["message"]
    for line, path in zip(lines, files[:-1], strict=False):
        assert line["legacy"] == (path in legacy)
        assert line["record"].rsplit(".", 1)[-1] == path.name.split(".")[0]
    by_record = {line["record"].rsplit(".", 1)[-1]: line["value"] for line in lines[: len(legacy)]}
    assert by_record["WatchEvent"]["user_id"] == "bob"
    assert by_record["VideoState"]["status"] == "READY"
