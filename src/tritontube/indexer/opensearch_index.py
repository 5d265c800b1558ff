"""OpenSearch backend through opensearch-py's async client.

Settings, analyzers and mappings live in ``opensearch_index.json`` (package data).
Writes use external versioning (``version_type=external``, version = document version),
so the cluster itself rejects a stale write with 409, which counts as "ignored".
Documents that are not searchable are stored with ``searchable: false`` (keeping their
version) and filtered out of every search. Connection failures raise SearchUnavailable.
"""

from __future__ import annotations

import json
import logging
import struct
from collections.abc import Awaitable, Sequence
from functools import cache
from importlib import resources
from typing import Any, Final, TypeVar

from opensearchpy import AsyncOpenSearch
from opensearchpy.exceptions import ConnectionError as OpenSearchConnectionError
from opensearchpy.exceptions import NotFoundError, RequestError, TransportError

from tritontube.indexer.cursor import Cursor, CursorCodec, SortKey, paginate
from tritontube.indexer.documents import (
    VideoDocument,
    from_source,
    is_searchable,
    recent_key,
    to_source,
)
from tritontube.indexer.port import SearchUnavailable, SearchWriteError
from tritontube.indexer.query import (
    MIN_PREFIX_CHARS,
    SearchHit,
    SearchPage,
    SearchQuery,
    fuzziness,
    to_hit,
)

log = logging.getLogger(__name__)

TEXT_FIELDS: Final = (("title", 3.0), ("description", 1.0), ("tags.text", 1.0))
EXACT_BOOST: Final = 2.0
SORT_FIELDS: Final = {"relevance": "_score", "views": "views", "recent": "recent_ms"}
_UNAVAILABLE_STATUSES: Final = frozenset({502, 503, 504})
MAX_WINDOW: Final = 10_000  # OpenSearch's default index.max_result_window
BROWSE_SCORE: Final = 1.0
_T = TypeVar("_T")
Row = tuple[SortKey, SearchHit]


@cache
def index_body() -> dict[str, Any]:
    """Settings and mappings of the videos index (parsed once)."""
    text = resources.files("tritontube.indexer").joinpath("opensearch_index.json").read_text()
    body: dict[str, Any] = json.loads(text)
    return body


class OpenSearchIndex:
    """:class:`~tritontube.indexer.port.SearchIndex` on OpenSearch."""

    def __init__(
        self,
        hosts: Sequence[str],
        *,
        index: str = "videos",
        cursor_secret: bytes | None = None,
        timeout: float = 10.0,
        max_retries: int = 2,
    ) -> None:
        self._name = index
        self._codec = CursorCodec(cursor_secret)
        self._client = AsyncOpenSearch(
            hosts=list(hosts), timeout=timeout, max_retries=max_retries, retry_on_timeout=True
        )

    # -- lifecycle -------------------------------------------------------------------
    async def ensure(self) -> None:
        if await self._call(self._client.indices.exists(index=self._name)):
            return
        try:
            await self._call(self._client.indices.create(index=self._name, body=index_body()))
        except RequestError as exc:
            if exc.error != "resource_already_exists_exception":
                raise
            log.debug("index %s was created concurrently", self._name)

    async def ping(self) -> None:
        await self._call(self._client.info())

    async def refresh(self) -> None:
        await self._call(self._client.indices.refresh(index=self._name))

    async def close(self) -> None:
        await self._client.close()

    async def release(self) -> None:
        """Nothing to give up: OpenSearch takes writes from any number of clients."""

    # -- writes ----------------------------------------------------------------------
    async def upsert(self, docs: Sequence[VideoDocument]) -> int:
        if not docs:
            return 0
        body: list[dict[str, Any]] = []
        for doc in docs:
            body.append({"index": self._action(doc)})
            body.append(_to_source(doc))
        response = await self._call(self._client.bulk(body=body))
        return _count_applied(response["items"], "index")

    def _action(self, doc: VideoDocument) -> dict[str, Any]:
        return {
            "_index": self._name,
            "_id": doc.video_id,
            "version": doc.version,
            "version_type": "external",
        }

    async def delete(self, video_ids: Sequence[str]) -> None:
        if not video_ids:
            return
        body = [{"delete": {"_index": self._name, "_id": vid}} for vid in video_ids]
        response = await self._call(self._client.bulk(body=body))
        _count_applied(response["items"], "delete", ignore=frozenset({404}))

    # -- reads -----------------------------------------------------------------------
    async def get(self, video_id: str) -> VideoDocument | None:
        try:
            response = await self._call(self._client.get(index=self._name, id=video_id))
        except NotFoundError:
            return None
        return from_source(response["_source"])

    async def get_many(self, video_ids: Sequence[str]) -> dict[str, VideoDocument]:
        ids = list(dict.fromkeys(video_ids))
        if not ids:
            return {}
        response = await self._call(self._client.mget(index=self._name, body={"ids": ids}))
        return {
            doc["_id"]: from_source(doc["_source"]) for doc in response["docs"] if doc.get("found")
        }

    async def search(self, query: SearchQuery) -> SearchPage:
        cursor = self._codec.decode(query)
        return paginate(self._codec, query, await self._rows_after(query, cursor))

    async def _rows_after(self, query: SearchQuery, cursor: Cursor | None) -> list[Row]:
        """Rows strictly after the cursor; widens the window while a score tie group
        (re-fetched from its start, see :func:`search_after`) hides the next page."""
        want = query.page_size + 1
        size = want
        while True:
            body = search_body(query, cursor, size)
            response = await self._call(self._client.search(index=self._name, body=body))
            hits = response["hits"]["hits"]
            rows = [_row(query, hit) for hit in hits]
            if cursor is not None:
                rows = [row for row in rows if cursor.precedes(row[0], row[1].video_id)]
            if len(rows) >= want or len(hits) < size or size >= MAX_WINDOW:
                return rows[:want]
            size = min(size * 2, MAX_WINDOW)

    async def _call(self, awaitable: Awaitable[_T]) -> _T:
        """Await a client call, turning "cannot reach the cluster" into SearchUnavailable."""
        try:
            return await awaitable
        except OpenSearchConnectionError as exc:
            raise SearchUnavailable(f"OpenSearch unreachable: {exc}") from exc
        except TransportError as exc:
            if exc.status_code in _UNAVAILABLE_STATUSES:
                raise SearchUnavailable(f"OpenSearch unavailable: {exc}") from exc
            if exc.error == "index_not_found_exception":
                # The cluster lost the index (a restarted in-memory backend, a deleted alias):
                # unavailable until the indexer recreates it, not a server error.
                raise SearchUnavailable(f"OpenSearch index missing: {exc}") from exc
            if exc.status_code == 404:
                raise  # a missing document: the caller decides (get() answers None)
            # Anything else (a rejected request, an index auto-created with the wrong mapping)
            # is the backend's fault as far as a caller can tell: unavailable, loudly logged.
            log.error("OpenSearch refused a request: %s", exc)
            raise SearchUnavailable(f"OpenSearch error {exc.status_code}: {exc.error}") from exc


