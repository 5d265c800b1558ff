"""Search over READY public videos: the use case behind ``SearchVideos``.

The index (``tritontube.indexer``, read-only here) filters what may be found: only READY,
public videos, so a private, unfinished or deleted video is never a result. ``owner=me``
means the signed-in user. REST: ``http/search.py``; gRPC: ``grpc/servicer.py``.
"""

from __future__ import annotations

from tritontube.indexer.port import SearchUnavailable
from tritontube.indexer.query import InvalidQueryError, SearchPage
from tritontube.problems import Problem, invalid, unavailable
from tritontube.queries import SEARCH_WIRE_NAMES, SearchParams
from tritontube.services import Services


def invalid_query(exc: InvalidQueryError) -> Problem:
    """422 naming the parameter of a query the index refused (a forged or stale pageToken)."""
    return invalid((SEARCH_WIRE_NAMES.get(exc.field, exc.field), str(exc)))


def search_unavailable(exc: Exception) -> Problem:
    return unavailable("search", exc)


async def search_videos(services: Services, user: str, params: SearchParams) -> SearchPage:
    try:
        return await services.search.search(params.to_search_query(user))
    except InvalidQueryError as exc:
        raise invalid_query(exc) from None
    except SearchUnavailable as exc:
        raise search_unavailable(exc) from exc
