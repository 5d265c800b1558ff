"""The transcode queue as users see it: "position 6 of 20".

Pure and synchronous. A video waits from the moment its upload is complete until encoding
starts: while PENDING_TRANSCODE, while its job is being probed, and while a chunked job
waits for workers to take its first part (step QUEUED). ``waiting_entry`` folds each new
``VideoState`` into the video's entry of the waiting index (``agents.queue`` keeps one per
waiting video, by video id, in every partition); ``position`` ranks a video among every
waiting one of every partition, first come first served: the order in which the workers
take jobs and parts (each partition of a queue topic is first in, first out, and the
parts of earlier jobs were sent earlier).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from tritontube.domain.events import VideoState

__all__ = [
    "QueuePosition",
    "WaitingVideo",
    "WaitingVideos",
    "is_waiting",
    "position",
    "waiting_entry",
]

_WAITING_STEPS = frozenset({"PROBING", "QUEUED"})


@dataclass(frozen=True)
class WaitingVideo:
    """A video waiting to be encoded, since when."""

    video_id: str
    since: datetime


@dataclass(frozen=True)
class WaitingVideos:
    """The waiting videos of the partitions one worker owns (a fan-out answer)."""

    partitions: tuple[int, ...]
    entries: tuple[WaitingVideo, ...]


@dataclass(frozen=True)
class QueuePosition:
    """A video's place among every waiting video: 1 is next."""

    video_id: str
    position: int
    length: int


def is_waiting(state: VideoState) -> bool:
    """Queued for encoding, and no encoding of it has started."""
    if state.status == "PENDING_TRANSCODE":
        return True
    return state.status == "TRANSCODING" and state.step in _WAITING_STEPS


def waiting_entry(entry: WaitingVideo | None, state: VideoState) -> WaitingVideo | None:
    """The video's entry after ``state``: kept (with its first ``since``) while it waits,
    None once encoding started or the video left the queue."""
    if not is_waiting(state):
        return None
    if entry is not None:
        return entry
    return WaitingVideo(video_id=state.video_id, since=state.updated_at)


def position(entries: Iterable[WaitingVideo], video_id: str) -> QueuePosition | None:
    """Where ``video_id`` stands among ``entries`` (every waiting video), first come first
    served (ties by video id); None when it is not waiting."""
    ranked = sorted(entries, key=lambda e: (e.since, e.video_id))
    for index, entry in enumerate(ranked):
        if entry.video_id == video_id:
            return QueuePosition(video_id=video_id, position=index + 1, length=len(ranked))
    return None
