"""Embedded search backend: a tantivy index on disk (the default for dev and tests).

tantivy is synchronous and CPU-bound, so every call runs in a worker thread. The writer
opens on the first write and stays open until ``release()``/``close()``; each write call
commits and reloads the reader, so an upsert is searchable as soon as it returns. Writes
are serialised by an asyncio.Lock. tantivy allows one writer per directory (a lock file):
while another process holds it, a write raises SearchUnavailable (the caller retries), and
the worker that owns the one ``search-documents`` partition is the writer
(``agents.indexer``). Other processes (the HTTP API) open the index ``read_only`` and their
reader reloads on its own shortly after each commit (or at once on ``refresh()``).

search_after on (key, video_id) is emulated: tantivy orders by score or one fast field and
breaks ties by document address. For views/recent (and browsing without terms, where every
hit scores the same) a page is at most three searches that read only the documents of the
hits they return (and of hits whose ids share their first bytes): the
rest of the cursor's tie group (in video_id order: tantivy orders it by id_key, an integer fast
field of the id's first bytes, and ids sharing those bytes by their documents),
the best keys below the cursor, and the first ids of the tie group at the page's boundary.
A page therefore costs the same whether a tie group holds ten videos or every video.
Relevance pages with terms follow the same plan, but a score cannot be a query filter: the
hits down to a tie group's score are read (scores and addresses only, in growing batches)
and the group's lowest ids found among the hits in video_id order. They cost O(depth).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import tantivy

from tritontube.indexer.cursor import Cursor, CursorCodec, SortKey, paginate
from tritontube.indexer.documents import (
    VideoDocument,
    from_source,
    is_searchable,
    recent_key,
    to_source,
)
from tritontube.indexer.port import SearchUnavailable, SearchWriterBusy
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
# A tie group up to this size is ordered by reading its documents' ids (~2 us each); a
# larger one by reading the hits in video_id order (one search: ~25 ms over 15k hits).
_GROUP_DOCS: Final = 4096
# Each batch of ranked hits reads this many times more than the last: every search scans
# all the matches whatever its size, so few large batches beat many small ones.
_GROWTH: Final = 16
_MAX_TERMS: Final = 1024  # ids per term-set query (one document per id)
_ID_KEY_BYTES: Final = 7  # id_key's bytes of video_id: fits a positive i64
BROWSE_SCORE: Final = 1.0  # what every hit of a query without terms scores (_text_query)

Row = tuple[SortKey, SearchHit]
Key = tuple[SortKey, str, tantivy.DocAddress]  # a hit's sort key, video_id and address


class IndexSchemaError(RuntimeError):
    """The directory holds an index of an older schema; it must be rebuilt."""


def build_schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("video_id", stored=True, tokenizer_name="raw")
    # video_id's first bytes as an integer (id_key): ordering hits by it is ordering them by
    # video_id, up to ties among ids sharing those bytes, which are ordered by their ids.
    # tantivy orders by an integer fast field ~50x faster than by a text one (1 ms against
    # 75 ms for 200 of 30k hits, 100k documents), and reads it without loading documents.
    builder.add_integer_field("id_key", indexed=True, fast=True)
    for name, _ in TEXT_FIELDS:
        # no positions: nothing runs phrase queries, and they make indexing dearer
        builder.add_text_field(name, tokenizer_name=TEXT_TOKENIZER, index_option="freq")
    builder.add_text_field("tags", tokenizer_name="raw")
    builder.add_text_field("owner", tokenizer_name="raw")
    builder.add_boolean_field("searchable", indexed=True)
    builder.add_integer_field("views", indexed=True, fast=True)
    builder.add_integer_field("recent_ms", indexed=True, fast=True)
    builder.add_integer_field("version", fast=True)
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
        try:
            index = tantivy.Index(self._schema, path=str(self._path), reuse=True)
        except ValueError as exc:
            if "schema does not match" not in str(exc):
                raise
            raise IndexSchemaError(
                f"the tantivy index at {self._path} was built with another schema: remove the "
                "directory and rebuild it (`tritontube replay --rebuild --execute`, or replay the "
                "indexer's input topics)"
            ) from exc
        index.register_tokenizer(TEXT_TOKENIZER, text_analyzer())
        self._index = index

    async def ping(self) -> None:
        if self._index is None:
            raise SearchUnavailable("tantivy index is not open")
        if not await asyncio.to_thread(tantivy.Index.exists, str(self._path)):
            raise SearchUnavailable(f"tantivy index at {self._path} is gone")

    async def close(self) -> None:
        async with self._lock:
            await self._release_locked()
            self._index = None

    async def release(self) -> None:
        """Give up the writer (and its directory lock) for another process to take."""
        async with self._lock:
            await self._release_locked()

    async def _release_locked(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            # Consumes the writer; the directory lock goes with it.
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
        stored = self._stored_versions(index.searcher(), [doc.video_id for doc in docs])
        applied = 0
        for doc in docs:
            old = stored.get(doc.video_id)
            if old is not None:
                if doc.version <= old:
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
        out.add_integer("id_key", id_key(doc.video_id))
        out.add_text("title", doc.title)
        out.add_text("description", doc.description)
        for tag in doc.tags:
            out.add_text("tags", tag)
            out.add_text("tags_text", tag)
        out.add_text("owner", doc.owner)
        out.add_boolean("searchable", is_searchable(doc))
        out.add_integer("views", doc.views)
        out.add_integer("recent_ms", recent_key(doc))
        out.add_integer("version", doc.version)
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

    def _stored_versions(self, searcher: tantivy.Searcher, video_ids: list[str]) -> dict[str, int]:
        """The stored version of each of ``video_ids`` (unique) that exists, by id, read from
        fast fields: an upsert decides what to write without loading a document (only ids
        that share an ``id_key`` with another of the chunk are told apart by their document)."""
        out: dict[str, int] = {}
        for start in range(0, len(video_ids), _MAX_TERMS):
            chunk = video_ids[start : start + _MAX_TERMS]
            by_key: dict[int, list[str]] = {}
            for video_id in chunk:
                by_key.setdefault(id_key(video_id), []).append(video_id)
            query = tantivy.Query.term_set_query(self._schema, "video_id", chunk)
            addresses = [a for _, a in searcher.search(query, len(chunk), count=False).hits]
            keys = searcher.fast_field_values("id_key", addresses)
            versions = searcher.fast_field_values("version", addresses)
            for address, key, version in zip(addresses, keys, versions, strict=True):
                if not isinstance(version, int) or not isinstance(key, int):
                    raise TypeError("stored document without id_key or version")
                ids = by_key.get(key, [])
                out[ids[0] if len(ids) == 1 else _video_id(searcher, address)] = version
        return out

    async def search(self, query: SearchQuery) -> SearchPage:
        cursor = self._codec.decode(query)
        rows = await asyncio.to_thread(self._search, query, cursor)
        return paginate(self._codec, query, rows)

    def _search(self, query: SearchQuery, cursor: Cursor | None) -> list[Row]:
        searcher = self._opened().searcher()
        order_field = SORT_FIELDS.get(query.sort)
        base, want = self._build_query(query), query.page_size + 1
        if order_field is not None:
            keys = self._scan_by_field(searcher, base, order_field, cursor, want)
        elif not query.terms:  # one tie group: the order is video_id's
            after = None if cursor is None else cursor.video_id
            keys = self._scan_ties(searcher, base, None, BROWSE_SCORE, after, want)
        else:
            keys = self._scan_by_score(searcher, base, cursor, want)
        return [
            (key, to_hit(_from_tantivy(searcher.doc(address)), _score(key, order_field)))
            for key, _, address in keys
        ]

    def _scan_by_field(
        self,
        searcher: tantivy.Searcher,
        base: tantivy.Query,
        field: str,
        cursor: Cursor | None,
        want: int,
    ) -> list[Key]:
        """The first ``want`` keys after the cursor, ordered (key desc, video_id asc).

        The top ``need`` hits by key are exact except in their lowest key K, whose tie group
        may be longer than what fits: every hit above K is in, and the group at K is filled
        with its lowest ids, which tantivy finds by ordering that group by video_id.
        """
        keys: list[Key] = []
        below: int | None = None
        if cursor is not None:
            below = int(cursor.key)
            keys = self._scan_ties(searcher, base, field, below, cursor.video_id, want)
        need = want - len(keys)
        if need <= 0:
            return keys
        query = base if below is None else self._and(base, self._below(field, below))
        hits = searcher.search(query, need, count=False, order_by_field=field).hits
        if not hits:
            return keys
        boundary = hits[-1][0]
        above = _above(searcher, hits, boundary)
        ties = self._scan_ties(searcher, base, field, boundary, None, need - len(above))
        return keys + above + ties

    def _scan_by_score(
        self, searcher: tantivy.Searcher, query: tantivy.Query, cursor: Cursor | None, want: int
    ) -> list[Key]:
        """The first ``want`` hits after the cursor by relevance, ordered (score desc, id asc):
        :meth:`_scan_by_field`'s plan, with tie groups found among the ranked hits."""
        ranked = _Ranked(searcher, query)
        keys: list[Key] = []
        start = 0
        if cursor is not None:
            group, start = ranked.group(float(cursor.key))
            keys = self._lowest_ids(searcher, query, group, cursor.key, cursor.video_id, want)
        need = want - len(keys)
        window = ranked.window(start, need) if need > 0 else []
        if not window:
            return keys
        boundary = window[-1][0]
        above = _above(searcher, window, boundary)
        group, _ = ranked.group(boundary)
        ties = self._lowest_ids(searcher, query, group, boundary, None, need - len(above))
        return keys + above + ties

    def _lowest_ids(
        self,
        searcher: tantivy.Searcher,
        query: tantivy.Query,
        group: dict[tuple[int, int], tantivy.DocAddress],
        key: SortKey,
        after: str | None,
        limit: int,
    ) -> list[Key]:
        """The ``limit`` lowest ids > ``after`` of a tie group (hits of ``query``, by address):
        a small group ordered by its id keys, a large one from the hits in video_id order."""
        if len(group) <= max(limit, _GROUP_DOCS):
            addresses = list(group.values())
            keys = _ints(searcher.fast_field_values("id_key", addresses))
            ordered = sorted(zip(keys, addresses, strict=True), key=_first)
            runs = (list(a for _, a in run) for _, run in itertools.groupby(ordered, _first))
            return _first_ids(searcher, runs, key, after, limit, None)
        return self._scan_id_order(
            searcher, query, key, after, limit, group, max(limit * 8, 4 * _MIN_BATCH), _GROWTH
        )

    def _scan_ties(
        self,
        searcher: tantivy.Searcher,
        base: tantivy.Query,
        field: str | None,
        key: SortKey,
        after: str | None,
        limit: int,
    ) -> list[Key]:
        """Up to ``limit`` hits whose ``field`` equals ``key`` (every hit when ``field`` is
        None), with video_id > ``after``, in video_id order."""
        query = base if field is None else self._and(base, self._equal(field, int(key)))
        return self._scan_id_order(searcher, query, key, after, limit, None, max(limit, 8))

    def _scan_id_order(
        self,
        searcher: tantivy.Searcher,
        query: tantivy.Query,
        key: SortKey,
        after: str | None,
        limit: int,
        members: dict[tuple[int, int], tantivy.DocAddress] | None,
        batch: int,
        growth: int = 1,
    ) -> list[Key]:
        """The first ``limit`` hits of ``query`` (only ``members``, if given) with video_id >
        ``after``, in video_id order: hits at or past ``after``'s id key, read in id-key order."""
        if after is not None:
            query = self._and(query, self._at_least("id_key", id_key(after)))
        runs = _id_key_runs(searcher, query, batch, growth)
        return _first_ids(searcher, runs, key, after, limit, members)

    def _at_least(self, field: str, value: int) -> tantivy.Query:
        return tantivy.Query.range_query(
            self._schema, field, tantivy.FieldType.Integer, lower_bound=value
        )

    def _build_query(self, query: SearchQuery) -> tantivy.Query:
        schema, q = self._schema, tantivy.Query
        filters = [q.term_query(schema, "searchable", True)]
        filters += [q.term_query(schema, "tags", tag) for tag in query.tags]
        if query.owner is not None:
            filters.append(q.term_query(schema, "owner", query.owner))
        clauses = [(tantivy.Occur.Must, q.const_score_query(f, 0.0)) for f in filters]
        clauses.append((tantivy.Occur.Must, self._text_query(query.terms)))
        return q.boolean_query(clauses)

    def _below(self, field: str, key: int) -> tantivy.Query:
        return tantivy.Query.range_query(
            self._schema, field, tantivy.FieldType.Integer, upper_bound=key, include_upper=False
        )

    def _equal(self, field: str, key: int) -> tantivy.Query:
        return tantivy.Query.range_query(
            self._schema, field, tantivy.FieldType.Integer, lower_bound=key, upper_bound=key
        )

    @staticmethod
    def _and(query: tantivy.Query, restriction: tantivy.Query) -> tantivy.Query:
        """``query`` restricted to ``restriction``'s matches, scores unchanged."""
        return tantivy.Query.boolean_query(
            [
                (tantivy.Occur.Must, query),
                (tantivy.Occur.Must, tantivy.Query.const_score_query(restriction, 0.0)),
            ]
        )

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
        """The writer, opened on first use. tantivy allows one per directory (a lock file):
        while another process holds it, writes are unavailable, not failed."""
        if self._read_only:
            raise RuntimeError("this TantivyIndex is read-only")
        if self._writer is None:
            try:
                self._writer = self._opened().writer(heap_size=self._heap, num_threads=1)
            except ValueError as exc:
                if "lock" not in str(exc).lower():
                    raise
                raise SearchWriterBusy(
                    f"the index writer of {self._path} is held by another process"
                ) from exc
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


