"""Properties of the video state machine (hypothesis).

Logs are generated the way the system produces them for one video (a session, completions —
duplicates and forgeries included — expiry races, transcode attempts with progress, rendition
and zombie events); delivery is at-least-once: the consumer may crash and rewind to any earlier
offset. The folded state must not depend on how often anything was delivered.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from tritontube.domain import video
from tritontube.domain.events import (
    Rendition,
    RenditionProgress,
    RenditionReady,
    TranscodeFailed,
    TranscodeProgress,
    TranscodeSucceeded,
    UploadCompleted,
    UploadSessionCreated,
    UploadSessionExpired,
    VideoEvent,
    VideoState,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
VID = "v1"
ETAG = "etag-1"
JOB = video.job_id_for(VID, ETAG)
PROFILE = settings(max_examples=300, deadline=None, database=None)


def _rendition(name: str) -> Rendition:
    return Rendition(name, 640, 360, 800_000, name, 1000, 3, "0" * 64)


@st.composite
def lifecycle(draw: st.DrawFn) -> list[VideoEvent]:
    """One video's log in production order (per-key order is what Kafka guarantees)."""
    n = iter(range(10_000))

    def eid() -> str:
        return f"e{next(n)}"

    t = [T0]

    def ts() -> datetime:
        t[0] += timedelta(seconds=1)
        return t[0]

    owner = draw(st.sampled_from(["alice", "bob"]))
    log: list[VideoEvent] = [
        UploadSessionCreated(eid(), VID, owner, "t", "a.mp4", "video/mp4", 10,
                             f"uploads/{VID}/source.mp4", ETAG, T0, T0 + timedelta(minutes=15))
    ]  # fmt: skip
    if draw(st.booleans()):  # expired before completion
        log.append(UploadSessionExpired(eid(), VID, ts()))
    for _ in range(draw(st.integers(1, 3))):  # concurrent completions, some forged
        etag = draw(st.sampled_from([ETAG, ETAG, "forged"]))
        who = draw(st.sampled_from([owner, owner, "mallory"]))
        log.append(UploadCompleted(eid(), VID, who, etag, f"uploads/{VID}/source.mp4", 10,
                                   "video/mp4", ts()))  # fmt: skip
    if draw(st.booleans()):  # the expiry scanner racing a completion
        log.append(UploadSessionExpired(eid(), VID, ts()))
    attempts = draw(st.integers(1, 3))
    for attempt in range(1, attempts + 1):
        for _ in range(draw(st.integers(0, 4))):
            pct = draw(st.floats(-10, 110, allow_nan=False))
            log.append(TranscodeProgress(eid(), VID, JOB, attempt, "encode", pct, ts(), None,
                                         (RenditionProgress("480p", pct),)))  # fmt: skip
        if draw(st.booleans()):
            log.append(RenditionReady(eid(), VID, JOB, _rendition("480p"), "m.mpd", ts()))
        if attempt > 1 and draw(st.booleans()):  # a zombie of the previous attempt
            log.append(TranscodeProgress(eid(), VID, JOB, attempt - 1, "encode", 5.0, ts()))
        last = attempt == attempts
        outcome = draw(st.sampled_from(["ok", "fail"])) if last else "retry"
        if outcome == "ok":
            log.append(TranscodeSucceeded(eid(), VID, JOB, attempt, "m.mpd", 3.0,
                                          (_rendition("480p"),), 1.0, 1.0, ts()))  # fmt: skip
        else:
            log.append(TranscodeFailed(eid(), VID, JOB, attempt, "FFMPEG", "boom",
                                       final=outcome == "fail", ts=ts()))  # fmt: skip
    if draw(st.booleans()):  # late progress after the end
        log.append(TranscodeProgress(eid(), VID, JOB, attempts, "encode", 50.0, ts()))
    return log


def fold(events: list[VideoEvent]) -> VideoState | None:
    state: VideoState | None = None
    for e in events:
        state = video.apply(state, e)
    return state


@st.composite
def redelivered(draw: st.DrawFn) -> tuple[list[VideoEvent], list[VideoEvent]]:
    """A log and what an at-least-once consumer delivers: crashes rewind to an earlier offset."""
    log = draw(lifecycle())
    delivered: list[VideoEvent] = []
    pos = 0
    crashes = draw(st.integers(0, 4))
    while pos < len(log):
        delivered.append(log[pos])
        pos += 1
        if crashes and draw(st.integers(0, 3)) == 0:
            crashes -= 1
            pos = draw(st.integers(0, pos))  # the last committed offset is anywhere before
    return log, delivered


@PROFILE
@given(redelivered())
def test_fold_is_the_same_under_at_least_once_redelivery(
    case: tuple[list[VideoEvent], list[VideoEvent]],
) -> None:
    log, delivered = case
    assert fold(delivered) == fold(log)


@PROFILE
@given(lifecycle(), st.data())
def test_duplicates_of_applied_events_anywhere_later_change_nothing(
    log: list[VideoEvent], data: st.DataObject
) -> None:
    expected = fold(log)
    stream = list(log)
    for _ in range(data.draw(st.integers(1, 10))):
        i = data.draw(st.integers(0, len(log) - 1))
        j = data.draw(st.integers(i + 1, len(stream)))
        # Insert after the original position (its first delivery).
        original = stream.index(log[i])
        stream.insert(max(j, original + 1), log[i])
    assert fold(stream) == expected


@PROFILE
@given(lifecycle())
def test_apply_is_idempotent_and_versions_count_changes(log: list[VideoEvent]) -> None:
    state: VideoState | None = None
    changes = 0
    for e in log:
        after = video.apply(state, e)
        assert video.apply(after, e) == after  # immediate redelivery
        if after is not state:
            changes += 1
            assert after is not None
            assert after.version == (0 if state is None else state.version) + 1
        state = after
    assert state is not None
    assert state.version == changes


@PROFILE
@given(lifecycle())
def test_terminal_states_stay_terminal(log: list[VideoEvent]) -> None:
    state: VideoState | None = None
    for e in log:
        before = state
        state = video.apply(state, e)
        if before is not None and before.status in video.TERMINAL:
            assert state == before
    assert state is not None
    assert 0.0 <= state.percent <= 100.0
    assert all(0.0 <= r.percent <= 100.0 for r in state.renditions)
    # A forged completion never moves a session; READY always has a manifest.
    if state.status == video.Status.READY:
        assert state.manifest_key is not None


@PROFILE
@given(lifecycle(), st.permutations(range(8)))
def test_any_order_never_crashes_and_never_leaves_a_terminal_state(
    log: list[VideoEvent], perm: list[int]
) -> None:
    """Out-of-order delivery is not what Kafka does per key, but must still be safe."""
    order = sorted(range(len(log)), key=lambda i: perm[i % 8] * 1000 + i)
    state: VideoState | None = None
    for i in order:
        before = state
        state = video.apply(state, log[i])
        if before is not None and before.status in video.TERMINAL:
            assert state == before
