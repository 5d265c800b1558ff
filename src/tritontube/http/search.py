"""Search and recommendations over the search index (read-only) and the worker's tables.

``GET /v1/videos:search?q=&tags=&owner=&sort=relevance|views|recent&pageSize=&pageToken=``
``GET /v1/videos:recommendations?videoId=&pageSize=``

Only READY + public videos are ever returned: the index filters them. ``owner=me`` means
the signed-in user. ``tags`` may repeat and/or be comma-separated; all must match.
Ranking of recommendations: see ``domain.recommend`` and docs/search.md.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web

from tritontube import metrics
from tritontube.domain import analytics as an
from tritontube.domain import recommend
from tritontube.http import keys
from tritontube.http.auth import current_user
from tritontube.http.params import parse_query
from tritontube.http.problems import ProblemError
from tritontube.http.videos import state_unavailable
from tritontube.http.worker_client import WorkerQueryError, WorkerUnavailableError
from tritontube.indexer.documents import VideoDocument, is_searchable
from tritontube.indexer.port import SearchIndex, SearchUnavailable
from tritontube.indexer.query import MAX_PAGE_SIZE, InvalidQueryError, SearchHit, SearchQuery
from tritontube.queries import SEARCH_WIRE_NAMES, RecommendationsParams, SearchParams

log = logging.getLogger(__name__)

HISTORY_FOR_PROFILE = 10  # recent history items whose tags shape the profile
COWATCH_VIEWERS = 10  # recent viewers of the seed whose histories are read
COWATCH_CANDIDATES = 20
TRENDING_CANDIDATES = 30
TAG_QUERIES = 3


def _invalid(exc: InvalidQueryError) -> ProblemError:
    """422 naming the parameter of a query the index refused (a forged or stale pageToken)."""
    field = SEARCH_WIRE_NAMES.get(exc.field, exc.field)
    return ProblemError(
        422,
        "Invalid request",
        f"invalid field(s): {field}",
        code="VALIDATION",
        errors=[{"field": field, "message": str(exc)}],
    )


def _unavailable(exc: Exception) -> ProblemError:
    return ProblemError(
        503,
        "Service Unavailable",
        f"search unavailable: {exc}",
        code="UNAVAILABLE",
        headers={"Retry-After": "2"},
    )


def build_query(request: web.Request, user: str) -> SearchQuery:
    """The validated SearchQuery of a request; 422 naming the parameter otherwise."""
    params = parse_query(request, SearchParams)
    try:
        return params.to_search_query(user)
    except InvalidQueryError as exc:
        raise _invalid(exc) from None


def hit_json(hit: SearchHit) -> dict[str, Any]:
    return {
        "videoId": hit.video_id,
        "title": hit.title,
        "description": hit.description,
        "tags": list(hit.tags),
        "owner": hit.owner,
        "views": hit.views,
        "durationSeconds": hit.duration_seconds,
        "readyAt": None if hit.ready_at is None else hit.ready_at.isoformat(),
        "score": hit.score,
    }


async def search_videos(request: web.Request) -> web.Response:
    """GET /v1/videos:search"""
    query = build_query(request, current_user(request))
    try:
        page = await request.app[keys.SEARCH].search(query)
    except InvalidQueryError as exc:
        raise _invalid(exc) from None
    except SearchUnavailable as exc:
        raise _unavailable(exc) from exc
    return web.json_response(
        {"results": [hit_json(h) for h in page.results], "nextPageToken": page.next_page_token}
    )


# -- recommendations -------------------------------------------------------------------
@dataclass(frozen=True)
class Signals:
    """What the workers know about the viewer and the seed video."""

    history: tuple[an.HistoryEntry, ...]
    seed_viewers: list[str]
    trending: dict[str, float]


T = TypeVar("T")


async def _degrade(read: Awaitable[T], what: str) -> T | None:
    """A worker read, or None when the worker refused the query itself (a defect, logged).

    An unavailable worker (rebalancing, down) is NOT degraded around: recommendations made
    without the viewer's history or without some partitions' trending would be a different
    answer than the complete one, so the request is a 503 with Retry-After instead."""
    try:
        return await read
    except WorkerQueryError as exc:
        log.warning("worker read %s refused: %s", what, exc)
        return None


async def _none() -> None:
    return None


async def _signals(request: web.Request, user: str, seed_id: str | None) -> Signals:
    """History, trending and the anchor's recent viewers, in as few round trips as possible:
    with a seed its stats are fetched alongside the rest; without one the anchor is the
    last watched video, known only once the history is in."""
    worker = request.app[keys.WORKER]
    seed_stats = _degrade(worker.stats(seed_id), "stats") if seed_id is not None else _none()
    history, trending, stats = await asyncio.gather(
        _degrade(worker.history(user), "history"),
        _degrade(worker.trending(TRENDING_CANDIDATES), "trending"),
        seed_stats,
    )
    entries = history.entries if history is not None else ()
    if seed_id is None and entries:
        stats = await _degrade(worker.stats(entries[0].video_id), "stats")
    viewers = [v for v in (stats.recent_viewers if stats else ()) if v != user]
    scores = {e.video_id: e.score for e in (trending.entries if trending else ())}
    return Signals(history=entries, seed_viewers=viewers[-COWATCH_VIEWERS:], trending=scores)


async def _cowatched(request: web.Request, viewers: list[str], exclude: str | None) -> Counter[str]:
    worker = request.app[keys.WORKER]
    histories = await asyncio.gather(*(_degrade(worker.history(v), "history") for v in viewers))
    counts: Counter[str] = Counter()
    for h in histories:
        for vid in {e.video_id for e in (h.entries if h else ())}:
            if vid != exclude:
                counts[vid] += 1
    return counts


def _from_doc(
    doc: VideoDocument, trending: dict[str, float], cowatch: int = 0
) -> recommend.Candidate:
    return recommend.Candidate(
        video_id=doc.video_id,
        owner=doc.owner,
        tags=doc.tags,
        views=doc.views,
        trending=trending.get(doc.video_id, 0.0),
        cowatch=cowatch,
    )


def _from_hit(hit: SearchHit, trending: dict[str, float]) -> recommend.Candidate:
    return recommend.Candidate(
        video_id=hit.video_id,
        owner=hit.owner,
        tags=hit.tags,
        views=hit.views,
        trending=trending.get(hit.video_id, 0.0),
    )


async def _hits(search: SearchIndex, query: SearchQuery) -> list[SearchHit]:
    return (await search.search(query)).results


async def _get(search: SearchIndex, video_id: str | None) -> VideoDocument | None:
    return None if video_id is None else await search.get(video_id)


async def recommendations(request: web.Request) -> web.Response:
    """GET /v1/videos:recommendations"""
    user = current_user(request)
    params = parse_query(request, RecommendationsParams)
    seed_id, limit = params.video_id, params.page_size
    started = time.perf_counter()
    search = request.app[keys.SEARCH]
    try:
        body = await _recommend(request, search, user, seed_id, limit)
    except SearchUnavailable as exc:
        raise _unavailable(exc) from exc
    except WorkerUnavailableError as exc:
        raise state_unavailable(exc) from exc
    metrics.RECOMMENDATION_SECONDS.observe(time.perf_counter() - started)
    return web.json_response(body)


async def _recommend(
    request: web.Request, search: SearchIndex, user: str, seed_id: str | None, limit: int
) -> dict[str, Any]:
    """Independent reads run concurrently, in three rounds: the seed and the worker's
    signals; the history's documents, the co-watchers' histories and the tag-free
    candidate pages; then the tag pages (they need the profile) and the documents of the
    co-watched and trending videos."""
    seed, signals = await asyncio.gather(_get(search, seed_id), _signals(request, user, seed_id))
    if (
        seed_id is not None
        and (seed is None or not is_searchable(seed))
        and (seed is None or seed.owner != user)
    ):
        raise ProblemError(404, "Not Found", "no such video", code="NOT_FOUND")
    recent_ids = [e.video_id for e in signals.history[:HISTORY_FOR_PROFILE]]
    wide = min(MAX_PAGE_SIZE, max(limit * 2, 20))
    general = [
        SearchQuery(q="", sort="views", page_size=wide),
        SearchQuery(q="", sort="recent", page_size=min(MAX_PAGE_SIZE, limit)),
    ]
    history_docs, cowatch, general_pages = await asyncio.gather(
        search.get_many(recent_ids),
        _cowatched(request, signals.seed_viewers, seed_id),
        asyncio.gather(*(_hits(search, q) for q in general)),
    )
    affinity = recommend.tag_affinity(history_docs[i].tags for i in recent_ids if i in history_docs)
    profile = recommend.Profile(
        seed_id=seed_id,
        seed_tags=frozenset(seed.tags) if seed else frozenset(),
        tag_affinity=affinity,
        finished=frozenset(e.video_id for e in signals.history if e.completed),
        watched=frozenset(e.video_id for e in signals.history),
    )
    candidates, shown = await _candidates(
        search, profile, signals, cowatch, wide, list(general_pages)
    )
    ranked = recommend.rank(candidates, profile, limit)
    results = [
        {**shown[s.candidate.video_id], "score": s.score, "reasons": list(s.reasons)}
        for s in ranked
        if s.candidate.video_id in shown
    ]
    return {"results": results, "coldStart": profile.is_cold}


async def _candidates(
    search: SearchIndex,
    profile: recommend.Profile,
    signals: Signals,
    cowatch: Counter[str],
    wide: int,
    general_pages: list[list[SearchHit]],
) -> tuple[list[recommend.Candidate], dict[str, dict[str, Any]]]:
    """The candidates and, by id, how each is shown (from the page or document it came from)."""
    tags = list(profile.seed_tags)[:TAG_QUERIES]
    tags += [
        t for t, _ in sorted(profile.tag_affinity.items(), key=lambda kv: -kv[1]) if t not in tags
    ][: max(0, TAG_QUERIES - len(tags))]
    queries = [SearchQuery(q="", tags=(t,), sort="views", page_size=wide) for t in tags]
    by_id = [v for v, _ in cowatch.most_common(COWATCH_CANDIDATES)]
    by_id += [v for v in signals.trending if v not in by_id]
    tag_pages, docs = await asyncio.gather(
        asyncio.gather(*(_hits(search, q) for q in queries)), search.get_many(by_id)
    )
    hits = [h for page in [*tag_pages, *general_pages] for h in page]
    out = [_from_hit(h, signals.trending) for h in hits]
    shown = {h.video_id: _hit_display(h) for h in hits}
    for d in docs.values():
        if is_searchable(d):
            out.append(_from_doc(d, signals.trending, cowatch.get(d.video_id, 0)))
            shown[d.video_id] = doc_json(d)
    return out, shown


def _hit_display(hit: SearchHit) -> dict[str, Any]:
    shown = hit_json(hit)
    del shown["score"]
    return shown


def doc_json(doc: VideoDocument) -> dict[str, Any]:
    return {
        "videoId": doc.video_id,
        "title": doc.title,
        "description": doc.description,
        "tags": list(doc.tags),
        "owner": doc.owner,
        "views": doc.views,
        "durationSeconds": doc.duration_seconds,
        "readyAt": None if doc.ready_at is None else doc.ready_at.isoformat(),
    }
