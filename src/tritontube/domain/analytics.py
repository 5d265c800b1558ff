"""Watch analytics as pure folds over WatchEvents (no I/O, no clocks: event time only).

Three folds, each ``fold(state, event) -> state`` and idempotent under redelivery:

* :func:`fold_session` — one viewer on one video: credited watch time, the view rule (a view
  counts once ``min_view_seconds`` were watched, at most once per user per view window),
  the furthest position and completion. It returns the :class:`SessionDelta` that the
  video's totals absorb. Duplicate event ids (a bounded recent-ids set) change nothing.
* :func:`fold_stats` — one video: views, viewers, watch time, average completion and the
  trending window (hopping buckets of ``trending_step`` over ``trending_window``).
* :func:`fold_history` — one user: the most recently watched videos, finished or not.

The states are the tables' values; ``streams.records`` maps them to Avro.
"""

from __future__ import annotations

import bisect
import math
import operator
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import NamedTuple

from tritontube.domain.events import VideoStats, WatchEvent

VIEW_WEIGHT = 1.0  # trending weight of one counted view ...
MINUTE_WEIGHT = 0.1  # ... and of one watched minute
COMPLETE_AT = 0.95  # a position past this fraction of the duration finishes the video


class Kind(StrEnum):
    PLAY = "PLAY"
    HEARTBEAT = "HEARTBEAT"
    PAUSE = "PAUSE"
    SEEK = "SEEK"
    ENDED = "ENDED"


KINDS = frozenset(k.value for k in Kind)
_PLAYING_AFTER = {Kind.PLAY: True, Kind.HEARTBEAT: True, Kind.PAUSE: False, Kind.ENDED: False}


@dataclass(frozen=True)
class AnalyticsPolicy:
    """The knobs of the folds (from ``settings.analytics``)."""

    min_view_seconds: float = 10.0
    view_window_seconds: int = 86400
    max_gap_seconds: float = 30.0
    trending_window_seconds: int = 86400
    trending_step_seconds: int = 3600
    recent_event_ids: int = 64
    recent_viewers: int = 20
    history_size: int = 200


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


# -- one viewer on one video -------------------------------------------------------------
@dataclass(frozen=True)
class WatchSession:
    video_id: str
    user_id: str
    playing: bool = False
    last_at_ms: int = 0
    window: int = -1  # index of the view window the counters below belong to
    window_seconds: float = 0.0
    counted: bool = False  # a view was counted in ``window``
    max_position: float = 0.0
    completed: bool = False
    completion: float = 0.0  # what this viewer last contributed to the video's average
    recent_event_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class SessionDelta:
    """What one accepted event adds to the video's totals."""

    at_ms: int
    views: int = 0
    watch_seconds: float = 0.0
    new_viewer: bool = False
    completion_delta: float = 0.0


def session_key(video_id: str, user_id: str) -> str:
    return f"{video_id}/{user_id}"


def completion_of(max_position: float, completed: bool, duration: float | None) -> float:
    if completed:
        return 1.0
    if not duration or duration <= 0:
        return 0.0
    return min(1.0, max(0.0, max_position / duration))


def fold_session(
    session: WatchSession | None,
    event: WatchEvent,
    duration: float | None,
    policy: AnalyticsPolicy,
) -> tuple[WatchSession, SessionDelta] | None:
    """The session after ``event`` and its contribution; None for a duplicate event id."""
    s = session or WatchSession(video_id=event.video_id, user_id=event.user_id)
    if event.event_id in s.recent_event_ids:
        return None
    at = to_ms(event.occurred_at)
    credited = _credited_seconds(s, at, policy) if at > s.last_at_ms else 0.0
    window = at // (policy.view_window_seconds * 1000)
    in_window = s.window_seconds + credited if window == s.window else credited
    counted = s.counted and window == s.window
    new_view = not counted and in_window >= policy.min_view_seconds
    kind = Kind(event.kind)
    completed = s.completed or kind == Kind.ENDED
    max_position = max(s.max_position, event.position_seconds)
    completed = completed or (bool(duration) and max_position >= COMPLETE_AT * (duration or 0.0))
    completion = completion_of(max_position, completed, duration)
    ids = (*s.recent_event_ids, event.event_id)[-policy.recent_event_ids :]
    newest = at >= s.last_at_ms
    after = WatchSession(  # every field named: cheaper than dataclasses.replace per event
        video_id=s.video_id,
        user_id=s.user_id,
        playing=_PLAYING_AFTER.get(kind, s.playing) if newest else s.playing,
        last_at_ms=max(at, s.last_at_ms),
        window=max(window, s.window),
        window_seconds=in_window if window >= s.window else s.window_seconds,
        counted=(counted or new_view) if window >= s.window else s.counted,
        max_position=max_position,
        completed=completed,
        completion=max(completion, s.completion),
        recent_event_ids=ids,
    )
    delta = SessionDelta(
        at_ms=at,
        views=1 if new_view and window >= s.window else 0,
        watch_seconds=credited,
        new_viewer=session is None,
        completion_delta=after.completion - s.completion,
    )
    return after, delta


