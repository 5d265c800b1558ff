"""The end of a rebalance: stream partitions resume only after the seek and the queue clear.

A recording consumer stands in for Kafka (the order of calls is the behaviour under test);
the real worker app builds the recovery. The loss this prevents is reproduced end to end by
``tests/faults/test_worker_faults.py -k mid_indexing``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import faust
import pytest
from faust.tables.recovery import Recovery
from faust.types import TP

from tritontube.agents import faust_fixes
from tritontube.agents.app import create_worker_app
from tritontube.deps import build_deps
from tritontube.settings import KafkaSettings, Settings

STREAM = TP("video-state", 0)


class RecordingConsumer:
    """What the recovery asks of the consumer, in order."""

    def __init__(self, calls: list[str], assignment: set[TP], committed: dict[TP, int]) -> None:
        self.calls = calls
        self._assignment = assignment
        self._committed_offset = committed

    def assignment(self) -> set[TP]:
        return set(self._assignment)

    async def perform_seek(self) -> None:
        self.calls.append("seek")

    async def earliest_offsets(self, *tps: TP) -> dict[TP, int]:
        self.calls.append(f"earliest{sorted(tp.topic for tp in tps)}")
        return dict.fromkeys(tps, 0)

    async def seek_wait(self, offsets: dict[TP, int]) -> None:
        self.calls.append(f"seek_wait{sorted((tp.topic, o) for tp, o in offsets.items())}")

    def resume_partitions(self, tps: set[TP]) -> None:
        self.calls.append(f"resume_partitions{sorted(tp.topic for tp in tps)}")

    def resume_flow(self) -> None:
        self.calls.append("resume_flow")


def recording_app(
    app: faust.App,
    calls: list[str],
    monkeypatch: pytest.MonkeyPatch,
    committed: dict[TP, int] | None = None,
) -> None:
    changelog = next(iter(app.tables.changelog_topics))
    app._consumer = RecordingConsumer(  # type: ignore[assignment]
        calls, {STREAM, TP(changelog, 0)}, {STREAM: 7} if committed is None else committed
    )
    clear_queues = app.flow_control.resume

    def resume_flow_control() -> None:
        calls.append("clear_queues")
        clear_queues()

    async def start_fetcher() -> None:
        calls.append("fetcher")

    monkeypatch.setattr(app.flow_control, "resume", resume_flow_control)
    monkeypatch.setitem(app.__dict__, "_fetcher", SimpleNamespace(maybe_start=start_fetcher))


@pytest.fixture
def worker_app(make_settings: Callable[..., Settings]) -> Iterator[faust.App]:
    # Nothing connects: the app is built, never started (and the broker patches stay off).
    settings = make_settings(kafka=KafkaSettings(bootstrap_servers="127.0.0.1:9", partitions=2))
    deps = build_deps(settings)
    try:
        yield create_worker_app(settings, deps).app
    finally:
        deps.close()


def test_the_worker_recovers_with_the_stream_safe_recovery(worker_app: faust.App) -> None:
    assert isinstance(worker_app.tables, faust_fixes.TableManager)
    assert isinstance(worker_app.tables.recovery, faust_fixes.StreamSafeRecovery)


@pytest.mark.parametrize("end", ["on_recovery_completed", "_resume_streams"])
async def test_stream_partitions_resume_after_the_seek_and_the_clear(
    worker_app: faust.App, monkeypatch: pytest.MonkeyPatch, end: str
) -> None:
    calls: list[str] = []
    recording_app(worker_app, calls, monkeypatch)
    await getattr(worker_app.tables.recovery, end)(worker_app.consumer_generation_id)
    # Only the stream partition resumes, and only once its position is final and the queues
    # hold nothing that was fetched before.
    assert calls == [
        "seek",
        "clear_queues",
        "resume_partitions['video-state']",
        "resume_flow",
        "fetcher",
    ]


async def test_a_partition_never_committed_restarts_from_the_earliest_offset(
    worker_app: faust.App, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The rebalance cleared what the queues held of it; the seek to "committed" cannot move it.
    calls: list[str] = []
    recording_app(worker_app, calls, monkeypatch, committed={})
    await worker_app.tables.recovery.on_recovery_completed(worker_app.consumer_generation_id)
    assert calls[:4] == [
        "seek",
        "earliest['video-state']",
        "seek_wait[('video-state', 0)]",
        "clear_queues",
    ]
    assert calls[4:] == ["resume_partitions['video-state']", "resume_flow", "fetcher"]


async def test_a_newer_generation_resumes_nothing(
    worker_app: faust.App, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    recording_app(worker_app, calls, monkeypatch)
    await worker_app.tables.recovery.on_recovery_completed(worker_app.consumer_generation_id + 1)
    assert calls == []


async def test_faust_itself_still_resumes_before_seeking(
    worker_app: faust.App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Why the subclass exists: when this fails, upstream fixed the order (issue #596) and
    the recovery part of :mod:`tritontube.agents.faust_fixes` can go."""
    calls: list[str] = []
    recording_app(worker_app, calls, monkeypatch)
    upstream: Any = Recovery(worker_app, worker_app.tables)
    await upstream.on_recovery_completed(worker_app.consumer_generation_id)
    assert calls.index("resume_partitions['video-state']") < calls.index("seek")
    assert calls.index("seek") < calls.index("clear_queues")