class _Ranked:
    """A query's hits by score, read in growing batches as far as a caller needs them."""

    def __init__(self, searcher: tantivy.Searcher, query: tantivy.Query) -> None:
        self._searcher = searcher
        self._query = query
        self._hits: list[tuple[float, tantivy.DocAddress]] = []
        self._complete = False

    def _read(self, count: int) -> None:
        if self._complete or count <= len(self._hits):
            return
        size = max(count, _GROWTH * len(self._hits), _MIN_BATCH)
        self._hits = self._searcher.search(self._query, size, count=False).hits
        self._complete = len(self._hits) < size

    def window(self, start: int, count: int) -> list[tuple[float, tantivy.DocAddress]]:
        self._read(start + count)
        return self._hits[start : start + count]

    def group(self, score: float) -> tuple[dict[tuple[int, int], tantivy.DocAddress], int]:
        """The hits scoring exactly ``score`` (by address) and how many hits score >= it."""
        while not self._complete and (not self._hits or self._hits[-1][0] >= score):
            self._read(max(_GROWTH * len(self._hits), _MIN_BATCH))
        end = next((i for i, (k, _) in enumerate(self._hits) if k < score), len(self._hits))
        group = {_where(a): a for k, a in self._hits[:end] if k == score}
        return group, end


def _where(address: tantivy.DocAddress) -> tuple[int, int]:
    return address.segment_ord, address.doc