def _to_source(doc: VideoDocument) -> dict[str, Any]:
    source = to_source(doc)
    source["searchable"] = is_searchable(doc)
    source["recent_ms"] = recent_key(doc)
    return source


def _count_applied(
    items: list[dict[str, Any]], action: str, ignore: frozenset[int] = frozenset()
) -> int:
    """Successful bulk items; a 409 (stale external version) is ignored, not an error."""
    applied = 0
    for item in items:
        result = item[action]
        status = int(result["status"])
        if 200 <= status < 300:
            applied += 1
        elif status != 409 and status not in ignore:
            raise SearchWriteError(f"bulk {action} of {result.get('_id')} failed: {result}")
    return applied


def _browse_by_relevance(query: SearchQuery) -> bool:
    """match_all scores every hit 1.0: order by video_id alone (cheap search_after)."""
    return query.sort == "relevance" and not query.terms


def _row(query: SearchQuery, hit: dict[str, Any]) -> Row:
    if _browse_by_relevance(query):
        return BROWSE_SCORE, to_hit(from_source(hit["_source"]), BROWSE_SCORE)
    key: SortKey = hit["sort"][0]
    score = float(key) if query.sort == "relevance" else None
    return key, to_hit(from_source(hit["_source"]), score)


def sort_clause(query: SearchQuery) -> list[dict[str, Any]]:
    tiebreak = {"video_id": {"order": "asc"}}
    if _browse_by_relevance(query):
        return [tiebreak]
    return [{SORT_FIELDS[query.sort]: {"order": "desc"}}, tiebreak]


def search_after(query: SearchQuery, cursor: Cursor) -> list[SortKey | str]:
    """search_after values for a cursor.

    Integer keys are exact. A score that came back as JSON may not equal the engine's
    internal score (osmem keeps f64 scores but prints them rounded to f32 precision), so
    ties on score cannot be resumed by video_id: resume just above the cursor's score
    (the next float32), from the start of its tie group, and drop the rows up to the
    cursor client-side (:meth:`OpenSearchIndex._rows_after`).
    """
    if _browse_by_relevance(query):
        return [cursor.video_id]
    if query.sort == "relevance":
        return [next_float32_up(float(cursor.key)), ""]
    return [cursor.key, cursor.video_id]


def next_float32_up(value: float) -> float:
    """The smallest float32 above ``value`` (scores are non-negative)."""
    if value < 0:
        raise ValueError("scores are non-negative")
    (bits,) = struct.unpack("<I", struct.pack("<f", value))
    (up,) = struct.unpack("<f", struct.pack("<I", bits + 1))
    return float(up)


def search_body(query: SearchQuery, cursor: Cursor | None, size: int) -> dict[str, Any]:
    """The _search request: text + filters, (key desc, video_id asc), search_after."""
    filters: list[dict[str, Any]] = [{"term": {"searchable": True}}]
    filters += [{"term": {"tags": tag}} for tag in query.tags]
    if query.owner is not None:
        filters.append({"term": {"owner": query.owner}})
    body: dict[str, Any] = {
        "size": size,
        "query": {"bool": {"must": [text_query(query.terms)], "filter": filters}},
        "sort": sort_clause(query),
        "track_total_hits": False,
    }
    if cursor is not None:
        body["search_after"] = search_after(query, cursor)
    return body


def text_query(terms: list[str]) -> dict[str, Any]:
    """Every term must match some field: exactly, within fuzziness(term), or (the last
    term) as a prefix; the best field per term scores. Mirrors the tantivy adapter."""
    if not terms:
        return {"match_all": {}}
    last = len(terms) - 1
    return {"bool": {"must": [_term_query(term, i == last) for i, term in enumerate(terms)]}}


def _term_query(term: str, is_last: bool) -> dict[str, Any]:
    per_field = []
    for field, boost in TEXT_FIELDS:
        alternatives: list[dict[str, Any]] = [
            {"term": {field: {"value": term, "boost": EXACT_BOOST}}}
        ]
        distance = fuzziness(term)
        if distance:
            alternatives.append({"fuzzy": {field: {"value": term, "fuzziness": distance}}})
        if is_last and len(term) >= MIN_PREFIX_CHARS:
            alternatives.append({"prefix": {field: {"value": term}}})
        per_field.append({"bool": {"should": alternatives, "boost": boost}})
    return {"dis_max": {"queries": per_field}}
