"""The search document for one video: what the indexer writes and the backends store.

Pure and synchronous. Both backends keep the whole document as a JSON source (the
shape of :func:`to_source`) so that ``get`` can rebuild it and versions survive.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal, cast, get_args

Visibility = Literal["public", "private", "unlisted"]

READY: Final = "READY"
VISIBILITIES: Final[frozenset[str]] = frozenset(get_args(Visibility))


class InvalidDocumentError(ValueError):
    """A document that no backend may store (naive datetime, bad visibility, ...)."""


@dataclass(frozen=True)
class VideoDocument:
    """One video as the search layer sees it; ``version`` grows with every change."""

    video_id: str
    title: str
    description: str
    tags: tuple[str, ...]
    owner: str
    status: str
    visibility: Visibility
    created_at: datetime
    ready_at: datetime | None
    duration_seconds: float | None
    views: int
    watch_seconds: float
    trending_score: float
    version: int

    def __post_init__(self) -> None:
        if not self.video_id:
            raise InvalidDocumentError("video_id must not be empty")
        if self.visibility not in VISIBILITIES:
            raise InvalidDocumentError(f"unknown visibility {self.visibility!r}")
        _require_aware("created_at", self.created_at)
        if self.ready_at is not None:
            _require_aware("ready_at", self.ready_at)
        if self.version < 0:
            raise InvalidDocumentError("version must be >= 0")
        if self.views < 0:
            raise InvalidDocumentError("views must be >= 0")


def _require_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidDocumentError(f"{name} must be timezone-aware")


def is_searchable(doc: VideoDocument) -> bool:
    """Only READY, public videos appear in search results."""
    return doc.status == READY and doc.visibility == "public"


def recent_key(doc: VideoDocument) -> int:
    """Sort key for ``sort=recent``: when the video became ready (else created), epoch ms."""
    moment = doc.ready_at if doc.ready_at is not None else doc.created_at
    return int(moment.timestamp() * 1000)


def to_source(doc: VideoDocument) -> dict[str, Any]:
    """The JSON-compatible form of a document (ISO-8601 datetimes)."""
    return {
        "video_id": doc.video_id,
        "title": doc.title,
        "description": doc.description,
        "tags": list(doc.tags),
        "owner": doc.owner,
        "status": doc.status,
        "visibility": doc.visibility,
        "created_at": doc.created_at.isoformat(),
        "ready_at": doc.ready_at.isoformat() if doc.ready_at is not None else None,
        "duration_seconds": doc.duration_seconds,
        "views": doc.views,
        "watch_seconds": doc.watch_seconds,
        "trending_score": doc.trending_score,
        "version": doc.version,
    }


def from_source(source: dict[str, Any]) -> VideoDocument:
    """Inverse of :func:`to_source`; ignores keys it does not know (derived fields)."""
    ready_at = source.get("ready_at")
    duration = source.get("duration_seconds")
    return VideoDocument(
        video_id=str(source["video_id"]),
        title=str(source["title"]),
        description=str(source["description"]),
        tags=tuple(str(tag) for tag in source["tags"]),
        owner=str(source["owner"]),
        status=str(source["status"]),
        visibility=cast(Visibility, source["visibility"]),
        created_at=datetime.fromisoformat(source["created_at"]),
        ready_at=datetime.fromisoformat(ready_at) if ready_at is not None else None,
        duration_seconds=float(duration) if duration is not None else None,
        views=int(source["views"]),
        watch_seconds=float(source["watch_seconds"]),
        trending_score=float(source["trending_score"]),
        version=int(source["version"]),
    )
