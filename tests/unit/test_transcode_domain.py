"""Pure transcode helpers: job selection, progress, upload order, manifests, records."""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tritontube.domain import transcode as tx
from tritontube.domain.events import TranscodeJob, VideoState
from tritontube.domain.media import AudioOutput, DashOutput, OutputFile, RenditionOutput

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
NS = "{urn:mpeg:dash:schema:mpd:2011}"

MPD = """<?xml version="1.0" encoding="utf-8"?>
<MPD xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    xmlns="urn:mpeg:dash:schema:mpd:2011"
    xmlns:xlink="http://www.w3.org/1999/xlink"
    profiles="urn:mpeg:dash:profile:isoff-live:2011" type="static"
    mediaPresentationDuration="PT6.0S" minBufferTime="PT4.0S">
    <Period id="0" start="PT0.0S">
        <AdaptationSet
            id="0"
            contentType="video"
            segmentAlignment="true"
            maxWidth="1280"
            maxHeight="720"
            par="16:9">
            <Representation
                id="0"
                mimeType="video/mp4"
                codecs="avc1.64001f"
                bandwidth="2800000"
                width="1280"
                height="720"
                sar="1:1">
                <SegmentTemplate
                    timescale="12800"
                    initialization="init-$RepresentationID$.m4s"
                    media="chunk-$RepresentationID$-$Number%05d$.m4s"
                    startNumber="1">
                    <SegmentTimeline><S t="0" d="25600" r="2" /></SegmentTimeline>
                </SegmentTemplate>
            </Representation>
            <Representation
                id="1"
                mimeType="video/mp4"
                codecs="avc1.64001e"
                bandwidth="1200000"
                width="854"
                height="480"
                sar="1280:1281">
                <SegmentTemplate
                    timescale="12800"
                    initialization="init-$RepresentationID$.m4s"
                    media="chunk-$RepresentationID$-$Number%05d$.m4s"
                    startNumber="1">
                    <SegmentTimeline><S t="0" d="25600" r="2" /></SegmentTimeline>
                </SegmentTemplate>
            </Representation>
        </AdaptationSet>
        <AdaptationSet id="1" contentType="audio" segmentAlignment="true">
            <Representation
                id="2"
                mimeType="audio/mp4"
                codecs="mp4a.40.2"
                bandwidth="128000"
                audioSamplingRate="48000">
                <SegmentTemplate
                    timescale="48000"
                    initialization="init-$RepresentationID$.m4s"
                    media="chunk-$RepresentationID$-$Number$.m4s"
                    startNumber="1">
                    <SegmentTimeline><S t="0" d="96000" r="1" /><S d="96256" /></SegmentTimeline>
                </SegmentTemplate>
            </Representation>
        </AdaptationSet>
    </Period>
</MPD>
"""


def job(attempt: int = 1, job_id: str = "v1:etag") -> TranscodeJob:
    return TranscodeJob(
        job_id=job_id,
        video_id="v1",
        source_key="uploads/v1/source.mp4",
        ladder=("1080p", "720p", "480p"),
        output_prefix="media/v1/dash/",
        attempt=attempt,
        not_before=NOW,
        created_at=NOW,
    )


def state(
    status: str = "PENDING_TRANSCODE", attempt: int = 1, job_id: str = "v1:etag"
) -> VideoState:
    return VideoState(
        video_id="v1",
        version=3,
        status=status,
        owner="alice",
        title="t",
        created_at=NOW,
        updated_at=NOW,
        expires_at=NOW,
        job_id=job_id,
        attempt=attempt,
    )


def _file(name: str, size: int) -> OutputFile:
    return OutputFile(Path(name), size, hashlib.sha256(name.encode()).hexdigest())


