"""Watch analytics as the API reads them: trending, a video's statistics, the caller's history.

Every read goes through the typed worker client, so it is complete with any number of
workers: trending is merged from every partition by the worker asked (a fan-out with a
deadline), a video's statistics and a user's history are keyed reads routed to their owner.
While the group rebalances the answer is a 503 with ``Retry-After``, never a partial one.

``GET /v1/videos:trending?pageSize=``  READY public videos by trending score, best first
``GET /v1/videos/{video_id}/stats``     views, viewers, watch time (anyone who may watch it)
``GET /v1/users/me/history?pageSize=``  what the caller watched, most recent first
"""

from __future__ import annotations

from aiohttp import web

from tritontube.domain import analytics as an
from tritontube.http import keys
from tritontube.http.auth import current_user
from tritontube.http.params import parse_query
from tritontube.http.playback import load_viewable
from tritontube.http.problems import ProblemError
from tritontube.http.search import doc_json
from tritontube.http.videos import state_unavailable, video_id_param
from tritontube.http.worker_client import WorkerQueryError, WorkerUnavailableError
from tritontube.indexer.documents import is_searchable
from tritontube.indexer.port import SearchUnavailable
from tritontube.queries import HistoryParams, TrendingParams


def policy(request: web.Request) -> an.AnalyticsPolicy:
    a = request.app[keys.SETTINGS].analytics
    return an.AnalyticsPolicy(
        trending_window_seconds=a.trending_window_seconds,
        trending_step_seconds=a.trending_step_seconds,
    )


def _unavailable(exc: Exception) -> ProblemError:
    if isinstance(exc, SearchUnavailable):
        return ProblemError(
            503,
            "Service Unavailable",
            f"search unavailable: {exc}",
            code="UNAVAILABLE",
            headers={"Retry-After": "2"},
        )
    return state_unavailable(exc)


async def trending(request: web.Request) -> web.Response:
    """GET /v1/videos:trending"""
    size = parse_query(request, TrendingParams).page_size
    try:
        # Ask for more than shown: private or unfinished videos are dropped below.
        answer = await request.app[keys.WORKER].trending(min(200, size * 2))
        docs = await request.app[keys.SEARCH].get_many([e.video_id for e in answer.entries])
    except (WorkerUnavailableError, WorkerQueryError, SearchUnavailable) as exc:
        raise _unavailable(exc) from exc
    results = []
    for entry in answer.entries:
        doc = docs.get(entry.video_id)
        if doc is not None and is_searchable(doc):
            results.append({**doc_json(doc), "trendingScore": entry.score})
        if len(results) == size:
            break
    return web.json_response({"results": results}, headers={"Cache-Control": "no-cache"})


async def video_stats(request: web.Request) -> web.Response:
    """GET /v1/videos/{video_id}/stats"""
    state = await load_viewable(request, video_id_param(request))
    try:
        stats = await request.app[keys.WORKER].stats(state.video_id)
    except (WorkerUnavailableError, WorkerQueryError) as exc:
        raise _unavailable(exc) from exc
    now_ms = an.to_ms(request.app[keys.DEPS].clock.now())
    folded = stats or an.VideoAnalytics(video_id=state.video_id)
    public = an.to_public(folded, now_ms, policy(request))
    return web.json_response(
        {
            "videoId": state.video_id,
            "views": public.views,
            "viewers": public.viewers,
            "watchSeconds": public.watch_seconds,
            "averageCompletion": public.average_completion,
            "trendingScore": public.trending_score,
            "version": public.version,
            "updatedAt": public.updated_at.isoformat() if stats is not None else None,
        },
        headers={"Cache-Control": "private, no-cache"},
    )


async def my_history(request: web.Request) -> web.Response:
    """GET /v1/users/me/history"""
    size = parse_query(request, HistoryParams).page_size
    try:
        history = await request.app[keys.WORKER].history(current_user(request))
    except (WorkerUnavailableError, WorkerQueryError) as exc:
        raise _unavailable(exc) from exc
    return web.json_response(
        {
            "entries": [
                {
                    "videoId": e.video_id,
                    "lastWatchedAt": an.from_ms(e.last_watched_ms).isoformat(),
                    "positionSeconds": e.position_seconds,
                    "completed": e.completed,
                }
                for e in history.entries[:size]
            ]
        },
        headers={"Cache-Control": "private, no-cache"},
    )
