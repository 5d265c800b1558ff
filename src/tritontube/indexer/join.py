"""The indexer's join: a video's latest VideoState and VideoStats, and its search document.

Pure. ``search_sources`` (a table keyed by video id) holds one :class:`SearchSource` per
video; each part is taken only when its own version is newer, and the document's version is
``state.version + stats.version``: each part only grows, so every accepted change of either
raises the sum, and replaying both topics in any interleaving ends at the same document.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import cast

from tritontube.domain.analytics import from_ms, to_ms
from tritontube.domain.events import VideoState, VideoStats
from tritontube.indexer.documents import READY, VideoDocument, Visibility


@dataclass(frozen=True)
class SearchSource:
    """Everything the index needs about one video, from both topics."""

    video_id: str
    state_version: int = 0
    stats_version: int = 0
    title: str = ""
    description: str = ""
    tags: tuple[str, ...] = ()
    owner: str = ""
    status: str = ""
    visibility: str = "public"
    created_ms: int = 0
    ready_ms: int | None = None
    duration_seconds: float | None = None
    views: int = 0
    watch_seconds: float = 0.0
    trending_score: float = 0.0

    @property
    def version(self) -> int:
        return self.state_version + self.stats_version

    @property
    def has_state(self) -> bool:
        return self.state_version > 0


def join_state(src: SearchSource | None, state: VideoState) -> SearchSource:
    """The source after a VideoState; unchanged (same object) when not newer."""
    s = src or SearchSource(video_id=state.video_id)
    if state.version <= s.state_version:
        return s
    ready_ms = s.ready_ms
    if state.status == READY and ready_ms is None:
        ready_ms = to_ms(state.updated_at)
    return replace(
        s,
        state_version=state.version,
        title=state.title,
        description=state.description,
        tags=tuple(state.tags),
        owner=state.owner,
        status=state.status,
        visibility=state.visibility,
        created_ms=to_ms(state.created_at),
        ready_ms=ready_ms,
        duration_seconds=state.duration_seconds,
    )


def join_stats(src: SearchSource | None, stats: VideoStats) -> SearchSource:
    s = src or SearchSource(video_id=stats.video_id)
    if stats.version <= s.stats_version:
        return s
    return replace(
        s,
        stats_version=stats.version,
        views=stats.views,
        watch_seconds=stats.watch_seconds,
        trending_score=stats.trending_score,
    )


def to_document(src: SearchSource) -> VideoDocument | None:
    """The document to index; None until the video's state is known."""
    if not src.has_state:
        return None
    visibility = (
        src.visibility if src.visibility in ("public", "private", "unlisted") else "private"
    )
    return VideoDocument(
        video_id=src.video_id,
        title=src.title,
        description=src.description,
        tags=src.tags,
        owner=src.owner,
        status=src.status,
        visibility=cast(Visibility, visibility),
        created_at=from_ms(src.created_ms),
        ready_at=None if src.ready_ms is None else from_ms(src.ready_ms),
        duration_seconds=src.duration_seconds,
        views=src.views,
        watch_seconds=src.watch_seconds,
        trending_score=src.trending_score,
        version=src.version,
    )
