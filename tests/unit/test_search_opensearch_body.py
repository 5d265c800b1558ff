"""The OpenSearch request bodies are pure data: check their shape without a server."""

from __future__ import annotations

import struct

from tritontube.indexer.cursor import Cursor
from tritontube.indexer.opensearch_index import index_body, next_float32_up, search_body
from tritontube.indexer.query import SearchQuery


def test_index_body_is_strict_and_has_the_text_analyzer() -> None:
    body = index_body()
    assert body["mappings"]["dynamic"] == "strict"
    assert "tritontube_text" in body["settings"]["analysis"]["analyzer"]
    assert body["mappings"]["properties"]["tags"]["type"] == "keyword"


def test_filters_and_sort_for_views() -> None:
    query = SearchQuery(q="", tags=("a", "b"), owner="bob", sort="views")
    body = search_body(query, Cursor(key=7, video_id="v3"), size=21)
    filters = body["query"]["bool"]["filter"]
    assert {"term": {"searchable": True}} in filters
    assert {"term": {"tags": "a"}} in filters and {"term": {"tags": "b"}} in filters
    assert {"term": {"owner": "bob"}} in filters
    assert body["sort"] == [{"views": {"order": "desc"}}, {"video_id": {"order": "asc"}}]
    assert body["search_after"] == [7, "v3"]
    assert body["size"] == 21


def test_browse_by_relevance_sorts_by_video_id_only() -> None:
    body = search_body(SearchQuery(q=""), Cursor(key=1.0, video_id="v3"), size=5)
    assert body["query"]["bool"]["must"] == [{"match_all": {}}]
    assert body["sort"] == [{"video_id": {"order": "asc"}}]
    assert body["search_after"] == ["v3"]


def test_relevance_resumes_just_above_the_cursor_score() -> None:
    body = search_body(SearchQuery(q="zebra"), Cursor(key=0.04042253, video_id="v3"), size=5)
    resume, video_id = body["search_after"]
    assert video_id == ""
    assert resume > 0.04042253
    as_f32 = struct.unpack("<I", struct.pack("<f", 0.04042253))[0]
    assert struct.unpack("<I", struct.pack("<f", resume))[0] == as_f32 + 1


def test_next_float32_up_is_the_next_representable_value() -> None:
    assert next_float32_up(1.0) == 1.0 + 2**-23
    assert next_float32_up(0.0) > 0.0


def test_every_term_must_match_and_only_the_last_is_a_prefix() -> None:
    body = search_body(SearchQuery(q="zebr crosing"), None, size=3)
    terms = body["query"]["bool"]["must"][0]["bool"]["must"]
    assert len(terms) == 2
    first_title = terms[0]["dis_max"]["queries"][0]["bool"]["should"]
    last_title = terms[1]["dis_max"]["queries"][0]["bool"]["should"]
    assert {"fuzzy": {"title": {"value": "zebr", "fuzziness": 1}}} in first_title
    assert not any("prefix" in clause for clause in first_title)
    assert {"prefix": {"title": {"value": "crosing"}}} in last_title
    assert "search_after" not in body
