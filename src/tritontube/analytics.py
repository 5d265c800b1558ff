"""Watch analytics as the API reads them: the use cases behind ``ListTrendingVideos``,
``GetVideoStats`` and ``ListWatchHistory``.

Every read goes through the typed worker client, so it is complete with any number of
workers: trending is merged from every partition by the worker asked (a fan-out with a
deadline), a video's statistics and a user's history are keyed reads routed to their owner.
While the group rebalances the answer is a 503 with ``Retry-After``, never a partial one.
A deleted video is gone from all three: its document left the index (trending shows indexed,
searchable videos only), its statistics are behind the same visibility rule as the video, and
history entries of videos that no longer exist are left out.
REST: ``http/analytics.py``; gRPC: ``grpc/servicer.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from tritontube.domain import analytics as an
from tritontube.domain.events import VideoStats
from tritontube.domain.video import is_deleted
from tritontube.http.worker_client import WorkerQueryError, WorkerUnavailableError
from tritontube.indexer.documents import is_searchable
from tritontube.indexer.port import SearchUnavailable
from tritontube.indexer.query import SearchHit, to_hit
from tritontube.problems import Problem, unavailable
from tritontube.queries import HistoryParams, TrendingParams
from tritontube.services import Services
from tritontube.videos import load_viewable


def policy(services: Services) -> an.AnalyticsPolicy:
    a = services.settings.analytics
    return an.AnalyticsPolicy(
        trending_window_seconds=a.trending_window_seconds,
        trending_step_seconds=a.trending_step_seconds,
    )


def analytics_unavailable(exc: Exception) -> Problem:
    return unavailable("search" if isinstance(exc, SearchUnavailable) else "video state", exc)


@dataclass(frozen=True)
class Trending:
    hit: SearchHit
    score: float


async def trending(services: Services, params: TrendingParams) -> list[Trending]:
    size = params.page_size
    try:
        # Ask for more than shown: private, unfinished or deleted videos are dropped below.
        answer = await services.workers.trending(min(200, size * 2))
        docs = await services.search.get_many([e.video_id for e in answer.entries])
    except (WorkerUnavailableError, WorkerQueryError, SearchUnavailable) as exc:
        raise analytics_unavailable(exc) from exc
    results: list[Trending] = []
    for entry in answer.entries:
        doc = docs.get(entry.video_id)
        if doc is not None and is_searchable(doc):
            results.append(Trending(to_hit(doc, None), entry.score))
        if len(results) == size:
            break
    return results


@dataclass(frozen=True)
class Stats:
    video_id: str
    public: VideoStats
    folded: bool  # False: nobody watched it yet


async def video_stats(services: Services, user: str, video_id: str) -> Stats:
    state = await load_viewable(services, user, video_id)
    try:
        stats = await services.workers.stats(state.video_id)
    except (WorkerUnavailableError, WorkerQueryError) as exc:
        raise analytics_unavailable(exc) from exc
    now_ms = an.to_ms(services.clock.now())
    folded = stats or an.VideoAnalytics(video_id=state.video_id)
    return Stats(
        video_id=state.video_id,
        public=an.to_public(folded, now_ms, policy(services)),
        folded=stats is not None,
    )


async def history(services: Services, user: str, params: HistoryParams) -> list[an.HistoryEntry]:
    """What ``user`` watched, most recent first, without videos that no longer exist."""
    workers = services.workers
    try:
        entries = (await workers.history(user)).entries
        states = await workers.video_states([e.video_id for e in entries])
    except (WorkerUnavailableError, WorkerQueryError) as exc:
        raise analytics_unavailable(exc) from exc
    existing = {s.video_id for s in states if not is_deleted(s)}
    kept = [e for e in entries if e.video_id in existing]
    return kept[: params.page_size]