def _credited_seconds(s: WatchSession, at_ms: int, policy: AnalyticsPolicy) -> float:
    """Wall time since the previous event while the player was playing, capped by max_gap."""
    if not s.playing or s.last_at_ms == 0:
        return 0.0
    return min((at_ms - s.last_at_ms) / 1000, policy.max_gap_seconds)


# -- one video -------------------------------------------------------------------------
class TrendingBucket(NamedTuple):
    """One hop of the trending window: its start (epoch ms) and the weight folded into it."""

    start_ms: int
    weight: float


class TrendingEntry(NamedTuple):
    """A video and its trending score (a top list is a tuple of these, best first)."""

    video_id: str
    score: float


@dataclass(frozen=True)
class PartitionTrending:
    """The best trending videos of one watch-events partition (the trending_top table)."""

    partition: int
    top: tuple[TrendingEntry, ...] = ()


@dataclass(frozen=True)
class VideoAnalytics:
    video_id: str
    version: int = 0
    views: int = 0
    viewers: int = 0
    watch_seconds: float = 0.0
    completion_sum: float = 0.0
    duration_seconds: float | None = None
    buckets: tuple[TrendingBucket, ...] = ()  # oldest first
    last_event_ms: int = 0
    recent_viewers: tuple[str, ...] = ()  # newest last

    @property
    def average_completion(self) -> float:
        return self.completion_sum / self.viewers if self.viewers else 0.0


def with_duration(stats: VideoAnalytics, duration: float | None) -> VideoAnalytics:
    """The video's duration as VideoState reports it (completion needs it)."""
    if duration is None or duration == stats.duration_seconds:
        return stats
    return replace(stats, duration_seconds=duration)


def fold_stats(
    stats: VideoAnalytics | None,
    user_id: str,
    delta: SessionDelta,
    policy: AnalyticsPolicy,
) -> VideoAnalytics:
    s = stats or VideoAnalytics(video_id="")
    weight = delta.views * VIEW_WEIGHT + delta.watch_seconds / 60 * MINUTE_WEIGHT
    now = max(s.last_event_ms, delta.at_ms)
    buckets = _add_to_bucket(s.buckets, delta.at_ms, weight, policy) if weight else s.buckets
    viewers = (*(v for v in s.recent_viewers if v != user_id), user_id)
    return replace(
        s,
        version=s.version + 1,
        views=s.views + delta.views,
        viewers=s.viewers + (1 if delta.new_viewer else 0),
        watch_seconds=s.watch_seconds + delta.watch_seconds,
        completion_sum=max(0.0, s.completion_sum + delta.completion_delta),
        buckets=_prune(buckets, now, policy),
        last_event_ms=now,
        # the newest ``recent_viewers`` (a slice from len - n cut short lists between n/2
        # and n down to their last few, until the batched fold's property test showed it)
        recent_viewers=viewers[-policy.recent_viewers :] if policy.recent_viewers else (),
    )


def fold_stats_many(
    stats: VideoAnalytics | None,
    deltas: Iterable[tuple[str, SessionDelta]],
    policy: AnalyticsPolicy,
) -> VideoAnalytics:
    """:func:`fold_stats` of each (viewer, delta) in turn, computed in one pass: the batched
    agent folds a batch's deltas of one video at once. Exactly the same result (the same
    additions in the same order; pruning and the recent-viewer cut commute with the folds,
    since "now" only grows), without a new record and bucket tuple per event."""
    s = stats or VideoAnalytics(video_id="")
    version, views, viewers = s.version, s.views, s.viewers
    watch_seconds, completion_sum, now = s.watch_seconds, s.completion_sum, s.last_event_ms
    step = policy.trending_step_seconds * 1000
    merged = dict(s.buckets)
    recent = dict.fromkeys(s.recent_viewers)
    for user_id, delta in deltas:
        version += 1
        views += delta.views
        viewers += 1 if delta.new_viewer else 0
        watch_seconds += delta.watch_seconds
        completion_sum = max(0.0, completion_sum + delta.completion_delta)
        now = max(now, delta.at_ms)
        weight = delta.views * VIEW_WEIGHT + delta.watch_seconds / 60 * MINUTE_WEIGHT
        if weight:
            start = delta.at_ms - delta.at_ms % step
            merged[start] = merged.get(start, 0.0) + weight
        recent.pop(user_id, None)
        recent[user_id] = None
    buckets = tuple(TrendingBucket(b, w) for b, w in sorted(merged.items()))
    viewers_list = tuple(recent)
    return replace(
        s,
        version=version,
        views=views,
        viewers=viewers,
        watch_seconds=watch_seconds,
        completion_sum=completion_sum,
        buckets=_prune(buckets, now, policy),
        last_event_ms=now,
        recent_viewers=viewers_list[-policy.recent_viewers :] if policy.recent_viewers else (),
    )


