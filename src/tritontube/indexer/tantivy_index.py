"""Embedded search backend: a tantivy index on disk (the default for dev and tests).

tantivy is synchronous and CPU-bound, so every call runs in a worker thread. One writer
stays open; each write call commits and reloads the reader, so an upsert is searchable
as soon as it returns. Writes are serialised by an asyncio.Lock. tantivy allows one
writer per directory: other processes (the HTTP API) open the index ``read_only`` and
their reader reloads on its own shortly after each commit (or at once on ``refresh()``).

search_after on (key, video_id) is emulated: tantivy orders by score or a fast field but
breaks ties by document address, so the adapter scans in batches (cursor pushed down as a
range filter for views/recent), keeps hits strictly after the cursor and sorts them by
(key desc, video_id asc) itself. A page costs O(hits before the page + size of the tie
group at its boundary), which suits the embedded scale; relevance pages cost O(depth).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import tantivy

from tritontube.indexer.cursor import Cursor, CursorCodec, SortKey, paginate
from tritontube.indexer.documents import (
    VideoDocument,
    from_source,
    is_searchable,
    recent_key,
    to_source,
)
from tritontube.indexer.port import SearchUnavailable
from tritontube.indexer.query import (
    MIN_PREFIX_CHARS,
    WORD_PATTERN,
    SearchHit,
    SearchPage,
    SearchQuery,
    fuzziness,
    to_hit,
)

TEXT_TOKENIZER: Final = "tritontube_text"
TEXT_FIELDS: Final = (("title", 3.0), ("description", 1.0), ("tags_text", 1.0))
EXACT_BOOST: Final = 2.0
SORT_FIELDS: Final = {"views": "views", "recent": "recent_ms"}
_MIN_BATCH: Final = 64
_MAX_TERMS: Final = 1024  # ids per term-set query (one document per id)

Row = tuple[SortKey, SearchHit]


def build_schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("video_id", stored=True, tokenizer_name="raw")
    for name, _ in TEXT_FIELDS:
        builder.add_text_field(name, tokenizer_name=TEXT_TOKENIZER)
    builder.add_text_field("tags", tokenizer_name="raw")
    builder.add_text_field("owner", tokenizer_name="raw")
    builder.add_boolean_field("searchable", indexed=True)
    builder.add_integer_field("views", indexed=True, fast=True)
    builder.add_integer_field("recent_ms", indexed=True, fast=True)
    builder.add_bytes_field("source", stored=True)
    return builder.build()


def text_analyzer() -> tantivy.TextAnalyzer:
    """Same words as :func:`tritontube.indexer.query.tokenize` produces for queries."""
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.regex(WORD_PATTERN))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
        .build()
    )


class TantivyIndex:
    """:class:`~tritontube.indexer.port.SearchIndex` on an embedded tantivy index."""

    def __init__(
        self,
        path: Path,
        *,
        cursor_secret: bytes | None = None,
        writer_heap_bytes: int = 50_000_000,
        read_only: bool = False,
    ) -> None:
        self._path = path
        self._read_only = read_only
        self._heap = writer_heap_bytes
        self._codec = CursorCodec(cursor_secret)
        self._schema = build_schema()
        self._index: tantivy.Index | None = None
        self._writer: tantivy.IndexWriter | None = None
        self._lock = asyncio.Lock()

    # -- lifecycle -------------------------------------------------------------------
    async def ensure(self) -> None:
        async with self._lock:
            if self._index is None:
                await asyncio.to_thread(self._open)

    def _open(self) -> None:
        self._path.mkdir(parents=True, exist_ok=True)
        index = tantivy.Index(self._schema, path=str(self._path), reuse=True)
        index.register_tokenizer(TEXT_TOKENIZER, text_analyzer())
        if not self._read_only:
            self._writer = index.writer(heap_size=self._heap, num_threads=1)
        self._index = index

    async def ping(self) -> None:
        if self._index is None:
            raise SearchUnavailable("tantivy index is not open")
        if not await asyncio.to_thread(tantivy.Index.exists, str(self._path)):
            raise SearchUnavailable(f"tantivy index at {self._path} is gone")

    async def close(self) -> None:
        async with self._lock:
            writer, self._writer, self._index = self._writer, None, None
            if writer is not None:
                await asyncio.to_thread(writer.wait_merging_threads)

    async def refresh(self) -> None:
        await asyncio.to_thread(self._opened().reload)

    # -- writes ----------------------------------------------------------------------
    async def upsert(self, docs: Sequence[VideoDocument]) -> int:
        latest = _latest_versions(docs)
        if not latest:
            return 0
        async with self._lock:
            return await asyncio.to_thread(self._upsert, latest)

    def _upsert(self, docs: Sequence[VideoDocument]) -> int:
        index, writer = self._opened(), self._open_writer()
        stored = self._stored_many(index.searcher(), [doc.video_id for doc in docs])
        applied = 0
        for doc in docs:
            old = stored.get(doc.video_id)
            if old is not None and doc.version <= old.version:
                continue
            writer.delete_documents_by_term("video_id", doc.video_id)
            writer.add_document(self._to_tantivy(doc))
            applied += 1
        if applied:
            self._commit()
        return applied

    async def delete(self, video_ids: Sequence[str]) -> None:
        if not video_ids:
            return
        async with self._lock:
            await asyncio.to_thread(self._delete, list(video_ids))

    def _delete(self, video_ids: list[str]) -> None:
        writer = self._open_writer()
        for video_id in video_ids:
            writer.delete_documents_by_term("video_id", video_id)
        self._commit()

    def _commit(self) -> None:
        self._open_writer().commit()
        self._opened().reload()

    def _to_tantivy(self, doc: VideoDocument) -> tantivy.Document:
        out = tantivy.Document()
        out.add_text("video_id", doc.video_id)
        out.add_text("title", doc.title)
        out.add_text("description", doc.description)
        for tag in doc.tags:
            out.add_text("tags", tag)
            out.add_text("tags_text", tag)
        out.add_text("owner", doc.owner)
        out.add_boolean("searchable", is_searchable(doc))
        out.add_integer("views", doc.views)
        out.add_integer("recent_ms", recent_key(doc))
        out.add_bytes("source", json.dumps(to_source(doc)).encode())
        return out

    # -- reads -----------------------------------------------------------------------
    async def get(self, video_id: str) -> VideoDocument | None:
        index = self._opened()
        return await asyncio.to_thread(lambda: self._stored(index.searcher(), video_id))

    async def get_many(self, video_ids: Sequence[str]) -> dict[str, VideoDocument]:
        if not video_ids:
            return {}
        index, ids = self._opened(), list(dict.fromkeys(video_ids))
        return await asyncio.to_thread(lambda: self._stored_many(index.searcher(), ids))

    def _stored(self, searcher: tantivy.Searcher, video_id: str) -> VideoDocument | None:
        query = tantivy.Query.term_query(self._schema, "video_id", video_id)
        hits = searcher.search(query, 1, count=False).hits
        if not hits:
            return None
        return _from_tantivy(searcher.doc(hits[0][1]))

    def _stored_many(
        self, searcher: tantivy.Searcher, video_ids: list[str]
    ) -> dict[str, VideoDocument]:
        """The stored documents of ``video_ids`` (unique), by id, in one term-set query."""
        out: dict[str, VideoDocument] = {}
        for start in range(0, len(video_ids), _MAX_TERMS):
            chunk = video_ids[start : start + _MAX_TERMS]
            query = tantivy.Query.term_set_query(self._schema, "video_id", chunk)
            for _, address in searcher.search(query, len(chunk), count=False).hits:
                doc = _from_tantivy(searcher.doc(address))
                out[doc.video_id] = doc
        return out

    async def search(self, query: SearchQuery) -> SearchPage:
        cursor = self._codec.decode(query)
        rows = await asyncio.to_thread(self._search, query, cursor)
        return paginate(self._codec, query, rows)

    def _search(self, query: SearchQuery, cursor: Cursor | None) -> list[Row]:
        searcher = self._opened().searcher()
        order_field = SORT_FIELDS.get(query.sort)
        tq = self._build_query(query, cursor, order_field)
        return _scan(searcher, tq, order_field, cursor, want=query.page_size + 1)

    def _build_query(
        self, query: SearchQuery, cursor: Cursor | None, order_field: str | None
    ) -> tantivy.Query:
        schema, q = self._schema, tantivy.Query
        filters = [q.term_query(schema, "searchable", True)]
        filters += [q.term_query(schema, "tags", tag) for tag in query.tags]
        if query.owner is not None:
            filters.append(q.term_query(schema, "owner", query.owner))
        if cursor is not None and order_field is not None:
            filters.append(
                q.range_query(
                    schema, order_field, tantivy.FieldType.Integer, upper_bound=int(cursor.key)
                )
            )
        clauses = [(tantivy.Occur.Must, q.const_score_query(f, 0.0)) for f in filters]
        clauses.append((tantivy.Occur.Must, self._text_query(query.terms)))
        return q.boolean_query(clauses)

    def _text_query(self, terms: list[str]) -> tantivy.Query:
        if not terms:
            return tantivy.Query.const_score_query(tantivy.Query.all_query(), 1.0)
        last = len(terms) - 1
        per_term = [self._term_query(term, i == last) for i, term in enumerate(terms)]
        return tantivy.Query.boolean_query([(tantivy.Occur.Must, tq) for tq in per_term])

    def _term_query(self, term: str, is_last: bool) -> tantivy.Query:
        """Best field wins: exact match, typo within fuzziness(term), or (last) prefix."""
        schema, q = self._schema, tantivy.Query
        per_field = []
        for field, boost in TEXT_FIELDS:
            alternatives = [q.boost_query(q.term_query(schema, field, term), EXACT_BOOST)]
            distance = fuzziness(term)
            if distance:
                alternatives.append(q.fuzzy_term_query(schema, field, term, distance=distance))
            if is_last and len(term) >= MIN_PREFIX_CHARS:
                alternatives.append(q.fuzzy_term_query(schema, field, term, 0, prefix=True))
            should = q.boolean_query([(tantivy.Occur.Should, alt) for alt in alternatives])
            per_field.append(q.boost_query(should, boost))
        return q.disjunction_max_query(per_field)

    # -- helpers ---------------------------------------------------------------------
    def _opened(self) -> tantivy.Index:
        if self._index is None:
            raise RuntimeError("TantivyIndex.ensure() was not called (or close() was)")
        return self._index

    def _open_writer(self) -> tantivy.IndexWriter:
        if self._read_only:
            raise RuntimeError("this TantivyIndex is read-only")
        if self._writer is None:
            raise RuntimeError("TantivyIndex.ensure() was not called (or close() was)")
        return self._writer


def _latest_versions(docs: Sequence[VideoDocument]) -> list[VideoDocument]:
    """One document per video_id within a batch: the highest version wins."""
    latest: dict[str, VideoDocument] = {}
    for doc in docs:
        seen = latest.get(doc.video_id)
        if seen is None or doc.version > seen.version:
            latest[doc.video_id] = doc
    return list(latest.values())


def _from_tantivy(doc: tantivy.Document) -> VideoDocument:
    raw = doc.get_first("source")
    if not isinstance(raw, bytes):
        raise TypeError("stored document has no source")
    return from_source(json.loads(raw))


def _scan(
    searcher: tantivy.Searcher,
    query: tantivy.Query,
    order_field: str | None,
    cursor: Cursor | None,
    want: int,
) -> list[Row]:
    """The first ``want`` rows after the cursor, ordered (key desc, video_id asc).

    Hits arrive ordered by key desc with ties in arbitrary order; once a batch ends on
    a key below the want-th best row kept, no unseen hit can enter the result. A tie group
    can be long (every video with 0 views), so the scan reads only each hit's id and
    decodes the full documents of the rows it returns.
    """
    keys: list[tuple[SortKey, str, tantivy.DocAddress]] = []
    batch = max(want * 2, _MIN_BATCH)
    offset = 0
    while True:
        hits = searcher.search(
            query, batch, count=False, order_by_field=order_field, offset=offset
        ).hits
        keys.extend(_keys_after(searcher, hits, cursor))
        keys.sort(key=lambda k: (-k[0], k[1]))
        del keys[want:]  # a dropped row is beaten by ``want`` rows already; later hits rank lower
        if len(hits) < batch or (len(keys) >= want and hits[-1][0] < keys[want - 1][0]):
            break
        offset += batch
    return [
        (key, to_hit(_from_tantivy(searcher.doc(address)), _score(key, order_field)))
        for key, _, address in keys[:want]
    ]


def _keys_after(
    searcher: tantivy.Searcher,
    hits: list[tuple[SortKey, tantivy.DocAddress]],
    cursor: Cursor | None,
) -> list[tuple[SortKey, str, tantivy.DocAddress]]:
    out: list[tuple[SortKey, str, tantivy.DocAddress]] = []
    for key, address in hits:
        video_id = searcher.doc(address).get_first("video_id")
        if not isinstance(video_id, str):
            raise TypeError("stored document has no video_id")
        if cursor is not None and not cursor.precedes(key, video_id):
            continue
        out.append((key, video_id, address))
    return out


def _score(key: SortKey, order_field: str | None) -> float | None:
    return None if order_field is not None else float(key)