def output() -> DashOutput:
    names = {
        "0": ["init-0.m4s", "chunk-0-00001.m4s", "chunk-0-00002.m4s", "chunk-0-00003.m4s"],
        "1": ["init-1.m4s", "chunk-1-00001.m4s", "chunk-1-00002.m4s", "chunk-1-00003.m4s"],
        "2": ["init-2.m4s", "chunk-2-1.m4s", "chunk-2-2.m4s", "chunk-2-3.m4s"],
    }
    files = tuple(_file(n, 100 + i) for group in names.values() for i, n in enumerate(group))
    files += (_file("manifest.mpd", 50),)
    return DashOutput(
        manifest=Path("/scratch/dash/manifest.mpd"),
        files=files,
        renditions=(
            RenditionOutput("720p", 1280, 720, 2_800_000, "0", tuple(Path(n) for n in names["0"])),
            RenditionOutput("480p", 854, 480, 1_200_000, "1", tuple(Path(n) for n in names["1"])),
        ),
        audio=AudioOutput("2", 128_000, tuple(Path(n) for n in names["2"])),
        cpu_seconds=3.5,
        wall_seconds=2.0,
    )


# --------------------------------------------------------------------------- selection


@pytest.mark.parametrize(
    ("current", "the_job", "expected"),
    [
        (state(), job(), None),
        (state("TRANSCODING"), job(), None),
        (state(attempt=2), job(attempt=3), None),
        (None, job(), "unknown video"),
        (state("READY"), job(), "video is READY"),
        (state("FAILED"), job(), "video is FAILED"),
        (state("EXPIRED"), job(), "video is EXPIRED"),
        (state(job_id="v1:other"), job(), "video's current job is v1:other"),
        (state(attempt=3), job(attempt=2), "attempt 2 superseded by attempt 3"),
    ],
)
def test_skip_reason(
    current: VideoState | None, the_job: TranscodeJob, expected: str | None
) -> None:
    assert tx.skip_reason(the_job, current) == expected


def test_retry_job_carries_the_attempt_and_the_backoff() -> None:
    later = NOW + timedelta(seconds=30)
    nxt = tx.retry_job(job(attempt=2), later, 4.5)
    assert (nxt.attempt, nxt.job_id, nxt.source_key) == (3, "v1:etag", "uploads/v1/source.mp4")
    assert nxt.not_before == later + timedelta(seconds=4.5)
    assert nxt.created_at == later


# --------------------------------------------------------------------------- progress


def test_overall_percent_never_decreases_through_the_steps() -> None:
    points = [
        tx.overall_percent(step, pct)
        for step in (tx.Step.PROBING, tx.Step.ENCODING, tx.Step.UPLOADING, tx.Step.FINALIZING)
        for pct in (0, 25, 50, 100)
    ]
    assert points == sorted(points)
    assert points[0] == 0.0 and points[-1] == 100.0
    assert tx.overall_percent(tx.Step.ENCODING, 150) == tx.overall_percent(tx.Step.ENCODING, 100)


def test_progress_event_fields() -> None:
    event = tx.progress_event(job(2), "e1", tx.Step.ENCODING, 50, NOW, 12.345, [("720p", 50.0)])
    assert (event.step, event.attempt, event.job_id) == ("ENCODING", 2, "v1:etag")
    assert 5 < event.percent < 90
    assert event.eta_seconds == 12.3
    assert [(r.name, r.percent) for r in event.renditions] == [("720p", 50.0)]


# --------------------------------------------------------------------------- uploads


def test_upload_plan_starts_with_the_smallest_rendition_and_the_audio() -> None:
    out = output()
    batches = tx.plan_uploads(out)
    assert [b.announce.name for b in batches if b.announce] == ["480p", "720p"]
    first = {f.path.name for f in batches[0].files}
    assert {"init-2.m4s", "chunk-2-1.m4s", "init-1.m4s", "chunk-1-00003.m4s"} <= first
    assert not any(n.startswith(("init-0", "chunk-0")) for n in first)
    assert [[r.name for r in b.ready] for b in batches] == [["480p"], ["480p", "720p"]]
    uploaded = [f.path.name for b in batches for f in b.files]
    assert len(uploaded) == len(set(uploaded)) == len(out.files) - 1
    assert "manifest.mpd" not in uploaded


