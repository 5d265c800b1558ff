"""The watch-analytics folds: view rule, watch time, dedupe, completion, trending, history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tritontube.domain import analytics as an
from tritontube.domain.events import VideoState, VideoStats, WatchEvent
from tritontube.indexer.join import SearchSource, join_state, join_stats, to_document

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
P = an.AnalyticsPolicy(min_view_seconds=10, view_window_seconds=3600, max_gap_seconds=30)


def ev(eid: str, kind: str, at: float, pos: float, user: str = "u", video: str = "v") -> WatchEvent:
    moment = T0 + timedelta(seconds=at)
    return WatchEvent(eid, video, user, kind, pos, moment, moment)


def run(events: list[WatchEvent], duration: float | None = 100.0) -> an.VideoAnalytics:
    sessions: dict[str, an.WatchSession] = {}
    stats: an.VideoAnalytics | None = None
    for e in events:
        key = an.session_key(e.video_id, e.user_id)
        folded = an.fold_session(sessions.get(key), e, duration, P)
        if folded is None:
            continue
        sessions[key], delta = folded
        stats = an.fold_stats(stats or an.VideoAnalytics(e.video_id), e.user_id, delta, P)
    assert stats is not None
    return stats


def test_watch_time_is_credited_only_while_playing_and_capped_by_the_gap() -> None:
    stats = run(
        [
            ev("1", "PLAY", 0, 0),
            ev("2", "HEARTBEAT", 5, 5),
            ev("3", "PAUSE", 8, 8),
            ev("4", "PLAY", 100, 8),  # paused for 92 s: not watched
            ev("5", "HEARTBEAT", 200, 20),  # heartbeats lost for 100 s: capped at 30
        ]
    )
    assert stats.watch_seconds == pytest.approx(5 + 3 + 30)


def test_a_view_counts_after_the_minimum_once_per_user_per_window() -> None:
    short = run([ev("1", "PLAY", 0, 0), ev("2", "PAUSE", 9, 9)])
    assert short.views == 0
    stats = run(
        [
            ev("1", "PLAY", 0, 0),
            ev("2", "HEARTBEAT", 10, 10),  # 10 s: a view
            ev("3", "HEARTBEAT", 20, 20),  # same window: no second view
            ev("4", "PLAY", 3600, 0),  # next window
            ev("5", "HEARTBEAT", 3610, 10),
            ev("6", "PLAY", 0, 0, user="w"),
            ev("7", "HEARTBEAT", 12, 12, user="w"),
        ]
    )
    assert (stats.views, stats.viewers) == (3, 2)


def test_duplicate_event_ids_count_once() -> None:
    once = run([ev("1", "PLAY", 0, 0), ev("2", "HEARTBEAT", 20, 20)])
    twice = run([ev("1", "PLAY", 0, 0), ev("2", "HEARTBEAT", 20, 20), ev("2", "HEARTBEAT", 20, 20)])
    assert twice == once
    session = an.fold_session(None, ev("1", "PLAY", 0, 0), 100, P)
    assert session is not None
    assert an.fold_session(session[0], ev("1", "PLAY", 0, 0), 100, P) is None


def test_recent_event_ids_are_bounded() -> None:
    policy = an.AnalyticsPolicy(recent_event_ids=3)
    session: an.WatchSession | None = None
    for i in range(10):
        folded = an.fold_session(session, ev(str(i), "HEARTBEAT", i, i), 100, policy)
        assert folded is not None
        session = folded[0]
    assert session is not None and session.recent_event_ids == ("7", "8", "9")


def test_out_of_order_events_add_no_time() -> None:
    stats = run([ev("1", "PLAY", 0, 0), ev("3", "HEARTBEAT", 20, 20), ev("2", "HEARTBEAT", 10, 10)])
    assert stats.watch_seconds == pytest.approx(20)


def test_average_completion_is_the_mean_of_each_viewers_furthest_point() -> None:
    stats = run(
        [
            ev("1", "PLAY", 0, 0, user="a"),
            ev("2", "HEARTBEAT", 10, 50, user="a"),
            ev("3", "SEEK", 11, 10, user="a"),  # seeking back keeps the furthest point
            ev("4", "PLAY", 0, 0, user="b"),
            ev("5", "ENDED", 5, 100, user="b"),
        ]
    )
    assert stats.average_completion == pytest.approx((0.5 + 1.0) / 2)


def test_trending_weights_recent_activity_and_forgets_the_window() -> None:
    policy = an.AnalyticsPolicy(
        min_view_seconds=1, trending_window_seconds=3600, trending_step_seconds=600
    )
    session = an.fold_session(None, ev("1", "PLAY", 0, 0), None, policy)
    assert session is not None
    s2 = an.fold_session(session[0], ev("2", "HEARTBEAT", 30, 30), None, policy)
    assert s2 is not None
    stats = an.fold_stats(an.VideoAnalytics("v"), "u", s2[1], policy)
    now = an.to_ms(T0 + timedelta(minutes=10))
    fresh = an.trending_score(stats, now, policy)
    later = an.trending_score(stats, now + 30 * 60_000, policy)
    gone = an.trending_score(stats, now + 61 * 60_000, policy)
    assert fresh > later > 0
    assert gone == 0


def test_update_top_keeps_the_k_best() -> None:
    top: tuple[tuple[str, float], ...] = ()
    for vid, score in [("a", 1.0), ("b", 3.0), ("c", 2.0), ("a", 4.0), ("d", 0.5)]:
        top = an.update_top(top, vid, score, 3)
    assert top == (("a", 4.0), ("b", 3.0), ("c", 2.0))
    assert an.update_top(top, "a", 0.0, 3) == (("b", 3.0), ("c", 2.0))


def test_history_is_newest_first_bounded_and_remembers_finished_videos() -> None:
    policy = an.AnalyticsPolicy(history_size=2)
    h = an.fold_history(None, ev("1", "ENDED", 0, 100, video="a"), policy)
    h = an.fold_history(h, ev("2", "PLAY", 10, 0, video="b"), policy)
    h = an.fold_history(h, ev("3", "PLAY", 20, 5, video="a"), policy)
    assert [(e.video_id, e.completed) for e in h.entries] == [("a", True), ("b", False)]
    assert an.fold_history(h, ev("3", "PLAY", 20, 5, video="a"), policy) is h
    h = an.fold_history(h, ev("4", "PLAY", 30, 0, video="c"), policy)
    assert [e.video_id for e in h.entries] == ["c", "a"]


# -- the indexer's join ----------------------------------------------------------------
def vstate(version: int, **changes: object) -> VideoState:
    base = {
        "video_id": "v",
        "version": version,
        "status": "READY",
        "owner": "o",
        "title": "t",
        "created_at": T0,
        "updated_at": T0,
        "expires_at": T0,
    }
    return VideoState(**{**base, **changes})  # type: ignore[arg-type]


def vstats(version: int, views: int) -> VideoStats:
    return VideoStats("v", version, views, views, 1.0, 0.5, 2.0, T0)


def test_the_document_version_grows_with_state_and_stats_and_ignores_stale_parts() -> None:
    src: SearchSource | None = join_stats(None, vstats(2, 5))
    assert to_document(src) is None  # no state yet: nothing to index
    src = join_state(src, vstate(3))
    doc = to_document(src)
    assert doc is not None and (doc.version, doc.views) == (5, 5)
    assert join_state(src, vstate(2, title="old")) is src
    assert join_stats(src, vstats(1, 99)) is src
    newer = to_document(join_stats(src, vstats(3, 6)))
    assert newer is not None and newer.version == 6
    private = to_document(join_state(src, vstate(4, visibility="private")))
    assert private is not None and private.version == 6 and private.visibility == "private"


def test_any_interleaving_of_the_two_topics_ends_at_the_same_document() -> None:
    parts = [vstate(1, status="TRANSCODING"), vstats(1, 1), vstate(2), vstats(2, 4)]
    forward: SearchSource | None = None
    backward: SearchSource | None = None
    for p in parts:
        forward = join_state(forward, p) if isinstance(p, VideoState) else join_stats(forward, p)
    for p in reversed(parts):
        backward = join_state(backward, p) if isinstance(p, VideoState) else join_stats(backward, p)
    assert forward is not None and backward is not None
    assert to_document(forward) == to_document(backward)


def test_recent_viewers_keep_the_newest_n_whatever_the_count() -> None:
    policy = an.AnalyticsPolicy(recent_viewers=20)
    stats = an.VideoAnalytics("v")
    for i in range(15):
        stats = an.fold_stats(stats, f"u{i}", an.SessionDelta(at_ms=i), policy)
    assert stats.recent_viewers == tuple(f"u{i}" for i in range(15))
    for i in range(15, 30):
        stats = an.fold_stats(stats, f"u{i}", an.SessionDelta(at_ms=i), policy)
    assert stats.recent_viewers == tuple(f"u{i}" for i in range(10, 30))
