"""What the worker answers to the API's queries (interactive queries over the tables).

Each is an Avro record like the topics' (``schemas/``), so the API decodes the worker's
answers into these types with the shared codec instead of reading string-keyed JSON.
"""

from __future__ import annotations

from dataclasses import dataclass

from tritontube.domain.analytics import TrendingEntry
from tritontube.domain.events import VideoState

__all__ = [
    "OwnerVideosPage",
    "TopicAssignment",
    "TrendingAnswer",
    "TrendingEntry",
    "VideoState",
    "VideoStateBatch",
    "WorkerCluster",
    "WorkerMember",
]


@dataclass(frozen=True)
class VideoStateBatch:
    """The states of the ids asked for that exist, in the order asked."""

    videos: tuple[VideoState, ...] = ()


@dataclass(frozen=True)
class OwnerVideosPage:
    videos: tuple[VideoState, ...] = ()
    next_page_token: str | None = None


@dataclass(frozen=True)
class TrendingAnswer:
    """Trending videos, best first, and the trending partitions the answer covers."""

    partitions: tuple[int, ...] = ()
    entries: tuple[TrendingEntry, ...] = ()


@dataclass(frozen=True)
class TopicAssignment:
    topic: str
    partitions: tuple[int, ...] = ()


@dataclass(frozen=True)
class WorkerMember:
    url: str
    partitions: tuple[int, ...] = ()  # of the tables (co-partitioned with their inputs)
    topics: tuple[TopicAssignment, ...] = ()

    def owns(self, topic: str, partition: int) -> bool:
        return any(t.topic == topic and partition in t.partitions for t in self.topics)


@dataclass(frozen=True)
class WorkerCluster:
    """The worker group as the partition assignor of the answering worker sees it."""

    app_id: str
    partitions: int
    members: tuple[WorkerMember, ...] = ()

    def urls(self) -> tuple[str, ...]:
        return tuple(m.url for m in self.members)

    def covered(self) -> set[int]:
        return {p for m in self.members for p in m.partitions}
