"""Watch analytics agents: thin adapters over the folds in ``domain.analytics``.

* ``video-stats`` consumes ``watch-events`` and ``video-state`` (both keyed by video id, so
  co-partitioned). For each new (not duplicate) watch event it folds the viewer's session
  and the video's totals, keeps the partition's trending top list, publishes a
  ``VideoStats`` record on ``video-stats`` (the indexer's input) and forwards the event,
  keyed by viewer, to ``watch-events-by-user``. VideoState only teaches it durations.
* ``watch-history`` consumes ``watch-events-by-user`` and folds each user's history.

All state is in Faust tables (JSON values); their changelogs make it survive restarts.
Web views (routed to the worker owning the key): ``/users/{user_id}/history``,
``/stats/{video_id}`` and ``/trending``.
"""

from __future__ import annotations

import json
from typing import Any

import faust
from faust.types import EventT, StreamT
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


def _get(table: faust.Table, key: str) -> dict[str, Any] | None:
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


def register(app: faust.App, topology: Topology, deps: Deps, settings: Settings) -> None:
    policy = policy_from(settings)
    tables = AnalyticsTables(topology)
    top_k = settings.analytics.trending_top_k
    stats_input = app.topic(
        catalogue.WATCH_EVENTS.name,
        catalogue.VIDEO_STATE.name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )

    async def on_watch(event: EventT, watch: WatchEvent) -> None:
        stats = tables.video(watch.video_id) or an.VideoAnalytics(video_id=watch.video_id)
        folded = an.fold_session(
            tables.session(watch.video_id, watch.user_id), watch, stats.duration_seconds, policy
        )
        if folded is None:
            metrics.WATCH_EVENTS_DUPLICATE.inc()
            return
        session, delta = folded
        stats = an.fold_stats(stats, watch.user_id, delta, policy)
        tables.sessions[an.session_key(watch.video_id, watch.user_id).encode()] = _dump(
            an.session_to_dict(session)
        )
        tables.videos[watch.video_id.encode()] = _dump(an.stats_to_dict(stats))
        public = an.to_public(stats, stats.last_event_ms, policy)
        partition = event.message.partition
        top = an.update_top(tables.top(partition), watch.video_id, public.trending_score, top_k)
        tables.trending[f"p{partition}".encode()] = _dump({"top": [list(t) for t in top]})
        metrics.VIEWS_COUNTED.inc(delta.views)
        key = watch.video_id.encode()
        await topology.topic(catalogue.VIDEO_STATS).send(key=key, value=deps.codec.encode(public))
        await topology.topic(catalogue.WATCH_EVENTS_BY_USER).send(
            key=watch.user_id.encode(), value=event.value
        )

    def on_state(state: VideoState) -> None:
        stats = tables.video(state.video_id) or an.VideoAnalytics(video_id=state.video_id)
        updated = an.with_duration(stats, state.duration_seconds)
        if updated is not stats:
            tables.videos[state.video_id.encode()] = _dump(an.stats_to_dict(updated))

    @app.agent(stats_input, name=STATS_AGENT)
    async def video_stats_agent(stream: StreamT) -> None:
        async for event in stream.events():
            metrics.observe_consumed(STATS_AGENT, event.message.topic, event.message.timestamp)
            try:
                record = deps.codec.decode(event.value, expect=STATS_INPUT)
                if isinstance(record, WatchEvent) and record.kind not in an.KINDS:
                    raise CodecError(f"unknown watch event kind {record.kind!r}")
            except CodecError as exc:
                await dead_letter(topology, deps, event, exc)
                continue
            if isinstance(record, VideoState):
                on_state(record)
            else:
                await on_watch(event, record)

    @app.agent(topology.topic(catalogue.WATCH_EVENTS_BY_USER), name=HISTORY_AGENT)
    async def watch_history_agent(stream: StreamT) -> None:
        async for event in stream.events():
            metrics.observe_consumed(HISTORY_AGENT, event.message.topic, event.message.timestamp)
            try:
                watch = deps.codec.decode(event.value, expect=("WatchEvent",))
            except CodecError as exc:
                await dead_letter(topology, deps, event, exc)
                continue
            before = tables.user_history(watch.user_id)
            after = an.fold_history(before, watch, policy)
            if after is not before:
                tables.history[watch.user_id.encode()] = _dump(an.history_to_dict(after))

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
