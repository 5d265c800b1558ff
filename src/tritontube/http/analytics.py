"""REST adapters of the analytics reads (``tritontube.analytics``).

``GET /v1/videos:trending?pageSize=``  READY public videos by trending score, best first
``GET /v1/videos/{video_id}/stats``     views, viewers, watch time (anyone who may watch it)
``GET /v1/users/me/history?pageSize=``  what the caller watched, most recent first
"""

from __future__ import annotations

from aiohttp import web

from tritontube import analytics
from tritontube.domain import analytics as an
from tritontube.http.auth import current_user
from tritontube.http.keys import services
from tritontube.http.params import parse_query
from tritontube.http.search import summary_json
from tritontube.queries import HistoryParams, TrendingParams


async def trending(request: web.Request) -> web.Response:
    """GET /v1/videos:trending"""
    params = parse_query(request, TrendingParams)
    found = await analytics.trending(services(request), params)
    return web.json_response(
        {"results": [{**summary_json(t.hit), "trendingScore": t.score} for t in found]},
        headers={"Cache-Control": "no-cache"},
    )


async def video_stats(request: web.Request) -> web.Response:
    """GET /v1/videos/{video_id}/stats"""
    stats = await analytics.video_stats(
        services(request), current_user(request), request.match_info["video_id"]
    )
    public = stats.public
    return web.json_response(
        {
            "videoId": stats.video_id,
            "views": public.views,
            "viewers": public.viewers,
            "watchSeconds": public.watch_seconds,
            "averageCompletion": public.average_completion,
            "trendingScore": public.trending_score,
            "version": public.version,
            "updatedAt": public.updated_at.isoformat() if stats.folded else None,
        },
        headers={"Cache-Control": "private, no-cache"},
    )


async def my_history(request: web.Request) -> web.Response:
    """GET /v1/users/me/history"""
    params = parse_query(request, HistoryParams)
    entries = await analytics.history(services(request), current_user(request), params)
    return web.json_response(
        {
            "entries": [
                {
                    "videoId": e.video_id,
                    "lastWatchedAt": an.from_ms(e.last_watched_ms).isoformat(),
                    "positionSeconds": e.position_seconds,
                    "completed": e.completed,
                }
                for e in entries
            ]
        },
        headers={"Cache-Control": "private, no-cache"},
    )
