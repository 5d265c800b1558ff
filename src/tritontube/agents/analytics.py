"""Watch analytics agents: thin adapters over the folds in ``domain.analytics``.

* ``video-stats`` consumes ``watch-events`` and ``video-state`` (both keyed by video id, so
  co-partitioned). For each new (not duplicate) watch event it folds the viewer's session
  and the video's totals, keeps the partition's trending top list, publishes a
  ``VideoStats`` record on ``video-stats`` (the indexer's input) and forwards the event,
  keyed by viewer, to ``watch-events-by-user``. VideoState only teaches it durations.
* ``watch-history`` consumes ``watch-events-by-user`` and folds each user's history.

All state is in Faust tables (Avro values, ``agents.tables``); their changelogs make it
survive restarts. Each partition's trending top list is a ``PartitionTrending`` keyed
``p<partition>``; a trending read fans out over every partition (``agents.queries``).
Both agents work on ``take_events`` batches: events are folded one by one, in order, against
a per-batch cache of the table values (so each event sees the ones before it, exactly as if
it were alone), and every changed key is written once per batch, attributed to the last
event that changed it (the changelog partition). Every accepted event still publishes its
own ``VideoStats`` and its forwarded copy; the batch is acknowledged after all of it.
Web views (routed to the worker owning the key): ``/users/{user_id}/history``,
``/stats/{video_id}`` and ``/trending``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import faust
from faust.types import EventT, StreamT, TopicT

from tritontube import metrics
from tritontube.agents.dlq import dead_letter
from tritontube.agents.tables import TypedTable, attributed_to
from tritontube.agents.topology import (
    TRENDING_TABLE,
    VIDEO_ANALYTICS_TABLE,
    WATCH_HISTORY_TABLE,
    WATCH_SESSIONS_TABLE,
    Topology,
)
from tritontube.deps import Deps
from tritontube.domain import analytics as an
from tritontube.domain.events import VideoState, WatchEvent
from tritontube.settings import Settings
from tritontube.streams import catalogue
from tritontube.streams.codec import CodecError
from tritontube.streams.records import EventCodec

STATS_AGENT = "video-stats"
HISTORY_AGENT = "watch-history"
STATS_INPUT = ("WatchEvent", "VideoState")
BATCH_SIZE = 1000  # events per take_events batch ...
BATCH_SECONDS = 0.05  # ... or whatever arrived within this long


def policy_from(settings: Settings) -> an.AnalyticsPolicy:
    a = settings.analytics
    return an.AnalyticsPolicy(
        min_view_seconds=a.min_view_seconds,
        view_window_seconds=a.view_window_seconds,
        max_gap_seconds=a.max_gap_seconds,
        trending_window_seconds=a.trending_window_seconds,
        trending_step_seconds=a.trending_step_seconds,
        recent_event_ids=a.recent_event_ids,
        recent_viewers=a.recent_viewers,
        history_size=a.history_size,
    )


@dataclass(frozen=True)
class AnalyticsTables:
    """The analytics tables, typed."""

    sessions: TypedTable[an.WatchSession]
    videos: TypedTable[an.VideoAnalytics]
    trending: TypedTable[an.PartitionTrending]
    history: TypedTable[an.UserHistory]

    @classmethod
    def of(cls, topology: Topology, codec: EventCodec) -> AnalyticsTables:
        t = topology.tables
        return cls(
            sessions=TypedTable(t[WATCH_SESSIONS_TABLE], codec, an.WatchSession),
            videos=TypedTable(t[VIDEO_ANALYTICS_TABLE], codec, an.VideoAnalytics),
            trending=TypedTable(t[TRENDING_TABLE], codec, an.PartitionTrending),
            history=TypedTable(t[WATCH_HISTORY_TABLE], codec, an.UserHistory),
        )

    def session(self, video_id: str, user_id: str) -> an.WatchSession | None:
        return self.sessions.get(an.session_key(video_id, user_id))

    def top(self, partition: int) -> tuple[an.TrendingEntry, ...]:
        found = self.trending.get(f"p{partition}")
        return () if found is None else found.top


class BatchState:
    """The analytics table values one batch touches: read once, written once per key.

    Reads see the batch's own earlier writes, so folding events one by one against it is
    the same as processing them one at a time; :meth:`flush` writes every changed key,
    attributed to the last event that changed it.
    """

    def __init__(self, tables: AnalyticsTables) -> None:
        self._tables = tables
        self._sessions: dict[str, an.WatchSession | None] = {}
        self._videos: dict[str, an.VideoAnalytics | None] = {}
        self._tops: dict[int, tuple[an.TrendingEntry, ...]] = {}
        self._dirty_sessions: dict[str, EventT] = {}
        self._dirty_videos: dict[str, EventT] = {}
        self._dirty_tops: dict[int, EventT] = {}
        self._dropped_videos: dict[str, EventT] = {}

    def session(self, video_id: str, user_id: str) -> an.WatchSession | None:
        key = an.session_key(video_id, user_id)
        if key not in self._sessions:
            self._sessions[key] = self._tables.session(video_id, user_id)
        return self._sessions[key]

    def video(self, video_id: str) -> an.VideoAnalytics | None:
        if video_id not in self._videos:
            self._videos[video_id] = self._tables.videos.get(video_id)
        return self._videos[video_id]

    def top(self, partition: int) -> tuple[an.TrendingEntry, ...]:
        if partition not in self._tops:
            self._tops[partition] = self._tables.top(partition)
        return self._tops[partition]

    def put_session(self, event: EventT, session: an.WatchSession) -> None:
        key = an.session_key(session.video_id, session.user_id)
        self._sessions[key] = session
        self._dirty_sessions[key] = event

    def put_video(self, event: EventT, stats: an.VideoAnalytics) -> None:
        self._videos[stats.video_id] = stats
        self._dirty_videos[stats.video_id] = event
        self._dropped_videos.pop(stats.video_id, None)

    def drop_video(self, event: EventT, video_id: str) -> None:
        """The video was deleted: its totals go (a tombstone in the table's changelog)."""
        self._videos[video_id] = None
        self._dirty_videos.pop(video_id, None)
        self._dropped_videos[video_id] = event

    def put_top(self, event: EventT, partition: int, top: tuple[an.TrendingEntry, ...]) -> None:
        self._tops[partition] = top
        self._dirty_tops[partition] = event

    def flush(self) -> None:
        t = self._tables
        for key, event in self._dirty_sessions.items():
            session = self._sessions[key]
            if session is not None:
                with attributed_to(event):
                    t.sessions.put(key, session)
        for video_id, event in self._dirty_videos.items():
            stats = self._videos[video_id]
            if stats is not None:
                with attributed_to(event):
                    t.videos.put(video_id, stats)
        for video_id, event in self._dropped_videos.items():
            with attributed_to(event):
                t.videos.delete(video_id)
        for partition, event in self._dirty_tops.items():
            top = self._tops[partition]
            with attributed_to(event):
                t.trending.put(f"p{partition}", an.PartitionTrending(partition, top))
        self._dirty_sessions.clear()
        self._dirty_videos.clear()
        self._dirty_tops.clear()
        self._dropped_videos.clear()


def register(app: faust.App, topology: Topology, deps: Deps, settings: Settings) -> None:
    policy = policy_from(settings)
    tables = AnalyticsTables.of(topology, deps.codec)
    top_k = settings.analytics.trending_top_k
    stats_topic = topology.topic(catalogue.VIDEO_STATS)
    by_user_topic = topology.topic(catalogue.WATCH_EVENTS_BY_USER)
    stats_input = app.topic(
        catalogue.WATCH_EVENTS.name,
        catalogue.VIDEO_STATE.name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )

    async def on_stats_batch(events: Sequence[EventT]) -> None:
        batch = BatchState(tables)
        out: list[tuple[TopicT, bytes, Any]] = []
        for event in events:
            metrics.observe_consumed(STATS_AGENT, event.message.topic, event.message.timestamp)
            if event.value is None and event.message.topic == catalogue.VIDEO_STATE.name:
                on_deleted(batch, event, bytes(event.key or b"").decode(), out)
                continue
            try:
                record = deps.codec.decode(event.value, expect=STATS_INPUT)
                if isinstance(record, WatchEvent) and record.kind not in an.KINDS:
                    raise CodecError(f"unknown watch event kind {record.kind!r}")
            except CodecError as exc:
                await dead_letter(topology, deps, event, exc)
                continue
            if isinstance(record, VideoState):
                on_state(batch, event, record)
            else:
                on_watch(batch, event, record, out)
        batch.flush()
        for topic, key, value in out:
            await topic.send(key=key, value=value)

    def on_watch(
        batch: BatchState,
        event: EventT,
        watch: WatchEvent,
        out: list[tuple[TopicT, bytes, Any]],
    ) -> None:
        stats = batch.video(watch.video_id) or an.VideoAnalytics(video_id=watch.video_id)
        folded = an.fold_session(
            batch.session(watch.video_id, watch.user_id), watch, stats.duration_seconds, policy
        )
        if folded is None:
            metrics.WATCH_EVENTS_DUPLICATE.inc()
            return
        session, delta = folded
        stats = an.fold_stats(stats, watch.user_id, delta, policy)
        batch.put_session(event, session)
        batch.put_video(event, stats)
        public = an.to_public(stats, stats.last_event_ms, policy)
        partition = event.message.partition
        top = an.update_top(batch.top(partition), watch.video_id, public.trending_score, top_k)
        batch.put_top(event, partition, top)
        metrics.VIEWS_COUNTED.inc(delta.views)
        out.append((stats_topic, watch.video_id.encode(), deps.codec.encode(public)))
        out.append((by_user_topic, watch.user_id.encode(), event.value))

    def on_deleted(
        batch: BatchState, event: EventT, video_id: str, out: list[tuple[TopicT, bytes, Any]]
    ) -> None:
        partition = event.message.partition
        batch.drop_video(event, video_id)
        batch.put_top(event, partition, an.update_top(batch.top(partition), video_id, 0.0, top_k))
        out.append((stats_topic, video_id.encode(), None))

    def on_state(batch: BatchState, event: EventT, state: VideoState) -> None:
        stats = batch.video(state.video_id) or an.VideoAnalytics(video_id=state.video_id)
        updated = an.with_duration(stats, state.duration_seconds)
        if updated is not stats:
            batch.put_video(event, updated)

    @app.agent(stats_input, name=STATS_AGENT)
    async def video_stats_agent(stream: StreamT) -> None:
        async for events in stream.take_events(BATCH_SIZE, within=BATCH_SECONDS):  # type: ignore[attr-defined]
            await on_stats_batch(events)

    @app.agent(topology.topic(catalogue.WATCH_EVENTS_BY_USER), name=HISTORY_AGENT)
    async def watch_history_agent(stream: StreamT) -> None:
        async for events in stream.take_events(BATCH_SIZE, within=BATCH_SECONDS):  # type: ignore[attr-defined]
            histories: dict[str, an.UserHistory | None] = {}
            dirty: dict[str, EventT] = {}
            for event in events:
                metrics.observe_consumed(
                    HISTORY_AGENT, event.message.topic, event.message.timestamp
                )
                try:
                    watch = deps.codec.decode(event.value, expect=("WatchEvent",))
                except CodecError as exc:
                    await dead_letter(topology, deps, event, exc)
                    continue
                user_id = watch.user_id
                if user_id not in histories:
                    histories[user_id] = tables.history.get(user_id)
                before = histories[user_id]
                after = an.fold_history(before, watch, policy)
                if after is not before:
                    histories[user_id] = after
                    dirty[user_id] = event
            for user_id, event in dirty.items():
                history = histories[user_id]
                if history is not None:
                    with attributed_to(event):
                        tables.history.put(user_id, history)
