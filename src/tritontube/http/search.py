"""REST adapters of search and recommendations (``tritontube.search``, ``tritontube.recommend``).

``GET /v1/videos:search?q=&tags=&owner=&sort=relevance|views|recent&pageSize=&pageToken=``
``GET /v1/videos:recommendations?videoId=&pageSize=``

``tags`` may repeat and/or be comma-separated; all must match. Ranking of recommendations:
``domain.recommend`` and docs/search.md.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tritontube import recommend, search
from tritontube.http.auth import current_user
from tritontube.http.keys import services
from tritontube.http.params import parse_query
from tritontube.indexer.query import SearchHit
from tritontube.queries import RecommendationsParams, SearchParams


def summary_json(hit: SearchHit) -> dict[str, Any]:
    """A video as search, recommendations and trending show it."""
    return {
        "videoId": hit.video_id,
        "title": hit.title,
        "description": hit.description,
        "tags": list(hit.tags),
        "owner": hit.owner,
        "views": hit.views,
        "durationSeconds": hit.duration_seconds,
        "readyAt": None if hit.ready_at is None else hit.ready_at.isoformat(),
    }


def hit_json(hit: SearchHit) -> dict[str, Any]:
    return {**summary_json(hit), "score": hit.score}


async def search_videos(request: web.Request) -> web.Response:
    """GET /v1/videos:search"""
    params = parse_query(request, SearchParams)
    page = await search.search_videos(services(request), current_user(request), params)
    return web.json_response(
        {"results": [hit_json(h) for h in page.results], "nextPageToken": page.next_page_token}
    )


async def recommendations(request: web.Request) -> web.Response:
    """GET /v1/videos:recommendations"""
    user = current_user(request)
    params = parse_query(request, RecommendationsParams)
    found = await recommend.recommend_videos(services(request), user, params)
    results = [
        {**summary_json(r.hit), "score": r.score, "reasons": list(r.reasons)} for r in found.results
    ]
    return web.json_response({"results": results, "coldStart": found.cold_start})
