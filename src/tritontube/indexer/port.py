"""The search port: the one narrow seam between the platform and a search backend.

Adapters: :class:`~tritontube.indexer.tantivy_index.TantivyIndex` (embedded, on disk) and
:class:`~tritontube.indexer.opensearch_index.OpenSearchIndex`. Both pass the same
contract suite (tests/integration/test_search_backends.py); scores differ, behaviour
does not.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from tritontube.indexer.documents import VideoDocument
from tritontube.indexer.query import InvalidQueryError, SearchPage, SearchQuery

__all__ = [
    "InvalidQueryError",
    "SearchIndex",
    "SearchUnavailable",
    "SearchWriteError",
    "SearchWriterBusy",
]


class SearchUnavailable(Exception):
    """The backend cannot be reached; callers may retry later."""


class SearchWriterBusy(SearchUnavailable):
    """Another process holds the backend's one writer (the embedded index's lock): the
    backend is up, so retry without treating it as an outage."""


class SearchWriteError(Exception):
    """The backend rejected a document for a reason other than a stale version."""


class SearchIndex(Protocol):
    """A versioned index of videos; only READY + public videos are ever returned."""

    async def ensure(self) -> None:
        """Create the index (idempotent) and open connections or writers."""

    async def ping(self) -> None:
        """Return when the backend answers; raise SearchUnavailable otherwise."""

    async def upsert(self, docs: Sequence[VideoDocument]) -> int:
        """Write documents in bulk; return how many were applied.

        A document whose version is <= the stored one is ignored (not an error), so
        replays are idempotent. A document that is not searchable is stored but never
        returned by :meth:`search`.
        """

    async def delete(self, video_ids: Sequence[str]) -> None:
        """Remove documents; unknown ids are ignored."""

    async def get(self, video_id: str) -> VideoDocument | None:
        """The stored document (searchable or not), or None."""

    async def get_many(self, video_ids: Sequence[str]) -> dict[str, VideoDocument]:
        """The stored documents (searchable or not) of those ids that exist, by id; one
        round trip however many ids."""

    async def search(self, query: SearchQuery) -> SearchPage:
        """One page of READY + public results; raises InvalidQueryError on a bad token."""

    async def refresh(self) -> None:
        """Make every completed write visible to search."""

    async def release(self) -> None:
        """Give up exclusive write access, if the backend has any (the embedded index's
        single writer), so that another process can write; the next write takes it back."""

    async def close(self) -> None:
        """Release writers and connections."""