def id_key(video_id: str) -> int:
    """The first ``_ID_KEY_BYTES`` bytes of ``video_id`` (UTF-8, zero-padded) as an integer:
    ids in byte order have keys in the same order (equal keys for a shared prefix)."""
    return int.from_bytes(video_id.encode()[:_ID_KEY_BYTES].ljust(_ID_KEY_BYTES, b"\0"), "big")


def _first(item: tuple[Any, tantivy.DocAddress]) -> Any:
    return item[0]


def _ints(values: Sequence[object]) -> list[int]:
    out = [v for v in values if isinstance(v, int)]
    if len(out) != len(values):
        raise TypeError("a stored document has no id_key")
    return out


def _id_key_runs(
    searcher: tantivy.Searcher, query: tantivy.Query, batch: int, growth: int = 1
) -> Iterator[list[tantivy.DocAddress]]:
    """The hits of ``query`` in id-key order, as runs of hits sharing a key, read from the
    fast field ``batch`` at a time (each batch ``growth`` times the last) as far as consumed."""
    offset = 0
    run: list[tantivy.DocAddress] = []
    run_key: object = None
    while True:
        hits = searcher.search(
            query, batch, count=False, order_by_field="id_key", order=tantivy.Order.Asc,
            offset=offset,
        ).hits  # fmt: skip
        for key, address in hits:
            if key != run_key and run:
                yield run
                run = []
            run_key = key
            run.append(address)
        if len(hits) < batch:
            if run:
                yield run
            return
        offset += batch
        batch *= growth


