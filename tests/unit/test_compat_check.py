"""Backward-transitive schema compatibility: the rules, and the repository's own schemas."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tritontube.cli import main
from tritontube.streams import compat_check
from tritontube.streams.codec import schema_dir

BASE: dict[str, Any] = {
    "type": "record",
    "name": "Thing",
    "namespace": "tritontube.events",
    "doc": "x",
    "fields": [
        {"name": "id", "type": "string", "doc": "x"},
        {"name": "count", "type": "int", "doc": "x"},
        {"name": "note", "type": ["null", "string"], "default": None, "doc": "x"},
        {"name": "tags", "type": {"type": "array", "items": "string"}, "doc": "x"},
    ],
}


def changed(**fields: Any) -> dict[str, Any]:
    new = copy.deepcopy(BASE)
    for f in new["fields"]:
        if f["name"] in fields:
            f.update(fields[f["name"]])
    return new


def test_identical_schemas_are_compatible() -> None:
    assert compat_check.can_read(BASE, BASE) == []


def test_a_new_field_needs_a_default() -> None:
    without = copy.deepcopy(BASE)
    without["fields"].append({"name": "extra", "type": "long", "doc": "x"})
    assert compat_check.can_read(without, BASE) == ["extra: new field without a default"]
    with_default = copy.deepcopy(without)
    with_default["fields"][-1]["default"] = 0
    assert compat_check.can_read(with_default, BASE) == []


def test_removing_a_field_is_fine_for_a_reader() -> None:
    fewer = copy.deepcopy(BASE)
    fewer["fields"] = fewer["fields"][:2]
    assert compat_check.can_read(fewer, BASE) == []


def test_type_changes_are_caught_but_promotions_allowed() -> None:
    assert compat_check.can_read(changed(count={"type": "string"}), BASE) == [
        "count: type changed from int to string"
    ]
    assert compat_check.can_read(changed(count={"type": "long"}), BASE) == []
    # ... but not the other way round: a long does not fit an int.
    assert compat_check.can_read(BASE, changed(count={"type": "long"})) != []
    assert compat_check.can_read(changed(tags={"type": {"type": "array", "items": "int"}}), BASE)


def test_unions_must_cover_every_writer_branch() -> None:
    narrower = changed(note={"type": "string", "default": ""})
    assert compat_check.can_read(narrower, BASE) == [
        "note: writer union branch 0 (null) unreadable"
    ]
    wider = changed(note={"type": ["null", "string", "long"]})
    assert compat_check.can_read(wider, BASE) == []
    assert compat_check.can_read(changed(count={"type": ["null", "int"]}), BASE) == []


def test_renaming_a_record_or_a_field_without_alias_is_caught() -> None:
    renamed = copy.deepcopy(BASE)
    renamed["name"] = "Other"
    assert compat_check.can_read(renamed, BASE)
    renamed["aliases"] = ["tritontube.events.Thing"]
    assert compat_check.can_read(renamed, BASE) == []
    field = changed(count={"name": "total"})
    assert compat_check.can_read(field, BASE) == ["total: new field without a default"]
    field["fields"][1]["aliases"] = ["count"]
    assert compat_check.can_read(field, BASE) == []


def test_the_repository_schemas_are_backward_transitive_compatible() -> None:
    assert "v1" in compat_check.history_versions()
    assert compat_check.check() == []


def _schemas_copy(tmp_path: Path) -> Path:
    root = tmp_path / "schemas"
    shutil.copytree(schema_dir(), root, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    return root


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda s: s["fields"].append({"name": "region", "type": "string", "doc": "x"}),
            "region: new field without a default",
        ),
        (
            lambda s: next(f for f in s["fields"] if f["name"] == "position_seconds").update(
                type="string"
            ),
            "position_seconds: type changed from double to string",
        ),
    ],
    ids=["new-field-without-default", "type-change"],
)
def test_an_incompatible_edit_of_a_real_schema_is_caught(
    tmp_path: Path, change: Any, expected: str
) -> None:
    root = _schemas_copy(tmp_path)
    path = root / "tritontube.events.WatchEvent.avsc"
    schema = json.loads(path.read_text())
    change(schema)
    path.write_text(json.dumps(schema))
    problems = [str(p) for p in compat_check.check(root)]
    assert problems == [f"WatchEvent: cannot read v1 data: {expected}"]


def test_removing_a_record_type_is_caught(tmp_path: Path) -> None:
    root = _schemas_copy(tmp_path)
    (root / "tritontube.events.WatchEvent.avsc").unlink()
    assert [p.problem for p in compat_check.check(root)] == ["record type was removed"]


def test_the_cli_command_passes_on_the_repository(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schemas", "check"]) == 0
    files = len(list(schema_dir().glob("*.avsc")) + list(schema_dir().glob("history/*/*.avsc")))
    assert f"0 problems in {files} schema files (history versions checked: v1" in (
        capsys.readouterr().out
    )


NEW_RECORD: dict[str, Any] = {
    "type": "record",
    "name": "WatchSessionValue",
    "namespace": "tritontube.events",
    "doc": "A table value added after v1.",
    "fields": [
        {"name": "video_id", "type": "string", "doc": "x"},
        {"name": "stats", "type": "tritontube.events.VideoStats", "doc": "a named type"},
    ],
}


def test_a_new_schema_file_is_checked_without_a_code_change(tmp_path: Path) -> None:
    root = _schemas_copy(tmp_path)
    path = root / "tritontube.events.WatchSessionValue.avsc"
    path.write_text(json.dumps(NEW_RECORD))
    assert path in compat_check.schema_files(root)
    assert compat_check.check(root) == []
    assert "WatchSessionValue" in compat_check.render_topics_doc(root)

    undocumented = copy.deepcopy(NEW_RECORD)
    del undocumented["fields"][0]["doc"]
    path.write_text(json.dumps(undocumented))
    assert [p.problem for p in compat_check.check(root)] == ["no doc: video_id"]

    path.write_text(json.dumps({**NEW_RECORD, "name": "Other"}))
    assert [str(p) for p in compat_check.check(root)] == [
        "tritontube.events.WatchSessionValue.avsc (current): names tritontube.events.Other"
    ]

    path.write_text('{"type": "record", "name": "WatchSessionValue", "fields": [')
    (problem,) = compat_check.check(root)
    assert problem.record == path.name and problem.problem.startswith("does not parse")


def test_the_cli_command_fails_on_a_bad_new_schema(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _schemas_copy(tmp_path)
    (root / "tritontube.events.WatchSessionValue.avsc").write_text(
        json.dumps({**NEW_RECORD, "namespace": "elsewhere"})
    )
    monkeypatch.setattr(compat_check, "schema_dir", lambda: root)
    assert main(["schemas", "check"]) == 1
    out = capsys.readouterr().out
    assert "WatchSessionValue.avsc (current): not in tritontube.events" in out
    assert "2 problems in " in out  # and its name no longer matches the file's
