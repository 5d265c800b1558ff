"""The transcode queue: who waits, since when, and in which place."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from tritontube.domain.events import VideoState
from tritontube.domain.queue import QueuePosition, WaitingVideo, position, waiting_entry

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def state(status: str, step: str | None = None, at: int = 0) -> VideoState:
    return VideoState(
        video_id="v",
        version=1,
        status=status,
        owner="alice",
        title="t",
        created_at=T0,
        updated_at=T0 + timedelta(seconds=at),
        expires_at=T0,
        step=step,
    )


def test_a_video_waits_from_its_completed_upload_until_encoding_starts() -> None:
    entry = waiting_entry(None, state("PENDING_TRANSCODE", at=5))
    assert entry == WaitingVideo("v", T0 + timedelta(seconds=5))
    # Probing and a chunked job's parts waiting for workers keep its place (its first "since").
    assert waiting_entry(entry, state("TRANSCODING", "PROBING", at=9)) is entry
    assert waiting_entry(entry, state("TRANSCODING", "QUEUED", at=12)) is entry
    assert waiting_entry(entry, state("TRANSCODING", "ENCODING", at=20)) is None
    assert waiting_entry(None, state("READY", at=30)) is None
    assert waiting_entry(None, state("UPLOAD_PENDING", at=1)) is None
    # A retry queues again, at the back.
    again = waiting_entry(None, state("PENDING_TRANSCODE", at=40))
    assert again is not None and again.since == T0 + timedelta(seconds=40)


def test_positions_are_first_come_first_served() -> None:
    entries = [
        WaitingVideo("c", T0 + timedelta(seconds=3)),
        WaitingVideo("a", T0 + timedelta(seconds=1)),
        WaitingVideo("b", T0 + timedelta(seconds=3)),  # a tie: by video id
    ]
    assert position(entries, "a") == QueuePosition("a", 1, 3)
    assert position(entries, "b") == QueuePosition("b", 2, 3)
    assert position(entries, "c") == QueuePosition("c", 3, 3)
    assert position(entries, "d") is None
    assert position([replace(entries[0], video_id="d")], "d") == QueuePosition("d", 1, 1)