def _first_ids(
    searcher: tantivy.Searcher,
    runs: Iterable[list[tantivy.DocAddress]],
    key: SortKey,
    after: str | None,
    limit: int,
    members: dict[tuple[int, int], tantivy.DocAddress] | None,
) -> list[Key]:
    """The first ``limit`` hits (of ``members``, if given) with video_id > ``after`` from runs
    in id-key order: a run's ids are read from its documents and sorted (runs are one hit
    unless ids share their first bytes)."""
    out: list[Key] = []
    if limit <= 0:
        return out
    for run in runs:
        chosen = run if members is None else [a for a in run if _where(a) in members]
        rows = [(_video_id(searcher, a), a) for a in chosen]
        if len(rows) > 1:
            rows.sort(key=_first)
        for video_id, address in rows:
            if after is None or video_id > after:
                out.append((key, video_id, address))
                if len(out) == limit:
                    return out
    return out


def _above(
    searcher: tantivy.Searcher, hits: Sequence[tuple[SortKey, tantivy.DocAddress]], key: SortKey
) -> list[Key]:
    """The hits keyed above ``key``, ordered (key desc, video_id asc)."""
    rows = [(k, _video_id(searcher, address), address) for k, address in hits if k > key]
    rows.sort(key=lambda row: (-row[0], row[1]))
    return rows


def _video_id(searcher: tantivy.Searcher, address: tantivy.DocAddress) -> str:
    video_id = searcher.doc(address).get_first("video_id")
    if not isinstance(video_id, str):
        raise TypeError("stored document has no video_id")
    return video_id


def _score(key: SortKey, order_field: str | None) -> float | None:
    return None if order_field is not None else float(key)
