"""docs/topics.md is generated from the catalogue and the schemas and must stay in sync."""

from __future__ import annotations

from pathlib import Path

from tritontube.streams import catalogue, compat_check
from tritontube.streams.codec import SchemaRegistry

DOC = Path(__file__).resolve().parents[2] / "docs" / "topics.md"


def test_topics_doc_is_in_sync_with_catalogue_and_schemas() -> None:
    assert DOC.read_text() == compat_check.render_topics_doc(), (
        "docs/topics.md is stale: run `tritontube schemas doc > docs/topics.md`"
    )


def test_topics_doc_names_every_topic_record_and_field() -> None:
    text = DOC.read_text()
    registry = SchemaRegistry()
    for spec in catalogue.TOPICS:
        assert f"| `{spec.name}` | {spec.key} |" in text
        for record in spec.records:
            assert f"#### {record}" in text
            for field in registry.schema(record)["fields"]:
                assert f"| `{field['name']}` |" in text
    assert "Not crash recovery" in text  # the durable broker, not the archive, keeps acks


def test_topics_doc_tells_outside_consumers_what_they_need() -> None:
    text = DOC.read_text()
    for heading in (
        "### Keys",
        "### Values: Avro single-object encoding",
        "### Messages written before issue 21: reversed fingerprints",
        '### Reading "to the end" on the embedded broker',
        "### Clients tested",
    ):
        assert heading in text
    registry = SchemaRegistry()
    for name in registry.current:
        fp = registry.fingerprint_of(name)
        assert f"`{fp.hex(' ')}` | `{fp[::-1].hex(' ')}` |" in text, name
    assert "Every mode is a dry\nrun unless `--execute`" in text