def _add_to_bucket(
    buckets: tuple[TrendingBucket, ...], at_ms: int, weight: float, policy: AnalyticsPolicy
) -> tuple[TrendingBucket, ...]:
    step = policy.trending_step_seconds * 1000
    start = at_ms - at_ms % step
    merged = dict(buckets)
    merged[start] = merged.get(start, 0.0) + weight
    return tuple(TrendingBucket(s, w) for s, w in sorted(merged.items()))


def _prune(
    buckets: tuple[TrendingBucket, ...], now_ms: int, policy: AnalyticsPolicy
) -> tuple[TrendingBucket, ...]:
    horizon = now_ms - policy.trending_window_seconds * 1000
    step = policy.trending_step_seconds * 1000
    return tuple(b for b in buckets if b[0] + step > horizon)


def trending_score(stats: VideoAnalytics, now_ms: int, policy: AnalyticsPolicy) -> float:
    """Sum of the window's buckets, each weighted by its freshness (1 now, 0 at the horizon)."""
    window = policy.trending_window_seconds * 1000
    step = policy.trending_step_seconds * 1000
    score = 0.0
    for start, weight in stats.buckets:
        age = max(0, now_ms - (start + step))
        if age < window:
            score += weight * (1.0 - age / window)
    return round(score, 6)


def to_public(stats: VideoAnalytics, now_ms: int, policy: AnalyticsPolicy) -> VideoStats:
    return VideoStats(
        video_id=stats.video_id,
        version=stats.version,
        views=stats.views,
        viewers=stats.viewers,
        watch_seconds=round(stats.watch_seconds, 3),
        average_completion=round(stats.average_completion, 6),
        trending_score=trending_score(stats, now_ms, policy),
        updated_at=from_ms(stats.last_event_ms or now_ms),
    )


def update_top(
    top: tuple[TrendingEntry, ...], video_id: str, score: float, k: int
) -> tuple[TrendingEntry, ...]:
    """The k best (video, score) pairs, best first, after ``video_id`` scored ``score``.

    ``top`` is best first (as this function returns it), so the new pair is inserted in
    place rather than the list re-sorted: it runs once per watch event.
    """
    rest = list(top)
    ids = list(map(_video_of, top))  # each video appears at most once
    if video_id in ids:
        del rest[ids.index(video_id)]
    if score > 0:
        bisect.insort(rest, TrendingEntry(video_id, score), key=_top_rank)
    return tuple(rest[:k])


_video_of = operator.itemgetter(0)


def _top_rank(item: TrendingEntry) -> tuple[float, str]:
    return -item[1], item[0]


def merge_tops(tops: Iterable[Iterable[TrendingEntry]], k: int) -> tuple[TrendingEntry, ...]:
    """The k best of several top lists (one per partition; a video is in one partition, but a
    rebalance may report a partition twice: its best score counts)."""
    best: dict[str, float] = {}
    for top in tops:
        for video_id, score in top:
            if score > best.get(video_id, -math.inf):
                best[video_id] = score
    ranked = sorted((TrendingEntry(v, s) for v, s in best.items()), key=_top_rank)
    return tuple(ranked[:k])


# -- one user --------------------------------------------------------------------------
@dataclass(frozen=True)
class HistoryEntry:
    video_id: str
    last_watched_ms: int
    position_seconds: float
    completed: bool


@dataclass(frozen=True)
class UserHistory:
    user_id: str
    entries: tuple[HistoryEntry, ...] = ()  # most recently watched first
    recent_event_ids: tuple[str, ...] = ()


def fold_history(
    history: UserHistory | None, event: WatchEvent, policy: AnalyticsPolicy
) -> UserHistory:
    """The history after ``event``; the same object for a duplicate."""
    h = history or UserHistory(user_id=event.user_id)
    if event.event_id in h.recent_event_ids:
        return h
    at = to_ms(event.occurred_at)
    old = next((e for e in h.entries if e.video_id == event.video_id), None)
    entry = HistoryEntry(
        video_id=event.video_id,
        last_watched_ms=max(at, old.last_watched_ms if old else 0),
        position_seconds=event.position_seconds
        if old is None or at >= old.last_watched_ms
        else old.position_seconds,
        completed=(old is not None and old.completed) or event.kind == Kind.ENDED,
    )
    others = [e for e in h.entries if e.video_id != event.video_id]
    entries = sorted([entry, *others], key=lambda e: (-e.last_watched_ms, e.video_id))
    return replace(
        h,
        entries=tuple(entries[: policy.history_size]),
        recent_event_ids=(*h.recent_event_ids, event.event_id)[-policy.recent_event_ids :],
    )


def is_finite_position(value: float) -> bool:
    return math.isfinite(value) and value >= 0