def test_rendition_record_sums_counts_and_checksums_its_files() -> None:
    out = output()
    record = tx.rendition_record(out.renditions[1], out.files)
    assert record.size_bytes == 100 + 101 + 102 + 103
    assert record.segment_count == 3
    listing = "".join(
        f"{hashlib.sha256(n.encode()).hexdigest()}  {n}\n"
        for n in ("init-1.m4s", "chunk-1-00001.m4s", "chunk-1-00002.m4s", "chunk-1-00003.m4s")
    )
    assert record.sha256 == hashlib.sha256(listing.encode()).hexdigest()
    assert (record.width, record.height, record.representation_id) == (854, 480, "1")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("manifest.mpd", "application/dash+xml"),
        ("init-0.m4s", "video/mp4"),
        ("chunk-0-00001.m4s", "video/iso.segment"),
        ("poster.jpg", "image/jpeg"),
    ],
)
def test_content_types(name: str, expected: str) -> None:
    assert tx.content_type(name) == expected


def test_manifests_are_not_cached_but_segments_are() -> None:
    assert tx.cache_control("manifest.mpd") == "no-cache"
    assert "max-age" in tx.cache_control("chunk-0-00001.m4s")


# --------------------------------------------------------------------------- manifests


def test_referenced_files_expand_templates_and_repeats() -> None:
    files = tx.referenced_files(MPD)
    assert files[:4] == (
        "init-0.m4s",
        "chunk-0-00001.m4s",
        "chunk-0-00002.m4s",
        "chunk-0-00003.m4s",
    )
    assert "chunk-1-00003.m4s" in files and "chunk-1-00004.m4s" not in files
    assert files[-4:] == ("init-2.m4s", "chunk-2-1.m4s", "chunk-2-2.m4s", "chunk-2-3.m4s")
    assert len(files) == 12


def test_interim_manifest_lists_only_uploaded_video_and_keeps_audio() -> None:
    interim = tx.interim_manifest(MPD, ["1"])
    root = ET.fromstring(interim)  # noqa: S314 - test data
    reps = [r.get("id") for r in root.iter(f"{NS}Representation")]
    assert reps == ["1", "2"]
    video_set = next(root.iter(f"{NS}AdaptationSet"))
    assert (video_set.get("maxWidth"), video_set.get("maxHeight")) == ("854", "480")
    assert "ns0:" not in interim and interim.startswith("<?xml")
    assert set(tx.referenced_files(interim)) == {
        f for f in tx.referenced_files(MPD) if not f.startswith(("init-0", "chunk-0"))
    }


def test_an_interim_manifest_without_video_is_refused() -> None:
    with pytest.raises(ValueError):
        tx.interim_manifest(MPD, [])


def test_video_representation_ids_leave_audio_out() -> None:
    assert tx.video_representation_ids(MPD) == {"0", "1"}
    assert tx.video_representation_ids(tx.interim_manifest(MPD, ["1"])) == {"1"}
    with pytest.raises(ValueError):
        tx.video_representation_ids("<MPD")


def test_an_interim_manifest_never_shrinks_what_is_stored() -> None:
    """A rerun of a job that already succeeded must not take renditions away."""
    assert tx.interim_may_replace(["1"], None)  # nothing stored yet
    assert not tx.interim_may_replace(["1"], MPD)  # the full package is stored
    assert not tx.interim_may_replace(["1"], tx.interim_manifest(MPD, ["1"]))
    assert tx.interim_may_replace(["0", "1"], tx.interim_manifest(MPD, ["1"]))  # gets further
    assert tx.interim_may_replace(["1"], "not xml")  # a broken manifest is no loss


def duration_of(mpd: str) -> str | None:
    return ET.fromstring(mpd).get("mediaPresentationDuration")  # noqa: S314 - test data


#: MPD without its audio adaptation set.
VIDEO_ONLY = re.sub(
    r'<AdaptationSet id="1" contentType="audio".*?</AdaptationSet>', "", MPD, flags=re.S
)


