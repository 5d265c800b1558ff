from __future__ import annotations

import base64
from dataclasses import replace

import pytest

from tritontube.indexer.cursor import Cursor, CursorCodec, paginate
from tritontube.indexer.query import InvalidQueryError, SearchHit, SearchQuery

SECRET = b"test-secret"


def with_token(query: SearchQuery, token: str) -> SearchQuery:
    return replace(query, page_token=token)


def hit(video_id: str) -> SearchHit:
    return SearchHit(video_id, "t", "d", (), "o", 0, None, None, None)


@pytest.mark.parametrize(
    ("sort", "key"), [("relevance", 1.4975287914276123), ("views", 12), ("recent", 1714564800000)]
)
def test_round_trip(sort: str, key: float) -> None:
    codec = CursorCodec(SECRET)
    query = SearchQuery(q="zebra", sort=sort)  # type: ignore[arg-type]
    token = codec.encode(query, Cursor(key=key, video_id="v9"))
    assert codec.decode(with_token(query, token)) == Cursor(key=key, video_id="v9")


def test_first_page_has_no_cursor() -> None:
    assert CursorCodec(SECRET).decode(SearchQuery(q="x")) is None


def test_token_is_urlsafe() -> None:
    token = CursorCodec(SECRET).encode(SearchQuery(q="x"), Cursor(1.0, "a/b+c"))
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


def test_token_from_another_query_is_rejected() -> None:
    codec = CursorCodec(SECRET)
    token = codec.encode(SearchQuery(q="cats"), Cursor(1.0, "v1"))
    with pytest.raises(InvalidQueryError, match="different query"):
        codec.decode(SearchQuery(q="dogs", page_token=token))
    with pytest.raises(InvalidQueryError):
        codec.decode(SearchQuery(q="cats", sort="views", page_token=token))


def test_token_signed_with_another_secret_is_rejected() -> None:
    token = CursorCodec(b"other").encode(SearchQuery(q="cats"), Cursor(1.0, "v1"))
    with pytest.raises(InvalidQueryError, match="signature"):
        CursorCodec(SECRET).decode(SearchQuery(q="cats", page_token=token))


def test_tampered_payload_is_rejected() -> None:
    codec = CursorCodec(SECRET)
    token = codec.encode(SearchQuery(q="cats"), Cursor(1.0, "v1"))
    _, signature = token.split(".")
    forged = base64.urlsafe_b64encode(b'{"f":"x","k":9,"i":"v1"}').rstrip(b"=").decode()
    with pytest.raises(InvalidQueryError):
        codec.decode(SearchQuery(q="cats", page_token=f"{forged}.{signature}"))


@pytest.mark.parametrize("token", ["garbage", "a.b", "@@@.@@@", "..", "e30.e30"])
def test_malformed_tokens_are_rejected(token: str) -> None:
    with pytest.raises(InvalidQueryError):
        CursorCodec(SECRET).decode(SearchQuery(q="cats", page_token=token))


def test_views_token_with_float_key_is_rejected() -> None:
    codec = CursorCodec(SECRET)
    query = SearchQuery(q="", sort="views")
    token = codec.encode(query, Cursor(key=1.5, video_id="v1"))
    with pytest.raises(InvalidQueryError):
        codec.decode(with_token(query, token))


def test_cursor_order_is_key_desc_then_video_id_asc() -> None:
    cursor = Cursor(key=5, video_id="m")
    assert cursor.precedes(4, "a")
    assert cursor.precedes(5, "n")
    assert not cursor.precedes(5, "m")
    assert not cursor.precedes(5, "a")
    assert not cursor.precedes(6, "z")


def test_paginate_emits_token_only_when_more_rows_exist() -> None:
    codec = CursorCodec(SECRET)
    query = SearchQuery(q="", sort="views", page_size=2)
    full = paginate(codec, query, [(3, hit("a")), (2, hit("b")), (1, hit("c"))])
    assert [h.video_id for h in full.results] == ["a", "b"]
    assert full.next_page_token is not None
    assert codec.decode(with_token(query, full.next_page_token)) == Cursor(2, "b")
    last = paginate(codec, query, [(3, hit("a")), (2, hit("b"))])
    assert last.next_page_token is None
    assert paginate(codec, query, []).results == []
