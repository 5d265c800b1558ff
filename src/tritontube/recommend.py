"""Recommendations: the use case behind ``RecommendVideos``, gathering and ranking candidates.

What to rank comes from the workers (the viewer's history, trending, the co-watchers of the
seed video) and the search index (videos sharing tags, the most viewed and the newest); how to
rank is pure (``domain.recommend``, docs/search.md). Only READY public videos are ever
recommended: every candidate is a search hit or a searchable document. The workers and the
index must both answer (a 503 otherwise): recommendations without some of the signals would
be another answer than the complete one.
REST: ``http/search.py``; gRPC: ``grpc/servicer.py``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

from tritontube import metrics
from tritontube.domain import analytics as an
from tritontube.domain import recommend
from tritontube.domain.video import is_deleted
from tritontube.http.worker_client import WorkerQueryError, WorkerUnavailableError
from tritontube.indexer.documents import VideoDocument, is_searchable
from tritontube.indexer.port import SearchIndex, SearchUnavailable
from tritontube.indexer.query import MAX_PAGE_SIZE, SearchHit, SearchQuery, to_hit
from tritontube.problems import not_found, unavailable
from tritontube.queries import RecommendationsParams
from tritontube.search import search_unavailable
from tritontube.services import Services

log = logging.getLogger(__name__)

HISTORY_FOR_PROFILE = 10  # recent history items whose tags shape the profile
COWATCH_VIEWERS = 10  # recent viewers of the seed whose histories are read
COWATCH_CANDIDATES = 20
TRENDING_CANDIDATES = 30
TAG_QUERIES = 3

T = TypeVar("T")


@dataclass(frozen=True)
class Recommended:
    """One recommendation: the video as search shows it, its score and why."""

    hit: SearchHit
    score: float
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Recommendations:
    results: list[Recommended]
    cold_start: bool


@dataclass(frozen=True)
class Signals:
    """What the workers know about the viewer and the seed video."""

    history: tuple[an.HistoryEntry, ...]
    seed_viewers: list[str]
    trending: dict[str, float]


async def recommend_videos(
    services: Services, user: str, params: RecommendationsParams
) -> Recommendations:
    started = time.perf_counter()
    try:
        found = await _recommend(services, user, params.video_id, params.page_size)
    except SearchUnavailable as exc:
        raise search_unavailable(exc) from exc
    except WorkerUnavailableError as exc:
        raise unavailable("video state", exc) from exc
    metrics.RECOMMENDATION_SECONDS.observe(time.perf_counter() - started)
    return found


async def _degrade(read: Awaitable[T], what: str) -> T | None:
    """A worker read, or None when the worker refused the query itself (a defect, logged).

    An unavailable worker (rebalancing, down) is NOT degraded around: recommendations made
    without the viewer's history or without some partitions' trending would be a different
    answer than the complete one, so the call is a 503 with Retry-After instead."""
    try:
        return await read
    except WorkerQueryError as exc:
        log.warning("worker read %s refused: %s", what, exc)
        return None


async def _none() -> None:
    return None


async def _signals(services: Services, user: str, seed_id: str | None) -> Signals:
    """History, trending and the anchor's recent viewers, in as few round trips as possible:
    with a seed its stats are fetched alongside the rest; without one the anchor is the
    last watched video, known only once the history is in."""
    workers = services.workers
    seed_stats = _degrade(workers.stats(seed_id), "stats") if seed_id is not None else _none()
    history, trending, stats = await asyncio.gather(
        _degrade(workers.history(user), "history"),
        _degrade(workers.trending(TRENDING_CANDIDATES), "trending"),
        seed_stats,
    )
    entries = history.entries if history is not None else ()
    if seed_id is None and entries:
        stats = await _degrade(workers.stats(entries[0].video_id), "stats")
    viewers = [v for v in (stats.recent_viewers if stats else ()) if v != user]
    scores = {e.video_id: e.score for e in (trending.entries if trending else ())}
    return Signals(history=entries, seed_viewers=viewers[-COWATCH_VIEWERS:], trending=scores)


async def _cowatched(services: Services, viewers: list[str], exclude: str | None) -> Counter[str]:
    workers = services.workers
    histories = await asyncio.gather(*(_degrade(workers.history(v), "history") for v in viewers))
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


async def _seed_is_visible(services: Services, user: str, seed: VideoDocument | None) -> bool:
    """A seed the user may recommend after: a searchable video, or one of their own (unless
    they deleted it; the index may not have caught up with the deletion yet)."""
    if seed is None:
        return False
    if is_searchable(seed):
        return True
    if seed.owner != user:
        return False
    return not is_deleted(await services.workers.video_state(seed.video_id))


async def _recommend(
    services: Services, user: str, seed_id: str | None, limit: int
) -> Recommendations:
    """Independent reads run concurrently, in three rounds: the seed and the worker's
    signals; the history's documents, the co-watchers' histories and the tag-free
    candidate pages; then the tag pages (they need the profile) and the documents of the
    co-watched and trending videos."""
    search = services.search
    seed, signals = await asyncio.gather(_get(search, seed_id), _signals(services, user, seed_id))
    if seed_id is not None and not await _seed_is_visible(services, user, seed):
        raise not_found()
    recent_ids = [e.video_id for e in signals.history[:HISTORY_FOR_PROFILE]]
    wide = min(MAX_PAGE_SIZE, max(limit * 2, 20))
    general = [
        SearchQuery(q="", sort="views", page_size=wide),
        SearchQuery(q="", sort="recent", page_size=min(MAX_PAGE_SIZE, limit)),
    ]
    history_docs, cowatch, general_pages = await asyncio.gather(
        search.get_many(recent_ids),
        _cowatched(services, signals.seed_viewers, seed_id),
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
        Recommended(hit=shown[s.candidate.video_id], score=s.score, reasons=tuple(s.reasons))
        for s in ranked
        if s.candidate.video_id in shown
    ]
    return Recommendations(results=results, cold_start=profile.is_cold)


async def _candidates(
    search: SearchIndex,
    profile: recommend.Profile,
    signals: Signals,
    cowatch: Counter[str],
    wide: int,
    general_pages: list[list[SearchHit]],
) -> tuple[list[recommend.Candidate], dict[str, SearchHit]]:
    """The candidates and, by id, how each is shown (the page or document it came from)."""
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
    shown = {h.video_id: h for h in hits}
    for d in docs.values():
        if is_searchable(d):
            out.append(_from_doc(d, signals.trending, cowatch.get(d.video_id, 0)))
            shown[d.video_id] = to_hit(d, None)
    return out, shown
