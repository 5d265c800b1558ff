"""Watch analytics agents: thin adapters over the folds in ``domain.analytics``.

* ``video-stats`` consumes ``watch-events`` and ``video-state`` (both keyed by video id, so
  co-partitioned). For each new (not duplicate) watch event it folds the viewer's session
  and the video's totals, keeps the partition's trending top list, publishes a
  ``VideoStats`` record on ``video-stats`` (the indexer's input) and forwards the event,
  keyed by viewer, to ``watch-events-by-user``. VideoState only teaches it durations.
* ``watch-history`` consumes ``watch-events-by-user`` and folds each user's history.

All state is in Faust tables (JSON values); their changelogs make it survive restarts.
Both agents work on ``take_events`` batches: events are folded one by one, in order, against
a per-batch cache of the table values (so each event sees the ones before it, exactly as if
it were alone), and every changed key is written once per batch, attributed to the last
event that changed it (the changelog partition). Every accepted event still publishes its
own ``VideoStats`` and its forwarded copy; the batch is acknowledged after all of it.
Web views (routed to the worker owning the key): ``/users/{user_id}/history``,
``/stats/{video_id}`` and ``/trending``.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import faust
from faust.streams import _current_event
from faust.types import EventT, StreamT, TableT, TopicT
from faust.web import Request, Response, View

from tritontube import metrics
from tritontube.agents.dlq import dead_letter
from tritontube.agents.topology import (
    TRENDING_TABLE,
    VIDEO_ANALYTICS_TABLE,
    WATCH_HISTORY_TABLE,
    WATCH_SESSIONS_TABLE,
    Topology,
)
from tritontube.agents.views import is_ready
from tritontube.deps import Deps
from tritontube.domain import analytics as an
from tritontube.domain.events import VideoState, WatchEvent
from tritontube.settings import Settings
from tritontube.streams import catalogue
from tritontube.streams.codec import CodecError

STATS_AGENT = "video-stats"
HISTORY_AGENT = "watch-history"
STATS_INPUT = ("WatchEvent", "VideoState")
MAX_TRENDING_LIMIT = 200
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


def _dump(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _get(table: TableT[Any, Any], key: str) -> dict[str, Any] | None:
    raw = table.get(key.encode())
    return None if raw is None else dict(json.loads(raw))


class AnalyticsTables:
    """Typed access to the analytics tables (reads and writes go through the folds' dicts)."""

    def __init__(self, topology: Topology) -> None:
        self.sessions = topology.tables[WATCH_SESSIONS_TABLE]
        self.videos = topology.tables[VIDEO_ANALYTICS_TABLE]
        self.trending = topology.tables[TRENDING_TABLE]
        self.history = topology.tables[WATCH_HISTORY_TABLE]

    def session(self, video_id: str, user_id: str) -> an.WatchSession | None:
        raw = _get(self.sessions, an.session_key(video_id, user_id))
        return None if raw is None else an.session_from_dict(raw)

    def video(self, video_id: str) -> an.VideoAnalytics | None:
        raw = _get(self.videos, video_id)
        return None if raw is None else an.stats_from_dict(raw)

    def user_history(self, user_id: str) -> an.UserHistory | None:
        raw = _get(self.history, user_id)
        return None if raw is None else an.history_from_dict(raw)

    def top(self, partition: int) -> tuple[tuple[str, float], ...]:
        raw = _get(self.trending, f"p{partition}")
        return () if raw is None else tuple((str(v), float(s)) for v, s in raw["top"])

    def local_trending(self) -> set[str]:
        out: set[str] = set()
        for raw in self.trending.values():
            out.update(str(v) for v, _ in json.loads(raw)["top"])
        return out


@contextmanager
def attributed_to(event: EventT) -> Iterator[None]:
    """Table writes made inside are attributed to ``event``.

    Faust takes a table write's changelog partition (and a RocksDB store its partition
    database) from the stream's current event, which a ``take_events`` batch does not set
    in the agent's task; a write made on behalf of a batched event sets it explicitly.
    """
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


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
        self._tops: dict[int, tuple[tuple[str, float], ...]] = {}
        self._dirty_sessions: dict[str, EventT] = {}
        self._dirty_videos: dict[str, EventT] = {}
        self._dirty_tops: dict[int, EventT] = {}

    def session(self, video_id: str, user_id: str) -> an.WatchSession | None:
        key = an.session_key(video_id, user_id)
        if key not in self._sessions:
            self._sessions[key] = self._tables.session(video_id, user_id)
        return self._sessions[key]

    def video(self, video_id: str) -> an.VideoAnalytics | None:
        if video_id not in self._videos:
            self._videos[video_id] = self._tables.video(video_id)
        return self._videos[video_id]

    def top(self, partition: int) -> tuple[tuple[str, float], ...]:
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

    def put_top(self, event: EventT, partition: int, top: tuple[tuple[str, float], ...]) -> None:
        self._tops[partition] = top
        self._dirty_tops[partition] = event

    def flush(self) -> None:
        t = self._tables
        for key, event in self._dirty_sessions.items():
            session = self._sessions[key]
            if session is not None:
                with attributed_to(event):
                    t.sessions[key.encode()] = _dump(an.session_to_dict(session))
        for video_id, event in self._dirty_videos.items():
            stats = self._videos[video_id]
            if stats is not None:
                with attributed_to(event):
                    t.videos[video_id.encode()] = _dump(an.stats_to_dict(stats))
        for partition, event in self._dirty_tops.items():
            top = self._tops[partition]
            with attributed_to(event):
                t.trending[f"p{partition}".encode()] = _dump({"top": [list(x) for x in top]})
        self._dirty_sessions.clear()
        self._dirty_videos.clear()
        self._dirty_tops.clear()


def register(app: faust.App, topology: Topology, deps: Deps, settings: Settings) -> None:
    policy = policy_from(settings)
    tables = AnalyticsTables(topology)
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
        out: list[tuple[TopicT, bytes, bytes]] = []
        for event in events:
            metrics.observe_consumed(STATS_AGENT, event.message.topic, event.message.timestamp)
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
        out: list[tuple[TopicT, bytes, bytes]],
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
                    histories[user_id] = tables.user_history(user_id)
                before = histories[user_id]
                after = an.fold_history(before, watch, policy)
                if after is not before:
                    histories[user_id] = after
                    dirty[user_id] = event
            for user_id, event in dirty.items():
                history = histories[user_id]
                if history is not None:
                    with attributed_to(event):
                        tables.history[user_id.encode()] = _dump(an.history_to_dict(history))

    _register_views(app, deps, tables, policy)


def _not_ready(view: View) -> Response:
    return view.json({"error": "worker is recovering tables"}, status=503)


def _register_views(
    app: faust.App, deps: Deps, tables: AnalyticsTables, policy: an.AnalyticsPolicy
) -> None:
    @app.page("/users/{user_id}/history")
    class HistoryView(View):
        async def get(self, request: Request, user_id: str) -> Response:
            if not is_ready(app):
                return _not_ready(self)
            return await self.routed(request, user_id=user_id)  # type: ignore[call-arg]

        @app.table_route(table=tables.history, match_info="user_id")  # type: ignore[arg-type]
        async def routed(self, request: Request, user_id: str) -> Response:
            history = tables.user_history(user_id) or an.UserHistory(user_id=user_id)
            return self.json(an.history_json(history))

    @app.page("/stats/{video_id}")
    class StatsView(View):
        async def get(self, request: Request, video_id: str) -> Response:
            if not is_ready(app):
                return _not_ready(self)
            return await self.routed(request, video_id=video_id)  # type: ignore[call-arg]

        @app.table_route(table=tables.videos, match_info="video_id")  # type: ignore[arg-type]
        async def routed(self, request: Request, video_id: str) -> Response:
            stats = tables.video(video_id)
            if stats is None:
                return self.json({"videoId": video_id, "found": False}, status=404)
            now_ms = an.to_ms(deps.clock.now())
            return self.json(stats_json(stats, now_ms, policy))

    @app.page("/trending")
    class TrendingView(View):
        async def get(self, request: Request) -> Response:
            """Trending videos of the partitions this worker owns, scored now."""
            if not is_ready(app):
                return _not_ready(self)
            try:
                limit = max(1, min(MAX_TRENDING_LIMIT, int(request.query.get("limit", "50"))))
            except ValueError:
                return self.json({"error": "limit must be an integer"}, status=400)
            now_ms = an.to_ms(deps.clock.now())
            scored = []
            for video_id in tables.local_trending():
                stats = tables.video(video_id)
                if stats is not None:
                    score = an.trending_score(stats, now_ms, policy)
                    if score > 0:
                        scored.append((video_id, score))
            scored.sort(key=lambda item: (-item[1], item[0]))
            items = [{"videoId": v, "trendingScore": s} for v, s in scored[:limit]]
            return self.json({"videos": items})


def stats_json(stats: an.VideoAnalytics, now_ms: int, policy: an.AnalyticsPolicy) -> dict[str, Any]:
    public = an.to_public(stats, now_ms, policy)
    return {
        "videoId": stats.video_id,
        "version": stats.version,
        "views": stats.views,
        "viewers": stats.viewers,
        "watchSeconds": public.watch_seconds,
        "averageCompletion": public.average_completion,
        "trendingScore": public.trending_score,
        "durationSeconds": stats.duration_seconds,
        "recentViewers": list(stats.recent_viewers),
        "updatedAt": public.updated_at.isoformat(),
    }
