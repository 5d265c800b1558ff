"""The embedded index pages large tie groups in (key desc, video_id asc) order.

views/recent pages and browsing without terms read tie groups through tantivy's ordering on
the video_id fast field instead of reading every hit; these tests compare every page
with the order computed in Python from the documents themselves.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import tantivy
from hypothesis import given
from hypothesis import strategies as st

from helpers import all_pages
from tritontube.indexer import tantivy_index
from tritontube.indexer.documents import VideoDocument, recent_key
from tritontube.indexer.query import SearchQuery, SortOrder
from tritontube.indexer.tantivy_index import IndexSchemaError, TantivyIndex, id_key

T0 = datetime(2024, 5, 1, tzinfo=UTC)


def doc(video_id: str, views: int, minute: int, tags: tuple[str, ...] = ("a",)) -> VideoDocument:
    at = T0 + timedelta(minutes=minute)
    return VideoDocument(
        video_id=video_id,
        title="zebra clip",
        description="",
        tags=tags,
        owner="o",
        status="READY",
        visibility="public",
        created_at=at,
        ready_at=at,
        duration_seconds=10.0,
        views=views,
        watch_seconds=0.0,
        trending_score=0.0,
        version=1,
    )


def corpus() -> list[VideoDocument]:
    """Few distinct keys (long tie groups), ids the query parser cannot take as a bound, and
    ids sharing their first 7 bytes (one id_key: ordered by their documents' ids)."""
    rng = random.Random(5)
    ids = [f"v{i}" for i in range(300)] + ["a.b", "x:y", "q z", "-lead", "ZZ"]
    ids += ["prefix7-b", "prefix7-a", "prefix7-aa", "prefix7", "prefix70", "ünïc-1", "ünïc-0"]
    return [
        doc(vid, rng.choice((0, 0, 0, 1, 2, 7)), rng.choice((0, 0, 3)), rng.choice((("a",), ())))
        for vid in ids
    ]


def expected(docs: list[VideoDocument], sort: SortOrder, tag: str | None) -> list[str]:
    chosen = [d for d in docs if tag is None or tag in d.tags]
    if sort == "relevance":
        return sorted(d.video_id for d in chosen)
    key = (lambda d: d.views) if sort == "views" else recent_key
    return [d.video_id for d in sorted(chosen, key=lambda d: (-key(d), d.video_id))]


@pytest.fixture
async def index(tmp_path: Path) -> AsyncIterator[TantivyIndex]:
    idx = TantivyIndex(tmp_path / "search")
    await idx.ensure()
    try:
        yield idx
    finally:
        await idx.close()


@pytest.mark.parametrize("sort", ["views", "recent", "relevance"])
@pytest.mark.parametrize("tag", [None, "a"])
@pytest.mark.parametrize("page_size", [1, 7, 100])
async def test_pages_follow_key_then_video_id(
    index: TantivyIndex, sort: SortOrder, tag: str | None, page_size: int
) -> None:
    docs = corpus()
    await index.upsert(docs)
    tags = () if tag is None else (tag,)
    query = SearchQuery(q="", tags=tags, sort=sort, page_size=page_size)
    assert await all_pages(index, query) == expected(docs, sort, tag)


async def test_browsing_scores_every_hit_the_same(index: TantivyIndex) -> None:
    await index.upsert([doc("b", 1, 0), doc("a", 5, 1)])
    page = await index.search(SearchQuery(q=""))
    assert [(hit.video_id, hit.score) for hit in page.results] == [("a", 1.0), ("b", 1.0)]


async def test_an_index_of_another_schema_is_refused(tmp_path: Path) -> None:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("video_id", stored=True, tokenizer_name="raw")
    tantivy.Index(builder.build(), path=str(tmp_path))
    with pytest.raises(IndexSchemaError, match="rebuild"):
        await TantivyIndex(tmp_path).ensure()


def texts(count: int) -> list[VideoDocument]:
    """Relevance ties: most documents share their text exactly (one group larger than what
    is ordered by reading documents), the rest spread over a few smaller groups."""
    rng = random.Random(9)
    out = []
    for i in range(count):
        title = "zebra clip" if i % 5 else rng.choice(("zebra", "zebra zebra clip", "clip zebra x"))
        vid = f"w{rng.randrange(10**6):06d}" if i % 17 else f"odd.{i}"
        out.append(replace(doc(vid, 0, 0), title=title))
    return out


def by_relevance(index: TantivyIndex, query: SearchQuery) -> list[str]:
    """Every hit of ``query`` in (score desc, video_id asc) order, computed in Python."""
    searcher = index._opened().searcher()
    hits = searcher.search(index._build_query(query), 10_000, count=False).hits
    rows = [(score, searcher.doc(address).get_first("video_id")) for score, address in hits]
    return [str(vid) for _, vid in sorted(rows, key=lambda row: (-row[0], str(row[1])))]


@pytest.mark.parametrize("page_size", [1, 7, 100])
@pytest.mark.parametrize("group_docs", [16, 4096])  # tie groups ordered by id scan / by docs
async def test_relevance_pages_follow_score_then_video_id(
    index: TantivyIndex, page_size: int, group_docs: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tantivy_index, "_GROUP_DOCS", group_docs)
    await index.upsert(texts(700))
    query = SearchQuery(q="zebra", page_size=page_size)
    expected_ids = by_relevance(index, query)
    assert len(expected_ids) == len(set(expected_ids)) > 600
    assert await all_pages(index, query) == expected_ids


@given(st.text(max_size=12), st.text(max_size=12))
def test_id_key_orders_like_the_ids(a: str, b: str) -> None:
    """Hits in id_key order are in video_id order up to ties, which share the first bytes."""
    if a.encode() < b.encode():
        assert id_key(a) <= id_key(b)
    if id_key(a) != id_key(b):
        assert (id_key(a) < id_key(b)) == (a.encode() < b.encode())
