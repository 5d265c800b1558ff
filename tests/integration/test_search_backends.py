"""One contract, two backends: every test runs against tantivy and OpenSearch (osmem)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from helpers import all_pages
from tritontube.devstack.osmem import osmem_url, running_osmem
from tritontube.devstack.process import ManagedProcess, free_port
from tritontube.indexer.documents import VideoDocument
from tritontube.indexer.opensearch_index import OpenSearchIndex
from tritontube.indexer.port import SearchIndex, SearchUnavailable
from tritontube.indexer.query import InvalidQueryError, SearchQuery, SortOrder
from tritontube.indexer.tantivy_index import TantivyIndex

pytestmark = pytest.mark.integration

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def make_doc(video_id: str, title: str = "untitled", **changes: object) -> VideoDocument:
    doc = VideoDocument(
        video_id=video_id,
        title=title,
        description="",
        tags=(),
        owner="alice",
        status="READY",
        visibility="public",
        created_at=T0,
        ready_at=T0 + timedelta(minutes=5),
        duration_seconds=42.0,
        views=0,
        watch_seconds=0.0,
        trending_score=0.0,
        version=1,
    )
    return replace(doc, **changes)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def osmem(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedProcess]:
    log_path = tmp_path_factory.mktemp("osmem") / "osmem.log"
    with running_osmem(log_path) as process:
        yield process


@pytest.fixture(params=["tantivy", "opensearch"])
async def index(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SearchIndex]:
    backend: SearchIndex
    if request.param == "tantivy":
        backend = TantivyIndex(tmp_path / "tantivy")
    else:
        process: ManagedProcess = request.getfixturevalue("osmem")
        backend = OpenSearchIndex([osmem_url(process)], index=f"videos-{uuid.uuid4().hex}")
    await backend.ensure()
    try:
        yield backend
    finally:
        await backend.close()


async def put(index: SearchIndex, *docs: VideoDocument) -> int:
    applied = await index.upsert(docs)
    await index.refresh()
    return applied


async def ids(index: SearchIndex, query: SearchQuery) -> list[str]:
    page = await index.search(query)
    return [hit.video_id for hit in page.results]


async def test_ping_answers(index: SearchIndex) -> None:
    await index.ping()


async def test_upsert_then_search_returns_hit_fields(index: SearchIndex) -> None:
    doc = make_doc("v1", "Zebra crossing at night", description="cars", tags=("street",))
    assert await put(index, doc, make_doc("v2", "Cooking pasta")) == 2
    page = await index.search(SearchQuery(q="zebra"))
    assert [hit.video_id for hit in page.results] == ["v1"]
    hit = page.results[0]
    assert (hit.title, hit.description, hit.tags, hit.owner) == (
        "Zebra crossing at night",
        "cars",
        ("street",),
        "alice",
    )
    assert hit.ready_at == doc.ready_at
    assert hit.duration_seconds == 42.0
    assert hit.score is not None and hit.score > 0
    assert page.next_page_token is None


async def test_typos_prefixes_and_accents_match(index: SearchIndex) -> None:
    await put(
        index,
        make_doc("zebra", "Zebra Crossing"),
        make_doc("creme", "Crème brûlée at home"),
        make_doc("other", "Garden tour"),
    )
    assert await ids(index, SearchQuery(q="zebr crosing")) == ["zebra"]
    assert await ids(index, SearchQuery(q="zebra cros")) == ["zebra"]
    assert await ids(index, SearchQuery(q="CREME brulee")) == ["creme"]
    assert await ids(index, SearchQuery(q="zebra garden")) == []


async def test_title_outranks_description_and_tags_are_text(index: SearchIndex) -> None:
    await put(
        index,
        make_doc("desc", "Holiday", description="we saw a volcano"),
        make_doc("title", "Volcano eruption"),
        make_doc("tag", "Holiday two", tags=("volcano",)),
    )
    found = await ids(index, SearchQuery(q="volcano"))
    assert found[0] == "title"
    assert sorted(found) == ["desc", "tag", "title"]


async def test_tag_filter_requires_every_tag(index: SearchIndex) -> None:
    await put(
        index,
        make_doc("both", tags=("street", "night")),
        make_doc("street", tags=("street",)),
        make_doc("none"),
    )
    assert await ids(index, SearchQuery(q="", tags=("street", "night"))) == ["both"]
    assert sorted(await ids(index, SearchQuery(q="", tags=("street",)))) == ["both", "street"]
    assert await ids(index, SearchQuery(q="", tags=("Street",))) == []


async def test_owner_filter(index: SearchIndex) -> None:
    await put(index, make_doc("a", "cats"), make_doc("b", "cats", owner="bob"))
    assert await ids(index, SearchQuery(q="cats", owner="bob")) == ["b"]


@pytest.mark.parametrize(
    ("sort", "expected"),
    [("views", ["b", "a", "c", "d"]), ("recent", ["d", "a", "b", "c"])],
)
async def test_sort_orders_with_video_id_tiebreak(
    index: SearchIndex, sort: SortOrder, expected: list[str]
) -> None:
    await put(
        index,
        make_doc("a", views=5, ready_at=T0 + timedelta(hours=3)),
        make_doc("b", views=9, ready_at=T0 + timedelta(hours=1)),
        make_doc("c", views=5, ready_at=T0 + timedelta(hours=1)),
        make_doc("d", views=1, ready_at=T0 + timedelta(hours=4)),
    )
    page = await index.search(SearchQuery(q="", sort=sort))
    assert [hit.video_id for hit in page.results] == expected
    assert all(hit.score is None for hit in page.results)


def corpus(count: int, prefix: str = "v") -> list[VideoDocument]:
    return [
        make_doc(
            f"{prefix}{i:04d}",
            f"Zebra clip {i % 13}",
            description="zebra " * (i % 4),
            views=i % 7,
            ready_at=T0 + timedelta(minutes=i % 11),
        )
        for i in range(count)
    ]


@pytest.mark.parametrize("sort", ["relevance", "views", "recent"])
@pytest.mark.parametrize("q", ["", "zebra"])
async def test_pages_cover_everything_once(index: SearchIndex, sort: SortOrder, q: str) -> None:
    docs = corpus(250)
    await put(index, *docs)
    seen = await all_pages(index, SearchQuery(q=q, sort=sort, page_size=20))
    assert len(seen) == len(set(seen)) == 250
    assert set(seen) == {doc.video_id for doc in docs}


@pytest.mark.parametrize("sort", ["relevance", "views", "recent"])
async def test_pages_stable_while_index_changes(index: SearchIndex, sort: SortOrder) -> None:
    originals = corpus(250)
    await put(index, *originals)
    query = SearchQuery(q="", sort=sort, page_size=20)
    seen: list[str] = []
    batch = 0
    while True:
        page = await index.search(query)
        seen += [hit.video_id for hit in page.results]
        if page.next_page_token is None:
            break
        batch += 1
        await put(index, *corpus(5, prefix=f"new{batch:02d}-"))
        query = replace(query, page_token=page.next_page_token)
    original_ids = {doc.video_id for doc in originals}
    seen_originals = [vid for vid in seen if vid in original_ids]
    assert len(seen_originals) == len(set(seen_originals)) == 250
    assert len(seen) == len(set(seen))


async def test_stale_and_equal_versions_are_ignored(index: SearchIndex) -> None:
    assert await put(index, make_doc("v", "second", version=2)) == 1
    assert await put(index, make_doc("v", "first", version=1)) == 0
    assert await put(index, make_doc("v", "again", version=2)) == 0
    stored = await index.get("v")
    assert stored is not None and (stored.title, stored.version) == ("second", 2)
    assert await put(index, make_doc("v", "third", version=3)) == 1
    assert await ids(index, SearchQuery(q="third")) == ["v"]
    assert await ids(index, SearchQuery(q="second")) == []


async def test_only_ready_public_videos_are_returned(index: SearchIndex) -> None:
    await put(
        index,
        make_doc("ready", "lava"),
        make_doc("transcoding", "lava", status="TRANSCODING", ready_at=None),
        make_doc("private", "lava", visibility="private"),
        make_doc("unlisted", "lava", visibility="unlisted"),
    )
    assert await ids(index, SearchQuery(q="lava")) == ["ready"]
    await put(index, make_doc("ready", "lava", visibility="private", version=2))
    assert await ids(index, SearchQuery(q="lava")) == []
    assert await ids(index, SearchQuery(q="")) == []
    hidden = await index.get("ready")
    assert hidden is not None and hidden.visibility == "private"


async def test_delete_removes_from_search_and_get(index: SearchIndex) -> None:
    await put(index, make_doc("a", "lava"), make_doc("b", "lava"))
    await index.delete(["a", "missing"])
    await index.refresh()
    assert await ids(index, SearchQuery(q="lava")) == ["b"]
    assert await index.get("a") is None


async def test_get_round_trips_the_document(index: SearchIndex) -> None:
    doc = make_doc("a", "lava", tags=("x", "y"), views=3, watch_seconds=1.5, version=7)
    await put(index, doc)
    assert await index.get("a") == doc
    assert await index.get("nope") is None


async def test_get_many_returns_the_stored_documents_by_id(index: SearchIndex) -> None:
    hidden = make_doc("b", "lava", visibility="private", version=3)
    docs = [make_doc("a", "lava", tags=("x",)), hidden, make_doc("c", "geyser", views=9)]
    await put(index, *docs)
    got = await index.get_many(["c", "nope", "a", "b", "a"])
    assert got == {"a": docs[0], "b": hidden, "c": docs[2]}  # not-searchable ones too
    assert await index.get_many([]) == {}
    many = [make_doc(f"m{i}", "bulk", version=2) for i in range(1500)]
    await put(index, *many)
    assert len(await index.get_many([d.video_id for d in many])) == 1500


async def test_batch_upsert_applies_only_newer_versions(index: SearchIndex) -> None:
    await put(index, make_doc("a", "old a", version=5), make_doc("b", "old b", version=5))
    batch = [
        make_doc("a", "stale a", version=4),
        make_doc("b", "new b", version=6),
        make_doc("c", "new c", version=1),
        make_doc("a", "equal a", version=5),
    ]
    assert await put(index, *batch) == 2
    got = await index.get_many(["a", "b", "c"])
    assert {k: (d.title, d.version) for k, d in got.items()} == {
        "a": ("old a", 5),
        "b": ("new b", 6),
        "c": ("new c", 1),
    }


async def test_upsert_is_searchable_within_two_seconds(index: SearchIndex) -> None:
    await index.upsert([make_doc("fresh", "geyser")])
    for _ in range(40):
        if await ids(index, SearchQuery(q="geyser")) == ["fresh"]:
            return
        await asyncio.sleep(0.05)
    pytest.fail("upsert not searchable within 2 s")


async def test_concurrent_upserts_keep_the_newest_version(index: SearchIndex) -> None:
    versions = [make_doc("v", f"title {n}", version=n) for n in range(1, 21)]
    await asyncio.gather(*(index.upsert([doc]) for doc in reversed(versions)))
    await index.refresh()
    stored = await index.get("v")
    assert stored is not None and stored.version == 20


async def test_bad_page_tokens_are_rejected(index: SearchIndex) -> None:
    await put(index, *corpus(5))
    page = await index.search(SearchQuery(q="", page_size=2))
    assert page.next_page_token is not None
    with pytest.raises(InvalidQueryError):
        await index.search(SearchQuery(q="", page_size=2, page_token="garbage"))
    with pytest.raises(InvalidQueryError):
        await index.search(SearchQuery(q="zebra", page_size=2, page_token=page.next_page_token))
    with pytest.raises(InvalidQueryError):
        await index.search(
            SearchQuery(q="", sort="views", page_size=2, page_token=page.next_page_token)
        )


async def test_opensearch_down_raises_search_unavailable() -> None:
    backend = OpenSearchIndex([f"http://127.0.0.1:{free_port()}"], timeout=1.0, max_retries=0)
    try:
        with pytest.raises(SearchUnavailable):
            await backend.ping()
        with pytest.raises(SearchUnavailable):
            await backend.ensure()
        with pytest.raises(SearchUnavailable):
            await backend.search(SearchQuery(q="x"))
        with pytest.raises(SearchUnavailable):
            await backend.upsert([make_doc("a")])
    finally:
        await backend.close()


async def test_tantivy_read_only_reader_sees_commits_of_the_writer(tmp_path: Path) -> None:
    writer = TantivyIndex(tmp_path / "shared")
    await writer.ensure()
    reader = TantivyIndex(tmp_path / "shared", read_only=True)
    await reader.ensure()
    try:
        await reader.ping()
        await writer.upsert([make_doc("a", "geyser")])
        await reader.refresh()
        assert await ids(reader, SearchQuery(q="geyser")) == ["a"]
        await writer.upsert([make_doc("b", "geyser")])
        for _ in range(40):
            if await ids(reader, SearchQuery(q="geyser")) == ["a", "b"]:
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("read-only reader did not reload within 2 s")
        with pytest.raises(RuntimeError, match="read-only"):
            await reader.upsert([make_doc("c")])
    finally:
        await reader.close()
        await writer.close()