def test_exact_duration_is_the_end_of_the_last_sample_video_or_audio() -> None:
    # Video: three 2 s segments; audio: 288256/48000 = 6.0053 s. ffmpeg wrote "PT6.0S".
    assert duration_of(tx.exact_duration(MPD.replace('"PT6.0S"', '"PT9.9S"'))) == "PT6.006S"
    short_audio = MPD.replace('<S t="0" d="96000" r="1" /><S d="96256" />', '<S t="0" d="4800" />')
    assert duration_of(tx.exact_duration(short_audio)) == "PT6.000S"


def test_exact_duration_of_a_single_frame_is_not_zero() -> None:
    one_frame = VIDEO_ONLY.replace('<S t="0" d="25600" r="2" />', '<S t="0" d="427" />')
    assert duration_of(tx.exact_duration(one_frame)) == "PT0.034S"  # 427/12800 s, rounded up


def test_exact_duration_rounds_up_to_the_last_video_millisecond() -> None:
    # 2 s + 2.0333 s: rounding to 4.033 would stop the presentation inside the last frame.
    longer = VIDEO_ONLY.replace(
        '<S t="0" d="25600" r="2" />', '<S t="0" d="25600" /><S d="26027" />'
    )
    assert duration_of(tx.exact_duration(longer)) == "PT4.034S"


def test_exact_duration_counts_from_the_presentation_time_offset() -> None:
    shifted = VIDEO_ONLY.replace('<S t="0" d="25600" r="2" />', '<S t="12800" d="25600" r="2" />')
    shifted = shifted.replace(
        'timescale="12800"', 'timescale="12800" presentationTimeOffset="12800"'
    )
    assert duration_of(tx.exact_duration(shifted)) == "PT6.000S"
    hours = VIDEO_ONLY.replace('<S t="0" d="25600" r="2" />', '<S t="0" d="25600" r="2249" />')
    assert duration_of(tx.exact_duration(hours)) == "PT4500.000S"


@pytest.mark.parametrize(
    ("written", "seconds"),
    [("PT6.006S", 6.006), ("PT1H2M3.5S", 3723.5), ("PT2M", 120.0), ("PT0S", 0.0)],
)
def test_presentation_seconds_reads_the_manifest_duration(written: str, seconds: float) -> None:
    assert tx.presentation_seconds(MPD.replace('"PT6.0S"', f'"{written}"')) == seconds


@pytest.mark.parametrize("written", ["", "PT", "6.0", "P1DT2S", "PT-1S"])
def test_presentation_seconds_of_a_missing_or_foreign_duration_is_none(written: str) -> None:
    assert tx.presentation_seconds(MPD.replace('"PT6.0S"', f'"{written}"')) is None


def test_exact_duration_leaves_a_manifest_without_video_timeline_alone() -> None:
    audio_only = MPD.replace('contentType="video"', 'contentType="text"')
    assert tx.exact_duration(audio_only) == audio_only


# --------------------------------------------------------------------------- events


def test_terminal_events_have_one_id_per_attempt() -> None:
    out = output()
    ok = tx.succeeded_event(job(), out, 6.0, 9.0, NOW, "media/v1/dash/poster.jpg")
    again = tx.succeeded_event(job(), out, 6.0, 9.5, NOW + timedelta(seconds=3), None)
    assert ok.event_id == again.event_id
    assert ok.event_id != tx.succeeded_event(job(2), out, 6.0, 9.0, NOW, None).event_id
    assert ok.manifest_key == "media/v1/dash/manifest.mpd"
    assert [r.name for r in ok.renditions] == ["720p", "480p"]
    assert ok.cpu_seconds == 3.5
    failed = tx.failed_event(job(3), "CORRUPT_MEDIA", "broken", final=True, now=NOW)
    assert failed.event_id == tx.failed_event(job(3), "X", "y", final=False, now=NOW).event_id
    assert (failed.attempt, failed.final, failed.reason) == (3, True, "CORRUPT_MEDIA")
    ready = tx.rendition_ready_event(job(), ok.renditions[1], ok.manifest_key, NOW)
    assert ready.event_id.endswith(":ready:480p")
    assert replace(ready, ts=NOW + timedelta(1)).event_id == ready.event_id
