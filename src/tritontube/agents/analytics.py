"""Watch analytics agents: thin adapters over the folds in ``domain.analytics``.

* ``video-stats`` consumes ``watch-events`` (keyed by video id). For each new (not
  duplicate) watch event it folds the viewer's session and the video's totals, keeps the
  partition's trending top list, publishes a ``VideoStats`` record on ``video-stats`` (the
  indexer's input) and forwards the event, keyed by viewer, to ``watch-events-by-user``. A
  video's duration (completion needs it) is its latest VideoState's, read from the search
  join's ``search_sources`` table (keyed by video id like ``watch-events``, so the same
  worker owns both partitions).
* ``watch-history`` consumes ``watch-events-by-user`` and folds each user's history.
* ``video-deletions`` watches ``video-state`` for tombstones (a deleted video): the video's
  totals go from ``video_analytics`` (so it leaves trending, which scores only videos with
  totals) and a tombstone follows on ``video-stats``. Watch sessions stay (keyed
  video/viewer, they are never read on their own); a deleted video's history entries are
  filtered when read.

All state is in Faust tables (Avro values, ``agents.tables``); their changelogs make it
survive restarts. Each partition's trending top list is a ``PartitionTrending`` keyed
``p<partition>``; a trending read fans out over every partition (``agents.queries``).

Both run on whole fetched batches (``agents.batching``: Faust's per-event stream machinery
caps a Faust agent at ~5k events per CPU-second). A batch is one partition's records from
one fetch. Sessions are folded event by event, in order, against a per-batch cache of the
table values, so each event sees the ones before it exactly as if it were alone; each
video's totals absorb the batch's session deltas in one fold (``fold_stats_many``, equal to
folding them one by one); then every changed key is written once, ONE ``VideoStats`` per
changed video is published (its state after the batch; the version still counts every
accepted event), and the partition's top list is updated once per changed video with that
final score. Forwarded copies are the input bytes as they came, re-keyed by viewer, sent
with the batch's other outputs. The batch's offsets are committed only after its outputs and
then its changelog records are in the broker (``agents.batching``).
The tables are read by the worker's query views (``agents.queries``).
"""

from __future__ import annotations

from dataclasses import dataclass

from tritontube import metrics
from tritontube.agents.batching import Batch, BatchingApp, Checkpoint, Route
from tritontube.agents.dlq import dead_letter_batched
from tritontube.agents.tables import TypedTable, shared
from tritontube.agents.topology import (
    SEARCH_SOURCES_TABLE,
    TRENDING_TABLE,
    VIDEO_ANALYTICS_TABLE,
    WATCH_HISTORY_TABLE,
    WATCH_SESSIONS_TABLE,
    Topology,
)
from tritontube.deps import Deps
from tritontube.domain import analytics as an
from tritontube.indexer.join import SearchSource
from tritontube.settings import Settings
from tritontube.streams import catalogue
from tritontube.streams.codec import CodecError
from tritontube.streams.partitioning import partition_of
from tritontube.streams.records import EventCodec

STATS_AGENT = "video-stats"
HISTORY_AGENT = "watch-history"
DELETIONS_AGENT = "video-deletions"
WATCH_INPUT = ("WatchEvent",)


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
    sources: TypedTable[SearchSource]  # the search join's: latest VideoState per video

    @classmethod
    def of(cls, topology: Topology, codec: EventCodec) -> AnalyticsTables:
        t = topology.tables
        return cls(
            sessions=TypedTable(t[WATCH_SESSIONS_TABLE], codec, an.WatchSession),
            videos=TypedTable(t[VIDEO_ANALYTICS_TABLE], codec, an.VideoAnalytics),
            trending=TypedTable(t[TRENDING_TABLE], codec, an.PartitionTrending),
            history=TypedTable(t[WATCH_HISTORY_TABLE], codec, an.UserHistory),
            sources=shared(topology, SEARCH_SOURCES_TABLE, codec, SearchSource),
        )

    def session(self, video_id: str, user_id: str) -> an.WatchSession | None:
        return self.sessions.get(an.session_key(video_id, user_id))

    def top(self, partition: int) -> tuple[an.TrendingEntry, ...]:
        found = self.trending.get(f"p{partition}")
        return () if found is None else found.top


class BatchState:
    """The analytics table values one batch touches: read once, written once per key.

    Reads see the batch's own earlier writes, so folding events one by one against it is
    the same as processing them one at a time; :meth:`flush` puts every changed key into
    the batch's checkpoint once.
    """

    def __init__(self, tables: AnalyticsTables) -> None:
        self._tables = tables
        self._sessions: dict[str, an.WatchSession | None] = {}
        self._videos: dict[str, an.VideoAnalytics | None] = {}
        self._durations: dict[str, float | None] = {}
        self._dirty_sessions: set[str] = set()
        self.dirty_videos: dict[str, an.VideoAnalytics] = {}

    def session(self, key: str) -> an.WatchSession | None:
        if key not in self._sessions:
            self._sessions[key] = self._tables.sessions.get(key)
        return self._sessions[key]

    def duration(self, video_id: str) -> float | None:
        """The video's duration: its latest VideoState's, as the search join keeps it
        (``search_sources``, the same partition), else what its statistics last learnt."""
        if video_id not in self._durations:
            source = self._tables.sources.get(video_id)
            known = None if source is None else source.duration_seconds
            if known is None:
                stats = self.video(video_id)
                known = None if stats is None else stats.duration_seconds
            self._durations[video_id] = known
        return self._durations[video_id]

    def video(self, video_id: str) -> an.VideoAnalytics | None:
        if video_id not in self._videos:
            self._videos[video_id] = self._tables.videos.get(video_id)
        return self._videos[video_id]

    def put_session(self, key: str, session: an.WatchSession) -> None:
        self._sessions[key] = session
        self._dirty_sessions.add(key)

    def put_video(self, stats: an.VideoAnalytics) -> None:
        self._videos[stats.video_id] = stats
        self.dirty_videos[stats.video_id] = stats

    def flush(self, out: Checkpoint) -> None:
        t = self._tables
        for key in self._dirty_sessions:
            session = self._sessions[key]
            if session is not None:
                out.put(t.sessions, key, session)
        for video_id, stats in self.dirty_videos.items():
            out.put(t.videos, video_id, stats)


