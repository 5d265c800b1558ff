"""Chunk planning, the chunked job's fold, its progress, and joining chunk manifests."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest

from helpers import make_probe
from tritontube.domain import chunks
from tritontube.domain.events import (
    ChunkedJob,
    ChunkEncoded,
    ChunkFailed,
    ChunkProgress,
    MediaFile,
    TranscodeChunked,
    TranscodeJob,
)
from tritontube.domain.manifest import ManifestError, join_chunks, read_tracks, renumber
from tritontube.domain.media import LADDER

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
NTSC = Fraction(30000, 1001)


# --------------------------------------------------------------------------- planning


@pytest.mark.parametrize("rate", [Fraction(25), NTSC, Fraction(24000, 1001), Fraction(60)])
def test_chunks_start_on_segment_boundaries_and_cover_every_frame(rate: Fraction) -> None:
    spans = chunks.plan_chunks(600.0, rate, 2, 60.0)
    assert len(spans) == 10
    assert spans[0].start_frame == 0 and spans[0].first_segment == 1
    for before, after in itertools.pairwise(spans):
        assert before.frame_count is not None and before.segment_count is not None
        assert after.start_frame == before.start_frame + before.frame_count  # no gap, no overlap
        assert after.first_segment == before.first_segment + before.segment_count
        # The chunk starts at the first frame at or after its segment boundary.
        boundary = (after.first_segment - 1) * 2
        assert after.start_frame == math.ceil(boundary * rate)
    assert spans[-1].frame_count is None and spans[-1].segment_count is None


def test_cuts_move_towards_the_keyframes_of_the_source() -> None:
    # Keyframes every 5 s from 0.5 s: a cut at a 2 s boundary just after one costs least.
    keyframes = [0.5 + 5 * k for k in range(40)]
    spans = chunks.plan_chunks(180.0, Fraction(25), 2, 60.0, keyframes)
    starts = [float(s.start_frame / 25) for s in spans[1:]]
    # 0.5 s after the keyframes at 55.5 and 115.5 (66 and 126 cost as little but lie
    # further from the ideal cuts at 60 and 120; 60 itself would decode 4.5 s for nothing).
    assert starts == [56.0, 116.0]
    # Without keyframes, the boundaries nearest the equal split.
    plain = chunks.plan_chunks(180.0, Fraction(25), 2, 60.0)
    assert [float(s.start_frame / 25) for s in plain[1:]] == [60.0, 120.0]


def test_short_videos_get_one_chunk_and_counts_round_to_the_chunk_length() -> None:
    (only,) = chunks.plan_chunks(5.0, Fraction(30), 2, 60.0)
    assert only == chunks.ChunkSpan(0, 0, None, 1, None)
    assert chunks.chunk_count(90.0, 20.0) == 4
    assert chunks.chunk_count(100.0, 20.0) == 5
    # Never more chunks than segments.
    assert len(chunks.plan_chunks(6.0, Fraction(30), 2, 1.0)) == 3


def test_only_long_sources_in_seekable_containers_are_chunked() -> None:
    mp4 = make_probe(1920, 1080, duration_seconds=600.0, video_seconds=600.0)
    assert chunks.should_chunk(mp4, 180.0, 60.0)
    assert not chunks.should_chunk(mp4, 0.0, 60.0), "0 turns chunking off"
    assert not chunks.should_chunk(
        replace(mp4, duration_seconds=100.0, video_seconds=100.0), 180.0, 60.0
    )
    assert not chunks.should_chunk(replace(mp4, format_name="mpegts"), 180.0, 60.0)
    assert chunks.should_chunk(replace(mp4, format_name="matroska,webm"), 180.0, 60.0)
    assert not chunks.should_chunk(
        replace(mp4, duration_seconds=None, video_seconds=None), 180.0, 60.0
    )


def test_keyframe_expression_counts_frames_from_the_chunk_start() -> None:
    span = chunks.ChunkSpan(1, 1799, 1800, 31, 30)  # starts at segment boundary 30 (60 s)
    expression = chunks.keyframe_expression(span, NTSC, 2)
    assert expression == "expr:gte(n,if(eq(n_forced,0),0,ceil((30+n_forced)*60000/1001)-1799))"

    # The thresholds it computes are the segment starts of the whole video, less the start.
    def threshold(forced: int) -> int:
        return math.ceil((30 + forced) * 60000 / 1001) - 1799

    assert [threshold(k) + 1799 for k in (1, 2)] == [math.ceil(62 * NTSC), math.ceil(64 * NTSC)]


def test_probe_windows_surround_every_ideal_cut() -> None:
    windows = chunks.boundary_windows(180.0, 60.0, 2)
    assert len(windows) == 2
    for (low, high), cut in zip(windows, (60.0, 120.0), strict=True):
        assert low < cut - 6 and high >= cut + 6


# --------------------------------------------------------------------------- the fold


def plan_event(attempt: int = 1, audio: bool = True) -> TranscodeChunked:
    return TranscodeChunked(
        event_id=f"j#{attempt}:chunked",
        video_id="v",
        job_id="j",
        attempt=attempt,
        output_prefix="media/v/dash/",
        duration_seconds=90.0,
        chunk_seconds=(30.0, 30.0, 30.0),
        has_audio=audio,
        renditions=("720p", "480p"),
        ts=T0,
    )


def progress(index: int, seconds: float, kind: str = "VIDEO", attempt: int = 1) -> ChunkProgress:
    return ChunkProgress(
        event_id=f"p{index}{seconds}",
        video_id="v",
        job_id="j",
        attempt=attempt,
        kind=kind,
        index=index,
        chunk_attempt=1,
        encoded_seconds=seconds,
        ts=T0 + timedelta(seconds=10),
    )


def encoded(
    index: int, kind: str = "VIDEO", manifest: str = "", files: tuple[MediaFile, ...] = ()
) -> ChunkEncoded:
    return ChunkEncoded(
        event_id=f"e{kind}{index}",
        video_id="v",
        job_id="j",
        attempt=1,
        kind=kind,
        index=index,
        chunk_attempt=1,
        manifest=manifest,
        files=files,
        encoded_seconds=30.0,
        wall_seconds=15.0,
        cpu_seconds=28.0,
        ts=T0 + timedelta(seconds=20),
    )


def failed(index: int, final: bool) -> ChunkFailed:
    return ChunkFailed(
        event_id=f"f{index}{final}",
        video_id="v",
        job_id="j",
        attempt=1,
        kind="VIDEO",
        index=index,
        chunk_attempt=1,
        reason="SOURCE_MISSING",
        message="gone",
        final=final,
        ts=T0,
    )


def fold(*events: object) -> ChunkedJob | None:
    job = None
    for event in events:
        job = chunks.apply(job, event)  # type: ignore[arg-type]
    return job


def test_the_job_is_ready_to_join_once_every_part_is_in() -> None:
    job = fold(plan_event(), encoded(0), encoded(1), encoded(2))
    assert job is not None and not chunks.ready_to_join(job), "the audio is still missing"
    job = chunks.apply(job, encoded(0, "AUDIO"))
    assert job is not None and chunks.ready_to_join(job)
    assert chunks.encoding_progress(job, T0).percent == 100.0
    assert not chunks.ready_to_join(chunks.joined(job))


def test_duplicates_late_events_and_other_attempts_change_nothing() -> None:
    job = fold(plan_event(), encoded(0))
    assert chunks.apply(job, encoded(0)) is job  # a redelivered result
    assert chunks.apply(job, progress(0, 5.0)) is job  # progress after the part is done
    assert chunks.apply(job, plan_event()) is job  # the owner planned the same attempt again
    assert chunks.apply(job, progress(1, 5.0, attempt=2)) is job  # another attempt's part
    newer = chunks.apply(job, plan_event(attempt=2))
    assert newer is not None and newer.attempt == 2
    assert all(p.status == "QUEUED" for p in newer.parts)
    assert chunks.apply(newer, plan_event(attempt=1)) is newer  # an older plan arrives late
    assert chunks.apply(None, encoded(0)) is None  # a result before any plan


def test_a_part_failing_for_good_fails_the_job_and_retries_do_not() -> None:
    job = fold(plan_event(), progress(1, 12.0), failed(1, final=False))
    assert job is not None and job.status == "ENCODING"
    part = job.parts[1]
    assert (part.status, part.chunk_attempt, part.encoded_seconds) == ("RETRYING", 2, 0.0)
    job = chunks.apply(job, failed(1, final=True))
    assert job is not None and (job.status, job.error_code) == ("FAILED", "SOURCE_MISSING")
    assert chunks.apply(job, encoded(2)) is job, "nothing moves a failed job"


def test_progress_weighs_video_seconds_and_the_eta_follows_the_measured_rate() -> None:
    job = fold(plan_event(), progress(0, 15.0), progress(1, 15.0))
    assert job is not None
    report = chunks.encoding_progress(job, T0 + timedelta(seconds=20))
    total = 90.0 + 0.05 * 90.0
    assert report.percent == pytest.approx(100 * 30.0 / total, abs=0.01)
    # 30 s of work in the 10 s since the first part started: the rest at that rate.
    assert report.eta_seconds == pytest.approx((total - 30.0) / 3.0)
    assert (report.done, report.encoding, report.waiting) == (0, 2, 2)
    queued = fold(plan_event())
    assert queued is not None
    assert chunks.encoding_progress(queued, T0).eta_seconds is None


# --------------------------------------------------------------------------- manifests


def chunk_mpd(start: int, durations: list[int], rep_ids: tuple[str, ...] = ("0", "1")) -> str:
    reps = "".join(
        f'<Representation id="{rep}" mimeType="video/mp4" codecs="avc1.64001f"'
        f' bandwidth="{1000 + start}"'
        f' width="1280" height="720"><SegmentTemplate timescale="12800"'
        ' initialization="init-$RepresentationID$.m4s"'
        ' media="chunk-$RepresentationID$-$Number%05d$.m4s" startNumber="1"><SegmentTimeline>'
        + "".join(
            f'<S t="{start}" d="{d}" />' if i == 0 else f'<S d="{d}" />'
            for i, d in enumerate(durations)
        )
        + "</SegmentTimeline></SegmentTemplate></Representation>"
        for rep in rep_ids
    )
    return (
        '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static"><Period id="0">'
        f'<AdaptationSet id="0" contentType="video">{reps}</AdaptationSet></Period></MPD>'
    )


AUDIO_MPD = (
    '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static"><Period id="0">'
    '<AdaptationSet id="0" contentType="audio"><Representation id="0" mimeType="audio/mp4"'
    ' codecs="mp4a.40.2" bandwidth="128000"><SegmentTemplate timescale="48000"'
    ' initialization="init-$RepresentationID$.m4s"'
    ' media="chunk-$RepresentationID$-$Number%05d$.m4s" startNumber="1"><SegmentTimeline>'
    '<S t="0" d="96256" r="1" /><S d="1000" /></SegmentTimeline></SegmentTemplate>'
    "</Representation></AdaptationSet></Period></MPD>"
)


def test_chunk_manifests_join_into_one_timeline_per_representation() -> None:
    first = renumber(chunk_mpd(0, [25600, 25600]), 1)
    second = renumber(chunk_mpd(51200, [25600, 12800]), 3)
    text = join_chunks([first, second], AUDIO_MPD, "2")
    tracks = {t.representation_id: t for t in read_tracks(text)}
    video = tracks["0"]
    assert [(s.number, s.start, s.duration) for s in video.segments] == [
        (1, 0, 25600), (2, 25600, 25600), (3, 51200, 25600), (4, 76800, 12800)
    ]  # fmt: skip
    assert video.segments[-1].name == "chunk-0-00004.m4s" and video.init == "init-0.m4s"
    assert video.bandwidth == 1000 + 51200  # the largest any chunk measured
    audio = tracks["2"]
    assert audio.content_type == "audio" and audio.init == "init-2.m4s"
    assert audio.segments[0].name == "chunk-2-00001.m4s"
    # The presentation lasts to the end of the longer of video (7 s) and audio.
    assert 'mediaPresentationDuration="PT7.000S"' in text


@pytest.mark.parametrize(("start", "what"), [(51200 + 1, "gap"), (51200 - 512, "overlap")])
def test_chunks_that_do_not_meet_are_refused(start: int, what: str) -> None:
    first = renumber(chunk_mpd(0, [25600, 25600]), 1)
    second = renumber(chunk_mpd(start, [25600]), 3)
    with pytest.raises(ManifestError, match="starts"):
        join_chunks([first, second])


def test_chunks_with_other_numbering_or_representations_are_refused() -> None:
    first = renumber(chunk_mpd(0, [25600]), 1)
    with pytest.raises(ManifestError, match="numbers its first segment"):
        join_chunks([first, renumber(chunk_mpd(25600, [25600]), 5)])
    with pytest.raises(ManifestError, match="lists representations"):
        join_chunks([first, renumber(chunk_mpd(25600, [25600], ("0",)), 2)])


def test_the_join_refuses_init_segments_that_differ_between_chunks() -> None:
    job = fold(plan_event(audio=False))
    assert job is not None
    job = replace(job, renditions=("720p",))
    init = MediaFile("init-0.m4s", 800, "a" * 64)
    other = replace(init, sha256="c" * 64)
    parts = [
        encoded(0, manifest=renumber(chunk_mpd(0, [25600], ("0",)), 1),
                files=(init, MediaFile("chunk-0-00001.m4s", 10, "b" * 64))),
        encoded(1, manifest=renumber(chunk_mpd(25600, [25600], ("0",)), 2),
                files=(other, MediaFile("chunk-0-00002.m4s", 10, "d" * 64))),
    ]  # fmt: skip
    with pytest.raises(ManifestError, match=r"init-0\.m4s differs"):
        chunks.join(job, parts)
    parts[1] = replace(parts[1], files=(init, parts[1].files[1]))
    package = chunks.join(job, parts)
    (rendition,) = package.output.renditions
    assert [p.name for p in rendition.files] == [
        "init-0.m4s",
        "chunk-0-00001.m4s",
        "chunk-0-00002.m4s",
    ]
    assert package.output.cpu_seconds == 56.0


def test_every_part_of_a_job_is_planned_with_the_same_settings() -> None:
    probe = make_probe(1280, 720, duration_seconds=90.0, video_seconds=90.0)
    job = TranscodeJob(
        "j", "v", "uploads/v/source.mp4", ("720p", "480p"), "media/v/dash/", 1, T0, T0
    )
    plan = chunks.ChunkPlan(Fraction(30), 2, chunks.plan_chunks(90.0, Fraction(30), 2, 30.0), 90.0)
    renditions = LADDER[1:]
    parts = chunks.chunk_jobs(job, probe, renditions, plan, T0)
    assert [(p.kind, p.index) for p in parts] == [
        ("VIDEO", 0),
        ("VIDEO", 1),
        ("VIDEO", 2),
        ("AUDIO", 0),
    ]
    assert {
        (p.frame_rate_num, p.frame_rate_den, p.segment_seconds, p.renditions) for p in parts
    } == {(30, 1, 2, renditions)}
    assert {chunks.message_key(p) for p in parts} == {
        "v/video/0",
        "v/video/1",
        "v/video/2",
        "v/audio/0",
    }
    retry = chunks.retry_chunk(parts[1], T0, 2.0)
    assert retry.chunk_attempt == 2 and retry.not_before == T0 + timedelta(seconds=2)
    planned = chunks.planned_event(job, probe, renditions, plan, "media/v/dash/poster.jpg", T0)
    assert planned.chunk_seconds == (30.0, 30.0, 30.0) and planned.event_id == "j#1:chunked"


# --------------------------------------------------------------------------- routing parts


def test_a_jobs_parts_go_round_robin_over_the_partitions() -> None:
    probe = make_probe(1280, 720, duration_seconds=180.0, video_seconds=180.0)
    job = TranscodeJob("j", "v", "uploads/v/source.mp4", ("720p",), "media/v/dash/", 1, T0, T0)
    plan = chunks.ChunkPlan(
        Fraction(30), 2, chunks.plan_chunks(180.0, Fraction(30), 2, 30.0), 180.0
    )
    parts = chunks.chunk_jobs(job, probe, LADDER[1:2], plan, T0)
    assert [chunks.message_partition(p, 3, 4) for p in parts] == [3, 0, 1, 2, 3, 0, 1]  # audio last
    # Each partition gets its share: 7 parts over 4 partitions, none more than 2.
    counts = [sum(1 for p in parts if chunks.message_partition(p, 0, 4) == q) for q in range(4)]
    assert sorted(counts) == [1, 2, 2, 2]


def test_parts_of_ended_superseded_or_encoded_jobs_are_skipped() -> None:
    probe = make_probe(1280, 720, duration_seconds=90.0, video_seconds=90.0)
    job = TranscodeJob("j", "v", "uploads/v/source.mp4", ("720p",), "media/v/dash/", 1, T0, T0)
    plan = chunks.ChunkPlan(Fraction(30), 2, chunks.plan_chunks(90.0, Fraction(30), 2, 30.0), 90.0)
    part = chunks.chunk_jobs(job, probe, LADDER[1:2], plan, T0)[0]
    state = fold(plan_event())
    assert state is not None
    assert chunks.skip_part(None, part) is None  # the owner knows nothing yet: encode
    assert chunks.skip_part(state, part) is None
    assert chunks.skip_part(chunks.apply(state, encoded(0)), part) == "the part is encoded already"
    assert chunks.skip_part(chunks.joined(state), part) == "the job is JOINED"
    newer = chunks.apply(state, plan_event(attempt=2))
    assert chunks.skip_part(newer, part) == "attempt 1 superseded by attempt 2"
