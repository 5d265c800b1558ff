"""FfmpegTranscoder against the real ffmpeg/ffprobe, on tiny clips made with lavfi."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import (
    CONTAINERS,
    container_clip,
    ffmpeg,
    pids_of,
    processes_mentioning,
    restarted_clock_ts,
)
from tritontube.domain import transcode as tx
from tritontube.domain.media import (
    LADDER,
    EncodeProgress,
    FailureReason,
    MediaError,
    Probe,
    RenditionSpec,
    plan_renditions,
)
from tritontube.media.ffmpeg import FfmpegTranscoder
from tritontube.media.port import Transcoder

pytestmark = pytest.mark.integration

FFMPEG = shutil.which("ffmpeg")
FFPROBE = shutil.which("ffprobe")
if FFMPEG is None or FFPROBE is None:  # pragma: no cover - the dev image installs both
    pytest.skip("ffmpeg and ffprobe are required", allow_module_level=True)

MPD = "{urn:mpeg:dash:schema:mpd:2011}"

#: A ladder sized for 320x240 test clips, so several renditions stay cheap to encode.
TINY_LADDER = (
    RenditionSpec("240p", 426, 240, 300, 330, 450, 64),
    RenditionSpec("180p", 320, 180, 200, 220, 300, 64),
    RenditionSpec("120p", 214, 120, 120, 132, 180, 48),
)

VIDEO = "testsrc2=size=320x240:rate=25:duration={d}"
WIDE = "testsrc2=size=426x240:rate=25:duration={d}"
SINE = "sine=frequency=440:sample_rate=48000:duration={d}"
X264 = ("-c:v", "libx264", "-preset", "ultrafast")
#: 8-bit 4:2:0 H.264 profiles browsers decode (ultrafast drops CABAC/B-frames, so x264
#: signals Constrained Baseline even when High is the ceiling); High 10 is avc1.6e,
#: High 4:2:2 avc1.7a, High 4:4:4 avc1.f4.
BROWSER_CODECS = ("avc1.42", "avc1.4d", "avc1.64")
BROWSER_PROFILES = {"Constrained Baseline", "Baseline", "Main", "High"}


def ffprobe_stream(path: Path) -> dict[str, str]:
    argv = [str(FFPROBE), "-v", "error", "-select_streams", "v:0", "-show_entries"]
    argv += ["stream=pix_fmt,width,height,profile,bits_per_raw_sample,color_primaries,"
             "color_transfer,color_space", "-of", "default=nw=1"]  # fmt: skip
    out = subprocess.run([*argv, str(path)], check=True, capture_output=True, text=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every input clip, generated once per module; all tiny and short."""
    d = tmp_path_factory.mktemp("media")
    lavfi = ("-f", "lavfi", "-i")
    clips = {name: d / f"{name}.mp4" for name in ("av", "noaudio", "audio", "rotated", "vfr")}
    clips |= {n: d / f"{n}.mp4" for n in ("short", "tenbit", "yuv422", "odd", "faststart")}

    ffmpeg(
        *lavfi, WIDE.format(d=4.5), *lavfi, SINE.format(d=4.5), *X264, "-c:a", "aac",
        "-shortest", str(clips["av"]),
    )  # fmt: skip
    ffmpeg(*lavfi, VIDEO.format(d=2), *X264, "-pix_fmt", "yuv420p", str(clips["noaudio"]))
    ffmpeg(*lavfi, SINE.format(d=1), "-c:a", "aac", str(clips["audio"]))
    ffmpeg("-i", str(clips["noaudio"]), "-c", "copy", "-metadata:s:v", "rotate=90",
           str(clips["rotated"]))  # fmt: skip
    ffmpeg(
        *lavfi, "testsrc2=size=320x240:rate=15:duration=1",
        *lavfi, "testsrc2=size=320x240:rate=30:duration=1",
        "-filter_complex", "[0:v][1:v]concat=n=2:v=1:a=0[v]", "-map", "[v]",
        "-fps_mode", "vfr", *X264, str(clips["vfr"]),
    )  # fmt: skip
    ffmpeg(*lavfi, VIDEO.format(d=0.5), *lavfi, SINE.format(d=0.5), *X264, "-c:a", "aac",
           "-shortest", str(clips["short"]))  # fmt: skip
    ffmpeg(*lavfi, VIDEO.format(d=1), *X264, "-pix_fmt", "yuv420p10le", str(clips["tenbit"]))
    ffmpeg(*lavfi, VIDEO.format(d=1), *X264, "-pix_fmt", "yuv422p", str(clips["yuv422"]))
    ffmpeg(*lavfi, "testsrc=size=321x241:rate=25:duration=1", *X264, "-pix_fmt", "yuv444p",
           str(clips["odd"]))  # fmt: skip
    clips["anamorphic"] = d / "anamorphic.mp4"
    ffmpeg(*lavfi, VIDEO.format(d=1), "-vf", "setsar=4/3", *X264, str(clips["anamorphic"]))
    ffmpeg("-i", str(clips["av"]), "-c", "copy", "-movflags", "+faststart",
           str(clips["faststart"]))  # fmt: skip
    clips["raw"] = d / "raw.h264"  # an elementary stream: no container, no timestamps
    ffmpeg(*lavfi, VIDEO.format(d=1), *X264, "-f", "h264", str(clips["raw"]))
    clips["one_frame"] = d / "one_frame.mp4"
    ffmpeg(*lavfi, VIDEO.format(d=1), "-frames:v", "1", *X264, str(clips["one_frame"]))
    clips["thumbnail_size"] = d / "thumbnail_size.mp4"  # 8x6 macroblocks, 30 fps
    ffmpeg(*lavfi, "testsrc2=size=128x96:rate=30:duration=1", *X264,
           str(clips["thumbnail_size"]))  # fmt: skip

    # The audio outlasts the video by 2 s (a camera that stopped before its microphone, a
    # song uploaded with one still picture); Matroska says so only in its DURATION tags.
    for ext, audio_codec in (("mp4", "aac"), ("mkv", "libopus")):
        clips[f"long_audio_{ext}"] = d / f"long_audio.{ext}"
        ffmpeg(*lavfi, VIDEO.format(d=1), *lavfi, SINE.format(d=3), *X264, "-c:a", audio_codec,
               str(clips[f"long_audio_{ext}"]))  # fmt: skip
    clips["late_start"] = d / "late_start.mp4"  # first timestamp at 10 s, audio 0.5 s later
    ffmpeg(*lavfi, VIDEO.format(d=2), "-itsoffset", "0.5", *lavfi, SINE.format(d=2), *X264,
           "-c:a", "aac", "-output_ts_offset", "10", str(clips["late_start"]))  # fmt: skip

    clips["restarted_clock"] = restarted_clock_ts(d)

    whole = clips["av"].read_bytes()
    clips["truncated"] = d / "truncated.mp4"
    clips["truncated"].write_bytes(whole[: len(whole) // 2])
    fast = clips["faststart"].read_bytes()
    clips["truncated_faststart"] = d / "truncated_faststart.mp4"
    clips["truncated_faststart"].write_bytes(fast[: len(fast) // 2])
    clips["text"] = d / "text.mp4"
    clips["text"].write_text("this is not a video, just some text\n" * 20)
    clips["text_noext"] = d / "upload"
    clips["text_noext"].write_text("this is not a video, just some text\n" * 20)
    clips["playlist"] = d / "playlist.mp4"  # an HLS playlist that points at another file
    clips["playlist"].write_text(
        f"#EXTM3U\n#EXT-X-TARGETDURATION:5\n#EXTINF:4.5,\n{clips['av']}\n#EXT-X-ENDLIST\n"
    )
    clips["empty"] = d / "empty.mp4"
    clips["empty"].write_bytes(b"")
    return clips


@pytest.fixture
def transcoder() -> FfmpegTranscoder:
    return FfmpegTranscoder(
        str(FFMPEG), str(FFPROBE), preset="ultrafast", timeout_seconds=60, threads=1
    )


def representations(manifest: Path) -> list[ET.Element]:
    root = ET.parse(manifest).getroot()  # noqa: S314 - our own output
    return list(root.iter(f"{MPD}Representation"))


def timeline(rep: ET.Element) -> list[tuple[str | None, str | None, str | None]]:
    return [(s.get("t"), s.get("d"), s.get("r")) for s in rep.iter(f"{MPD}S")]


def first_segment_stream(out_dir: Path, rep_id: str, scratch: Path) -> dict[str, str]:
    """ffprobe the first media segment of a representation (init + chunk joined)."""
    joined = scratch / f"joined-{rep_id}.mp4"
    init = (out_dir / f"init-{rep_id}.m4s").read_bytes()
    joined.write_bytes(init + (out_dir / f"chunk-{rep_id}-00001.m4s").read_bytes())
    return ffprobe_stream(joined)


async def transcode(
    t: Transcoder, source: Path, out_dir: Path, ladder: tuple[RenditionSpec, ...] = TINY_LADDER
) -> tuple[Probe, tuple[RenditionSpec, ...], Path]:
    probe = await t.probe(source)
    plan = plan_renditions(probe, ladder)
    result = await t.transcode(source, out_dir, plan, probe)
    assert result.manifest == out_dir / "manifest.mpd"
    return probe, plan, result.manifest


# --------------------------------------------------------------------------- happy paths


async def test_video_with_audio_becomes_a_dash_package(
    transcoder: FfmpegTranscoder, media: dict[str, Path], tmp_path: Path
) -> None:
    source = media["av"]
    probe = await transcoder.probe(source)
    assert (probe.width, probe.height, probe.has_audio, probe.rotation) == (426, 240, True, 0)
    assert probe.duration_seconds == pytest.approx(4.5, abs=0.1)
    plan = plan_renditions(probe, TINY_LADDER)
    # 320x180 is not exactly 426:240, so it must carry a non-square SAR for DASH to
    # accept one adaptation set (ffmpeg refuses conflicting aspect ratios).
    assert [(s.width, s.height) for s in plan] == [(426, 240), (320, 180), (212, 120)]

    out_dir = tmp_path / "out"
    result = await transcoder.transcode(source, out_dir, plan, probe)

    assert result.manifest.is_file()
    assert [(r.name, r.width, r.height) for r in result.renditions] == [
        (s.name, s.width, s.height) for s in plan
    ]
    assert result.audio is not None and result.audio.bandwidth_bps == 64_000
    assert [r.bandwidth_bps for r in result.renditions] == [300_000, 200_000, 120_000]
    on_disk = {p.relative_to(out_dir) for p in out_dir.rglob("*") if p.is_file()}
    assert {f.path for f in result.files} == on_disk
    assert all(f.size_bytes > 0 and len(f.sha256) == 64 for f in result.files)
    for rendition in result.renditions:
        assert rendition.files[0].name == f"init-{rendition.representation_id}.m4s"
        assert len(rendition.files) >= 3  # init + at least two 2-second segments
    assert result.wall_seconds > 0
    assert result.cpu_seconds is not None and result.cpu_seconds > 0

    reps = representations(result.manifest)
    video = [r for r in reps if r.get("mimeType") == "video/mp4"]
    assert len(video) == 3 and len(reps) == 4
    assert [r.get("sar") for r in video] == ["1:1", "639:640", "213:212"]
    # Keyframes aligned: every video representation has the same segment timeline.
    assert len({tuple(timeline(r)) for r in video}) == 1
    assert all((r.get("codecs") or "").startswith(BROWSER_CODECS) for r in video)
    stream = first_segment_stream(out_dir, "0", tmp_path)
    assert stream["pix_fmt"] == "yuv420p" and stream["profile"] in BROWSER_PROFILES


async def test_small_source_is_not_upscaled_by_the_real_ladder(
    transcoder: FfmpegTranscoder, media: dict[str, Path], tmp_path: Path
) -> None:
    _, plan, manifest = await transcode(transcoder, media["noaudio"], tmp_path / "o", LADDER)
    assert [(s.width, s.height) for s in plan] == [(320, 240)]
    sizes = [(r.get("width"), r.get("height")) for r in representations(manifest)]
    assert sizes == [("320", "240")]


async def test_video_without_audio_has_no_audio_adaptation_set(
    transcoder: FfmpegTranscoder, media: dict[str, Path], tmp_path: Path
) -> None:
    probe = await transcoder.probe(media["noaudio"])
    assert probe.has_audio is False and probe.audio_codec is None
    plan = plan_renditions(probe, TINY_LADDER)
    result = await transcoder.transcode(media["noaudio"], tmp_path / "o", plan, probe)
    assert result.audio is None
    assert all(r.get("mimeType") == "video/mp4" for r in representations(result.manifest))


async def test_rotated_phone_video_comes_out_portrait(
    transcoder: FfmpegTranscoder, media: dict[str, Path], tmp_path: Path
) -> None:
    probe, plan, manifest = await transcode(transcoder, media["rotated"], tmp_path / "o")
    assert probe.rotation in (90, 270)
    assert (probe.width, probe.height) == (240, 320)
    assert (probe.coded_width, probe.coded_height) == (320, 240)
    assert (plan[0].name, plan[0].width, plan[0].height) == ("240p", 240, 320)
    for rep in representations(manifest):
        assert int(rep.get("height", "0")) > int(rep.get("width", "0"))
    stream = first_segment_stream(tmp_path / "o", "0", tmp_path)
    assert (stream["width"], stream["height"]) == ("240", "320")


async def test_odd_dimensions_are_rounded_to_even(
    transcoder: FfmpegTranscoder, media: dict[str, Path], tmp_path: Path
) -> None:
    probe, plan, manifest = await transcode(transcoder, media["odd"], tmp_path / "o")
    assert (probe.width, probe.height) == (321, 241)
    assert [(s.width, s.height) for s in plan] == [(320, 240), (240, 180), (160, 120)]
    for rep in representations(manifest):
        assert int(rep.get("width", "1")) % 2 == 0 and int(rep.get("height", "1")) % 2 == 0


async def test_anamorphic_source_gets_square_pixels_at_its_display_aspect(
    transcoder: FfmpegTranscoder, media: dict[str, Path], tmp_path: Path
) -> None:
    probe, plan, manifest = await transcode(transcoder, media["anamorphic"], tmp_path / "o")
    assert (probe.coded_width, probe.coded_height, probe.width, probe.height) == (
        320,
        240,
        427,
        240,
    )
    assert (plan[0].width, plan[0].height) == (426, 240)
    top = representations(manifest)[0]
    assert (top.get("width"), top.get("height"), top.get("sar")) == ("426", "240", "1:1")
    await transcoder.thumbnail(media["anamorphic"], tmp_path / "t.jpg", probe)
    stream = ffprobe_stream(tmp_path / "t.jpg")
    assert (stream["width"], stream["height"]) == ("426", "240")


async def test_variable_frame_rate_source_segments_cleanly(
    transcoder: FfmpegTranscoder, media: dict[str, Path], tmp_path: Path
) -> None:
    probe, _, manifest = await transcode(transcoder, media["vfr"], tmp_path / "o")
    assert probe.variable_frame_rate is True
    video = representations(manifest)
    assert len({tuple(timeline(r)) for r in video}) == 1


async def test_very_short_clip(
    transcoder: FfmpegTranscoder, media: dict[str, Path], tmp_path: Path
) -> None:
    probe, _, manifest = await transcode(transcoder, media["short"], tmp_path / "o")
    assert probe.duration_seconds is not None and probe.duration_seconds < 1
    assert (tmp_path / "o" / "chunk-0-00001.m4s").is_file()
    assert len(representations(manifest)) == 4


def timeline_seconds(manifest: Path, content_type: str) -> float:
    """Where the timeline of the first ``content_type`` representation ends, in seconds."""
    rep = next(r for r in representations(manifest) if r.get("mimeType") == content_type)
    template = rep.find(f"{MPD}SegmentTemplate")
    assert template is not None
    clock = 0
    for t, d, r in timeline(rep):
        clock = int(t) if t is not None else clock
        clock += int(d or 0) * (1 + int(r or 0))
    return clock / int(template.get("timescale") or 1)


def presentation_seconds(manifest: Path) -> float | None:
    return tx.presentation_seconds(manifest.read_text(encoding="utf-8"))


@pytest.mark.parametrize("clip", ["long_audio_mp4", "long_audio_mkv"])
async def test_audio_that_outlasts_the_video_plays_to_its_end_over_the_last_picture(
    clip: str, transcoder: FfmpegTranscoder, media: dict[str, Path], tmp_path: Path
) -> None:
    probe, _, manifest = await transcode(transcoder, media[clip], tmp_path / "o")
    assert probe.duration_seconds == pytest.approx(3.0, abs=0.05)
    assert probe.video_seconds == pytest.approx(1.0, abs=0.05)
    assert timeline_seconds(manifest, "audio/mp4") == pytest.approx(3.0, abs=0.05)
    assert timeline_seconds(manifest, "video/mp4") == pytest.approx(3.0, abs=0.05)
    assert presentation_seconds(manifest) == pytest.approx(3.0, abs=0.05)


async def test_a_late_first_timestamp_is_not_duration(
    transcoder: FfmpegTranscoder, media: dict[str, Path], tmp_path: Path
) -> None:
    """The container's own duration (12.5 s here) counts the 10 s before the first frame."""
    probe, _, manifest = await transcode(transcoder, media["late_start"], tmp_path / "o")
    assert probe.duration_seconds == pytest.approx(2.5, abs=0.05)
    assert probe.video_seconds == pytest.approx(2.0, abs=0.05)
    assert presentation_seconds(manifest) == pytest.approx(2.5, abs=0.05)


async def test_the_package_reports_how_long_it_plays_not_what_the_container_claimed(
    transcoder: FfmpegTranscoder, media: dict[str, Path], tmp_path: Path
) -> None:
    source = media["restarted_clock"]
    probe = await transcoder.probe(source)
    plan = plan_renditions(probe, TINY_LADDER)
    result = await transcoder.transcode(source, tmp_path / "o", plan, probe)
    assert probe.duration_seconds == pytest.approx(1.0, abs=0.05)
    assert result.duration_seconds == pytest.approx(2.0, abs=0.05)
    assert result.duration_seconds == presentation_seconds(result.manifest)


@pytest.mark.parametrize("content_type", sorted(CONTAINERS))
async def test_every_uploadable_container_is_packaged_with_its_audio(
    content_type: str, transcoder: FfmpegTranscoder, tmp_path: Path
) -> None:
    source = container_clip(tmp_path, content_type)
    probe, plan, manifest = await transcode(transcoder, source, tmp_path / "o")
    assert probe.has_video and probe.has_audio
    reps = representations(manifest)
    assert len(reps) == len(plan) + 1  # every rendition and the audio
    assert {(r.get("codecs") or "")[:4] for r in reps} == {"avc1", "mp4a"}


@pytest.mark.parametrize(
    ("transfer", "size"),
    [
        ("arib-std-b67", "320x240"),  # HLG at the top rendition's size
        ("smpte2084", "320x240"),  # PQ
        ("arib-std-b67", "640x480"),  # larger: scaled to the top rendition, then tone-mapped
    ],
)
async def test_hdr_phone_video_is_tone_mapped_to_sdr_bt709(
    transfer: str, size: str, transcoder: FfmpegTranscoder, tmp_path: Path
) -> None:
    """Phones record 10-bit HEVC in HLG or PQ; browsers get 8-bit BT.709 pictures, not 8-bit
    pictures still tagged BT.2020/HLG (which render washed out)."""
    source = tmp_path / "hdr.mov"
    x265 = f"log-level=error:colorprim=bt2020:transfer={transfer}:colormatrix=bt2020nc"
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration=1",
           "-pix_fmt", "yuv420p10le", "-c:v", "libx265", "-x265-params", x265, "-tag:v", "hvc1",
           str(source))  # fmt: skip
    probe, plan, _ = await transcode(transcoder, source, tmp_path / "o")
    assert probe.is_hdr and probe.color_transfer == transfer
    stream = first_segment_stream(tmp_path / "o", "0", tmp_path)
    colour = ("pix_fmt", "color_primaries", "color_transfer", "color_space")
    assert [stream[key] for key in colour] == ["yuv420p", "bt709", "bt709", "bt709"]
    assert (int(stream["width"]), int(stream["height"])) == (plan[0].width, plan[0].height)
    poster = tmp_path / "poster.jpg"
    await transcoder.thumbnail(source, poster, probe)
    assert poster.read_bytes()[:3] == b"\xff\xd8\xff"


async def test_a_single_frame_clip_has_a_duration_players_accept(
    transcoder: FfmpegTranscoder, media: dict[str, Path], tmp_path: Path
) -> None:
    """ffmpeg writes "PT0.0S" for it, which dash.js treats as no duration at all."""
    _, _, manifest = await transcode(transcoder, media["one_frame"], tmp_path / "o")
    root = ET.parse(manifest).getroot()  # noqa: S314 - our own output
    assert root.get("mediaPresentationDuration") == "PT0.040S"  # one frame at 25 fps


async def test_raw_h264_stream_without_timestamps_is_packaged_with_a_poster(
    transcoder: FfmpegTranscoder, media: dict[str, Path], tmp_path: Path
) -> None:
    probe, plan, manifest = await transcode(transcoder, media["raw"], tmp_path / "o")
    assert probe.duration_seconds is None and not probe.has_audio
    assert len(representations(manifest)) == len(plan) == 3
    poster = tmp_path / "poster.jpg"
    await transcoder.thumbnail(media["raw"], poster, probe)  # "-ss 0" would drop every frame
    assert poster.read_bytes()[:3] == b"\xff\xd8\xff"


async def test_a_tiny_rendition_is_not_labelled_h264_level_1b(
    media: dict[str, Path], tmp_path: Path
) -> None:
    """x264 labels a 128x96 High-profile stream level 1b (level_idc 9), which Chromium's
    MediaCapabilities calls unsupported: dash.js then has "no streams to play"."""
    high = FfmpegTranscoder(str(FFMPEG), str(FFPROBE), preset="veryfast", timeout_seconds=60)
    _, plan, manifest = await transcode(high, media["thumbnail_size"], tmp_path / "o")
    assert [(s.width, s.height) for s in plan] == [(128, 96)]
    codecs = representations(manifest)[0].get("codecs") or ""
    assert codecs.startswith("avc1.64") and int(codecs[-2:], 16) == 11, codecs


async def test_probe_without_stream_indexes_uses_the_first_streams(
    transcoder: FfmpegTranscoder, media: dict[str, Path], tmp_path: Path
) -> None:
    """A Probe rebuilt from an event may not carry ffprobe's stream indexes."""
    probed = await transcoder.probe(media["short"])
    probe = dataclasses.replace(probed, video_stream_index=None, audio_stream_index=None)
    plan = plan_renditions(probe, TINY_LADDER)
    result = await transcoder.transcode(media["short"], tmp_path / "o", plan, probe)
    assert result.audio is not None and len(result.renditions) == len(plan)


@pytest.mark.parametrize("clip", ["tenbit", "yuv422", "odd"])
async def test_high_bit_depth_and_chroma_become_8_bit_420(
    clip: str, transcoder: FfmpegTranscoder, media: dict[str, Path], tmp_path: Path
) -> None:
    probe, _, manifest = await transcode(transcoder, media[clip], tmp_path / "o")
    assert probe.pix_fmt != "yuv420p"
    assert (probe.bit_depth == 10) is (clip == "tenbit")
    for rep in representations(manifest):
        assert (rep.get("codecs") or "").startswith(BROWSER_CODECS)
    stream = first_segment_stream(tmp_path / "o", "0", tmp_path)
    assert stream["pix_fmt"] == "yuv420p"
    assert stream["profile"] in BROWSER_PROFILES


async def test_progress_is_reported_up_to_one_hundred_percent(
    transcoder: FfmpegTranscoder, media: dict[str, Path], tmp_path: Path
) -> None:
    seen: list[EncodeProgress] = []

    async def record(progress: EncodeProgress) -> None:
        seen.append(progress)

    probe = await transcoder.probe(media["av"])
    plan = plan_renditions(probe, TINY_LADDER)
    await transcoder.transcode(media["av"], tmp_path / "o", plan, probe, on_progress=record)

    assert seen, "no progress reported"
    percents = [p.percent for p in seen]
    assert percents == sorted(percents)
    assert seen[-1].percent == 100.0 and seen[-1].finished
    assert [name for name, _ in seen[-1].renditions] == [s.name for s in plan]


async def test_a_timeout_in_the_progress_callback_is_not_the_encode_timing_out(
    transcoder: FfmpegTranscoder, media: dict[str, Path], tmp_path: Path
) -> None:
    """A send that times out while reporting progress is the broker's trouble (transient,
    OSError), not TRANSCODE_TIMEOUT (permanent: the video would end FAILED)."""

    async def stalled_send(progress: EncodeProgress) -> None:
        raise TimeoutError("progress send timed out")

    probe = await transcoder.probe(media["av"])
    plan = plan_renditions(probe, TINY_LADDER)
    out_dir = tmp_path / "o"
    with pytest.raises(TimeoutError, match="progress send"):
        await transcoder.transcode(media["av"], out_dir, plan, probe, on_progress=stalled_send)
    assert pids_of("ffmpeg", str(out_dir)) == []


async def test_thumbnail_is_a_small_jpeg(
    transcoder: FfmpegTranscoder, media: dict[str, Path], tmp_path: Path
) -> None:
    for clip in ("av", "rotated", "short"):
        probe = await transcoder.probe(media[clip])
        out = tmp_path / f"{clip}.jpg"
        await transcoder.thumbnail(media[clip], out, probe)
        assert out.read_bytes()[:3] == b"\xff\xd8\xff"
        stream = ffprobe_stream(out)
        assert int(stream["width"]) <= 640
        assert (int(stream["height"]) > int(stream["width"])) is (clip == "rotated")


# --------------------------------------------------------------------------- failures


async def test_audio_only_has_no_video_stream(
    transcoder: FfmpegTranscoder, media: dict[str, Path]
) -> None:
    with pytest.raises(MediaError) as info:
        await transcoder.probe(media["audio"])
    assert info.value.reason is FailureReason.NO_VIDEO_STREAM
    assert info.value.transient is False


async def test_empty_file(transcoder: FfmpegTranscoder, media: dict[str, Path]) -> None:
    with pytest.raises(MediaError) as info:
        await transcoder.probe(media["empty"])
    assert info.value.reason is FailureReason.EMPTY_FILE


async def test_missing_source(transcoder: FfmpegTranscoder, tmp_path: Path) -> None:
    with pytest.raises(MediaError) as info:
        await transcoder.probe(tmp_path / "nope.mp4")
    assert info.value.reason is FailureReason.SOURCE_MISSING


@pytest.mark.parametrize(
    ("clip", "reason"),
    [
        # The .mp4 extension makes ffprobe try the MP4 demuxer, which finds no moov atom.
        ("text", FailureReason.CORRUPT_MEDIA),
        # Without an extension nothing recognises the bytes at all.
        ("text_noext", FailureReason.UNSUPPORTED_MEDIA),
        # moov is written last by default, so the first half has none.
        ("truncated", FailureReason.CORRUPT_MEDIA),
        # Playlist demuxers are not on the input whitelist: no reading other local files.
        ("playlist", FailureReason.UNSUPPORTED_MEDIA),
    ],
)
async def test_unreadable_input_is_classified(
    clip: str, reason: FailureReason, transcoder: FfmpegTranscoder, media: dict[str, Path]
) -> None:
    with pytest.raises(MediaError) as info:
        await transcoder.probe(media[clip])
    assert info.value.reason is reason
    assert info.value.transient is False
    assert info.value.detail


async def test_truncated_faststart_file_fails_with_a_reason_or_decodes_partially(
    transcoder: FfmpegTranscoder, media: dict[str, Path], tmp_path: Path
) -> None:
    try:
        _, _, manifest = await asyncio.wait_for(
            transcode(transcoder, media["truncated_faststart"], tmp_path / "o"), timeout=60
        )
    except MediaError as exc:
        assert exc.reason in {FailureReason.CORRUPT_MEDIA, FailureReason.TRANSCODE_FAILED}
    else:
        assert manifest.is_file()


@pytest.mark.parametrize("tag_bytes", [100_000, 9 * 1024 * 1024], ids=["100kB", "9MB"])
async def test_a_long_metadata_tag_is_probed_or_refused_with_a_reason(
    transcoder: FfmpegTranscoder, tmp_path: Path, tag_bytes: int
) -> None:
    """ffprobe prints a tag on one line; a 100 kB comment used to overflow the 64 kB line
    limit of the pipe reader with a bare ValueError. Beyond the probe's 8 MiB output budget
    the upload is refused as UNSUPPORTED_MEDIA."""
    metadata = tmp_path / "meta.txt"
    metadata.write_text(";FFMETADATA1\ncomment=" + "y" * tag_bytes + "\n")
    tagged = tmp_path / "tagged.mp4"
    ffmpeg(*("-f", "lavfi", "-i"), VIDEO.format(d=1), "-i", str(metadata), "-map", "0",
           "-map_metadata", "1", *X264, str(tagged))  # fmt: skip
    if tag_bytes < 8 * 1024 * 1024:
        probe = await transcoder.probe(tagged)
        assert (probe.width, probe.height) == (320, 240)
    else:
        with pytest.raises(MediaError) as info:
            await transcoder.probe(tagged)
        assert info.value.reason is FailureReason.UNSUPPORTED_MEDIA


async def test_a_missing_ffprobe_is_an_environment_error_not_a_bad_upload(
    media: dict[str, Path], tmp_path: Path
) -> None:
    """FileNotFoundError (an OSError: the agent retries it), not an exit status that would
    read as CORRUPT_MEDIA and fail the video for good."""
    broken = FfmpegTranscoder(str(FFMPEG), str(tmp_path / "no-ffprobe"), "ultrafast", 60.0)
    with pytest.raises(FileNotFoundError):
        await broken.probe(media["av"])


def _stalling_source(tmp_path: Path) -> Path:
    """A FIFO nobody writes to: ffmpeg blocks opening it, forever."""
    fifo = tmp_path / "stall.mp4"
    os.mkfifo(fifo)
    return fifo


async def test_timeout_kills_ffmpeg(media: dict[str, Path], tmp_path: Path) -> None:
    fast_timeout = FfmpegTranscoder(str(FFMPEG), str(FFPROBE), "ultrafast", 1.0, threads=1)
    probe = await fast_timeout.probe(media["av"])
    out_dir = tmp_path / "timeout-out"
    with pytest.raises(MediaError) as info:
        await fast_timeout.transcode(
            _stalling_source(tmp_path), out_dir, plan_renditions(probe, TINY_LADDER), probe
        )
    assert info.value.reason is FailureReason.TRANSCODE_TIMEOUT
    assert info.value.transient is False
    assert processes_mentioning(str(out_dir)) == []


async def test_the_timeout_grows_with_the_source_duration(
    media: dict[str, Path], tmp_path: Path
) -> None:
    """1 s plus 0.5 s per second of the 4.5 s the probe found: 3.25 s, not 1 s."""
    transcoder = FfmpegTranscoder(
        str(FFMPEG), str(FFPROBE), "ultrafast", 1.0, threads=1, timeout_per_source_second=0.5
    )
    probe = await transcoder.probe(media["av"])
    plan = plan_renditions(probe, TINY_LADDER)
    started = time.monotonic()
    with pytest.raises(MediaError) as info:
        await transcoder.transcode(_stalling_source(tmp_path), tmp_path / "o", plan, probe)
    assert info.value.reason is FailureReason.TRANSCODE_TIMEOUT
    assert 3.2 <= time.monotonic() - started < 30


def _feed(fifo: Path, parts: list[Path], at_once: int, pause: float) -> None:
    """Write ``parts`` into ``fifo``: ``at_once`` of them straight away, then one every
    ``pause`` seconds (a source that takes a while to encode)."""
    with contextlib.suppress(BrokenPipeError), fifo.open("wb") as sink:
        for n, part in enumerate(parts):
            if n >= at_once:
                time.sleep(pause)
            sink.write(part.read_bytes())
            sink.flush()


@pytest.mark.parametrize(
    ("max_source_seconds", "finishes"), [(None, True), (1.0, False)], ids=["uncapped", "capped"]
)
async def test_the_timeout_follows_what_is_encoded_past_the_claimed_duration(
    tmp_path: Path, max_source_seconds: float | None, finishes: bool
) -> None:
    """Twenty 1 s TS parts joined (the container claims 1 s): eight at once, then one
    every 0.5 s, so the encode lasts at least 6 s. The budget, 3 s plus 1 s per source
    second, is 4 s on the claimed second alone: the encode finishes only because the
    budget follows what ffmpeg has encoded. Capped at 1 s of source, it is stopped."""
    joined = restarted_clock_ts(tmp_path, parts=20)
    transcoder = FfmpegTranscoder(
        str(FFMPEG), str(FFPROBE), "ultrafast", 3.0, threads=1,
        timeout_per_source_second=1.0, max_source_seconds=max_source_seconds,
    )  # fmt: skip
    probe = await transcoder.probe(joined)
    assert probe.duration_seconds is not None and probe.duration_seconds < 1.5
    fifo = _stalling_source(tmp_path)
    parts = [tmp_path / f"part{i}.ts" for i in range(20)]
    feeder = asyncio.create_task(asyncio.to_thread(_feed, fifo, parts, 8, 0.5))
    plan = plan_renditions(probe, TINY_LADDER)
    try:
        if finishes:
            output = await transcoder.transcode(fifo, tmp_path / "o", plan, probe)
            assert output.duration_seconds is not None and output.duration_seconds > 19.5
        else:
            with pytest.raises(MediaError) as info:
                await transcoder.transcode(fifo, tmp_path / "o", plan, probe)
            assert info.value.reason is FailureReason.TRANSCODE_TIMEOUT
    finally:
        if not feeder.done():  # a writer still waiting for a reader to open the FIFO
            with contextlib.suppress(OSError):
                os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
        await feeder


async def test_cancellation_kills_ffmpeg(
    transcoder: FfmpegTranscoder, media: dict[str, Path], tmp_path: Path
) -> None:
    probe = await transcoder.probe(media["av"])
    out_dir = tmp_path / "cancel-out"
    task = asyncio.create_task(
        transcoder.transcode(
            _stalling_source(tmp_path), out_dir, plan_renditions(probe, TINY_LADDER), probe
        )
    )
    for _ in range(100):
        if processes_mentioning(str(out_dir)):
            break
        await asyncio.sleep(0.02)
    assert processes_mentioning(str(out_dir)), "ffmpeg never started"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert processes_mentioning(str(out_dir)) == []


_ORPHAN_PARENT = """
import asyncio, sys
from pathlib import Path
from tritontube.domain.media import LADDER, plan_renditions
from tritontube.media.ffmpeg import FfmpegTranscoder

async def main(clip, stalled, out_dir):
    transcoder = FfmpegTranscoder(preset="ultrafast", timeout_seconds=600)
    probe = await transcoder.probe(Path(clip))
    await transcoder.transcode(Path(stalled), Path(out_dir), plan_renditions(probe, LADDER), probe)

asyncio.run(main(*sys.argv[1:]))
"""


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs util-linux's setpriv")
def test_ffmpeg_dies_with_the_process_that_started_it(
    media: dict[str, Path], tmp_path: Path
) -> None:
    """A worker killed with SIGKILL cannot kill its ffmpeg; the kernel must (pdeathsig).
    ffmpeg ignores SIGPIPE, so an orphan would otherwise encode on beside the job's
    redelivery (here it would wait on the FIFO for ever)."""
    out_dir = tmp_path / "orphan-out"
    parent = subprocess.Popen(
        [sys.executable, "-c", _ORPHAN_PARENT, str(media["av"]), str(_stalling_source(tmp_path)),
         str(out_dir)],
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not pids_of("ffmpeg", str(out_dir)):
            assert parent.poll() is None and time.monotonic() < deadline, "ffmpeg never started"
            time.sleep(0.05)
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 5
        while pids_of("ffmpeg", str(out_dir)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pids_of("ffmpeg", str(out_dir)) == [], "ffmpeg outlived its parent"
    finally:
        parent.kill()
        for pid in pids_of("ffmpeg", str(out_dir)):
            os.kill(pid, signal.SIGKILL)


async def test_memory_ceiling_fails_the_encode(media: dict[str, Path], tmp_path: Path) -> None:
    starved = FfmpegTranscoder(
        str(FFMPEG), str(FFPROBE), "ultrafast", 60, memory_limit_bytes=64 * 1024**2, threads=1
    )
    probe = await FfmpegTranscoder(str(FFMPEG), str(FFPROBE)).probe(media["av"])
    with pytest.raises(MediaError) as info:
        await starved.transcode(
            media["av"], tmp_path / "o", plan_renditions(probe, TINY_LADDER), probe
        )
    assert info.value.reason is FailureReason.TRANSCODE_FAILED


async def test_output_directory_must_be_empty(
    transcoder: FfmpegTranscoder, media: dict[str, Path], tmp_path: Path
) -> None:
    (tmp_path / "stale.m4s").write_bytes(b"old")
    probe = await transcoder.probe(media["av"])
    with pytest.raises(ValueError, match="not empty"):
        await transcoder.transcode(media["av"], tmp_path, plan_renditions(probe), probe)


@pytest.fixture(autouse=True)
def _no_leftover_ffmpeg(tmp_path: Path) -> Iterator[None]:
    yield
    assert processes_mentioning(str(tmp_path)) == []


async def test_children_run_at_the_configured_niceness(tmp_path: Path) -> None:
    """ffmpeg/ffprobe yield the CPU to the event path: every child runs niced."""
    record = tmp_path / "nice.txt"
    fake_probe = tmp_path / "ffprobe"
    # Wait a moment (the priority is set right after spawn), then record our niceness.
    fake_probe.write_text(f"#!/bin/sh\nsleep 0.3\nps -o ni= -p $$ > {record}\nexit 1\n")
    fake_probe.chmod(0o755)
    source = tmp_path / "source.mp4"
    source.write_bytes(b"\0" * 1024)
    transcoder = FfmpegTranscoder(ffprobe_path=str(fake_probe), niceness=7)
    with pytest.raises(MediaError):
        await transcoder.probe(source)
    assert int(record.read_text().strip()) == 7
