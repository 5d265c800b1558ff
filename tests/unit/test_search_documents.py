from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from tritontube.indexer.documents import (
    InvalidDocumentError,
    VideoDocument,
    from_source,
    is_searchable,
    recent_key,
    to_source,
)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def make_doc(**changes: object) -> VideoDocument:
    doc = VideoDocument(
        video_id="v1",
        title="Zebra crossing",
        description="at night",
        tags=("street", "night"),
        owner="alice",
        status="READY",
        visibility="public",
        created_at=T0,
        ready_at=T0 + timedelta(minutes=3),
        duration_seconds=12.5,
        views=7,
        watch_seconds=30.0,
        trending_score=0.25,
        version=3,
    )
    return replace(doc, **changes)  # type: ignore[arg-type]


def test_only_ready_public_documents_are_searchable() -> None:
    assert is_searchable(make_doc())
    assert not is_searchable(make_doc(status="TRANSCODING"))
    assert not is_searchable(make_doc(visibility="private"))
    assert not is_searchable(make_doc(visibility="unlisted"))


def test_source_round_trip_keeps_every_field() -> None:
    doc = make_doc()
    assert from_source(to_source(doc)) == doc
    bare = make_doc(ready_at=None, duration_seconds=None, tags=())
    assert from_source(to_source(bare)) == bare


def test_recent_key_prefers_ready_at_over_created_at() -> None:
    assert recent_key(make_doc()) == int((T0 + timedelta(minutes=3)).timestamp() * 1000)
    assert recent_key(make_doc(ready_at=None)) == int(T0.timestamp() * 1000)


@pytest.mark.parametrize(
    "changes",
    [
        {"created_at": datetime(2024, 1, 1)},  # noqa: DTZ001 - the naive datetime is the point
        {"ready_at": datetime(2024, 1, 1)},  # noqa: DTZ001
        {"visibility": "friends"},
        {"video_id": ""},
        {"version": -1},
        {"views": -1},
    ],
)
def test_invalid_documents_are_rejected(changes: dict[str, object]) -> None:
    with pytest.raises(InvalidDocumentError):
        make_doc(**changes)
