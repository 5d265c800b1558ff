"""Watch events through the real broker and worker: stats, history, trending, restart, dedupe."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from helpers import produce, read_all, read_topic, wait_for, worker_get
from tritontube.devstack.stack import EmbeddedStack
from tritontube.domain import analytics as an
from tritontube.domain.events import VideoState, WatchEvent
from tritontube.settings import AnalyticsSettings, Settings
from tritontube.streams import catalogue
from tritontube.streams.records import EventCodec

pytestmark = pytest.mark.integration


T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)


def ready_state(video_id: str, duration: float = 100.0, version: int = 4) -> VideoState:
    return VideoState(
        video_id=video_id,
        version=version,
        status="READY",
        owner="carol",
        title=f"Video {video_id}",
        created_at=T0,
        updated_at=T0,
        expires_at=T0 + timedelta(minutes=15),
        duration_seconds=duration,
    )


def watch(
    event_id: str, user: str, kind: str, at: float, pos: float, video: str = "v1"
) -> WatchEvent:
    return WatchEvent(
        event_id=event_id,
        video_id=video,
        user_id=user,
        kind=kind,
        position_seconds=pos,
        occurred_at=T0 + timedelta(seconds=at),
        received_at=T0 + timedelta(seconds=at),
    )


def stats_when(settings: Settings, video_id: str, version: int) -> Callable[[], Any]:
    def check() -> Any:
        status, body = worker_get(settings, f"/stats/{video_id}")
        return status == 200 and body.version >= version and body

    return check


async def test_stats_history_and_trending_survive_a_restart_and_dedupe_event_ids(
    make_settings: Callable[..., Settings],
    stack_factory: Callable[..., EmbeddedStack],
    codec: EventCodec,
) -> None:
    settings = make_settings(analytics=AnalyticsSettings(min_view_seconds=5.0))
    stack = stack_factory(settings)
    bootstrap = settings.kafka.bootstrap_servers
    await produce(bootstrap, catalogue.VIDEO_STATE.name, [("v1", codec.encode(ready_state("v1")))])
    events = [
        watch("a1", "alice", "PLAY", 0, 0),
        watch("a2", "alice", "HEARTBEAT", 10, 10),
        watch("a2", "alice", "HEARTBEAT", 10, 10),  # a client retry: counts once
        watch("a3", "alice", "HEARTBEAT", 20, 20),
        watch("a4", "alice", "PAUSE", 25, 25),
        watch("b1", "bob", "PLAY", 0, 0),
        watch("b2", "bob", "ENDED", 3, 100),  # bob skipped to the end: finished, not a view
    ]
    await produce(bootstrap, catalogue.WATCH_EVENTS.name, [("v1", codec.encode(e)) for e in events])
    before = await wait_for(stats_when(settings, "v1", 6))
    assert before.version == 6
    assert before.views == 1
    assert before.viewers == 2
    assert before.watch_seconds == pytest.approx(28.0)
    assert before.average_completion == pytest.approx((0.25 + 1.0) / 2)
    assert an.trending_score(before, before.last_event_ms, an.AnalyticsPolicy()) > 0
    _, alice = await wait_for(
        lambda: (r := worker_get(settings, "/users/alice/history"))[0] == 200 and r[1].entries and r
    )
    _, bob = await wait_for(
        lambda: (r := worker_get(settings, "/users/bob/history"))[0] == 200 and r[1].entries and r
    )
    assert [(e.video_id, e.completed) for e in alice.entries] == [("v1", False)]
    assert [(e.video_id, e.completed) for e in bob.entries] == [("v1", True)]
    assert alice.entries[0].position_seconds == 25
    _, trending = worker_get(settings, "/trending")
    assert [t.video_id for t in trending.entries] == ["v1"]
    assert set(trending.partitions) == set(range(settings.kafka.partitions))
    # One VideoStats per video and batch (not per event): the last one is the state after
    # all six accepted events, and no record counts the duplicate.
    public = await read_all(bootstrap, catalogue.VIDEO_STATS.name, codec)
    versions = [stats.version for _, stats in public]
    assert versions == sorted(versions) and 1 <= len(versions) <= 6
    last = public[-1][1]
    assert (last.version, last.views, last.viewers) == (6, 1, 2)

    worker = next(p for p in stack.processes if p.name == "worker")
    worker.stop()
    stack.processes.remove(worker)
    stack.start_worker()

    after = await wait_for(stats_when(settings, "v1", 6), timeout=60)
    assert after == before
    assert worker_get(settings, "/users/alice/history")[1] == alice
    more = [
        watch("a3", "alice", "HEARTBEAT", 20, 20),  # redelivered after the restart
        watch("a5", "alice", "PLAY", 30, 25),
        watch("a6", "alice", "HEARTBEAT", 40, 35),
    ]
    await produce(bootstrap, catalogue.WATCH_EVENTS.name, [("v1", codec.encode(e)) for e in more])
    final = await wait_for(stats_when(settings, "v1", 8))
    assert final.version == 8
    assert final.views == 1  # same user, same view window
    assert final.watch_seconds == pytest.approx(38.0)


async def test_undecodable_watch_events_are_dead_lettered(
    make_settings: Callable[..., Settings],
    stack_factory: Callable[..., EmbeddedStack],
    codec: EventCodec,
) -> None:
    settings = make_settings()
    stack_factory(settings)
    bootstrap = settings.kafka.bootstrap_servers
    await produce(
        bootstrap,
        catalogue.WATCH_EVENTS.name,
        [("v9", b"garbage"), ("v9", codec.encode(watch("x1", "dan", "PLAY", 0, 0, video="v9")))],
    )
    await wait_for(stats_when(settings, "v9", 1))
    dead = await read_topic(bootstrap, catalogue.WATCH_EVENTS.dlq, expect=1)
    assert [codec.decode(d.value).value for d in dead] == [b"garbage"]