def register(app: BatchingApp, topology: Topology, deps: Deps, settings: Settings) -> None:
    """Route ``watch-events``, ``video-state`` (durations) and ``watch-events-by-user`` to
    the batch handlers below (``agents.batching``)."""
    policy = policy_from(settings)
    tables = AnalyticsTables.of(topology, deps.codec)
    top_k = settings.analytics.trending_top_k
    n_stats = catalogue.partitions_of(catalogue.VIDEO_STATS, settings.kafka.partitions)
    n_by_user = catalogue.partitions_of(catalogue.WATCH_EVENTS_BY_USER, settings.kafka.partitions)
    n_watch = catalogue.partitions_of(catalogue.WATCH_EVENTS, settings.kafka.partitions)
    stats_topic = catalogue.VIDEO_STATS.name
    by_user_topic = catalogue.WATCH_EVENTS_BY_USER.name
    kinds = an.KINDS
    decode = deps.codec.decode

    async def on_watch_batch(batch: Batch, out: Checkpoint) -> None:
        records = batch.records
        metrics.observe_consumed_batch(
            STATS_AGENT, batch.tp.topic, len(records), records[0].timestamp
        )
        state = BatchState(tables)
        duplicates = views = 0
        deltas: dict[str, list[tuple[str, an.SessionDelta]]] = {}
        for record in records:
            try:
                watch = decode(record.value, expect=WATCH_INPUT)
                if watch.kind not in kinds:
                    raise CodecError(f"unknown watch event kind {watch.kind!r}")
            except CodecError as exc:
                dead_letter_batched(out, deps, record, exc, partitions=n_watch)
                continue
            video_id, user_id = watch.video_id, watch.user_id
            duration = state.duration(video_id)
            key = an.session_key(video_id, user_id)
            folded = an.fold_session(state.session(key), watch, duration, policy)
            if folded is None:
                duplicates += 1
                continue
            session, delta = folded
            state.put_session(key, session)
            deltas.setdefault(video_id, []).append((user_id, delta))
            views += delta.views
            # The viewer's history is keyed by viewer: the event as it came, re-keyed.
            user_key = user_id.encode()
            out.send(
                by_user_topic,
                user_key,
                record.value,
                partition=partition_of(user_key, n_by_user),
                timestamp_ms=record.timestamp,
            )
        for video_id, video_deltas in deltas.items():
            stats = state.video(video_id) or an.VideoAnalytics(video_id=video_id)
            stats = an.with_duration(stats, state.duration(video_id))
            state.put_video(an.fold_stats_many(stats, video_deltas, policy))
        state.flush(out)
        if state.dirty_videos:
            top = tables.top(batch.partition)
            for video_id, stats in state.dirty_videos.items():
                public = an.to_public(stats, stats.last_event_ms, policy)
                top = an.update_top(top, video_id, public.trending_score, top_k)
                video_key = video_id.encode()
                out.send(
                    stats_topic,
                    video_key,
                    deps.codec.encode(public),
                    partition=partition_of(video_key, n_stats),
                )
            out.put(
                tables.trending, f"p{batch.partition}", an.PartitionTrending(batch.partition, top)
            )
        if duplicates:
            metrics.WATCH_EVENTS_DUPLICATE.inc(duplicates)
        if views:
            metrics.VIEWS_COUNTED.inc(views)

    async def on_history_batch(batch: Batch, out: Checkpoint) -> None:
        records = batch.records
        metrics.observe_consumed_batch(
            HISTORY_AGENT, batch.tp.topic, len(records), records[0].timestamp
        )
        histories: dict[str, an.UserHistory | None] = {}
        dirty: set[str] = set()
        for record in records:
            try:
                watch = decode(record.value, expect=WATCH_INPUT)
            except CodecError as exc:
                dead_letter_batched(out, deps, record, exc, partitions=n_by_user)
                continue
            user_id = watch.user_id
            if user_id not in histories:
                histories[user_id] = tables.history.get(user_id)
            before = histories[user_id]
            after = an.fold_history(before, watch, policy)
            if after is not before:
                histories[user_id] = after
                dirty.add(user_id)
        for user_id in dirty:
            history = histories[user_id]
            if history is not None:
                out.put(tables.history, user_id, history)

    async def on_state_batch(batch: Batch, out: Checkpoint) -> None:
        """A deleted video's tombstone: drop its totals (the trending view scores only videos
        that have totals, so it leaves trending too; its place in the partition's top list
        is rewritten away by that list's next update) and follow with a stats tombstone."""
        for record in batch.records:
            if record.value is not None:
                continue
            video_id = bytes(record.key or b"").decode()
            if tables.videos.get(video_id) is not None:
                out.delete(tables.videos, video_id)
            video_key = video_id.encode()
            out.send(stats_topic, video_key, None, partition=partition_of(video_key, n_stats))

    router = app.batch_router
    router.route(topology.topic(catalogue.VIDEO_STATE), Route(DELETIONS_AGENT, on_state_batch))
    router.route(topology.topic(catalogue.WATCH_EVENTS), Route(STATS_AGENT, on_watch_batch))
    router.route(
        topology.topic(catalogue.WATCH_EVENTS_BY_USER), Route(HISTORY_AGENT, on_history_batch)
    )
