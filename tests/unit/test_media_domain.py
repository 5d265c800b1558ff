"""Unit tests for the pure media domain: ladder planning, validation, progress parsing."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import pytest

from helpers import make_probe
from tritontube.domain.media import (
    LADDER,
    FailureReason,
    MediaError,
    RenditionSpec,
    describe,
    h264_level_floor,
    parse_progress_block,
    plan_renditions,
    rendition_sars,
    scale_sources,
    target_frame_rate,
    validate_probe,
    video_hold_seconds,
)


def dims(plan: tuple[RenditionSpec, ...]) -> list[tuple[str, int, int]]:
    return [(r.name, r.width, r.height) for r in plan]


# --------------------------------------------------------------------------- plan_renditions


def test_full_hd_source_gets_the_whole_ladder() -> None:
    plan = plan_renditions(make_probe(1920, 1080))
    assert dims(plan) == [("1080p", 1920, 1080), ("720p", 1280, 720), ("480p", 854, 480)]
    assert [r.video_bitrate_kbps for r in plan] == [5000, 2800, 1200]


def test_720p_source_is_never_upscaled() -> None:
    plan = plan_renditions(make_probe(1280, 720))
    assert dims(plan) == [("720p", 1280, 720), ("480p", 854, 480)]


def test_source_below_smallest_rung_gets_one_rendition_at_source_size() -> None:
    plan = plan_renditions(make_probe(640, 360))
    assert dims(plan) == [("360p", 640, 360)]
    only = plan[0]
    assert only.video_bitrate_kbps < LADDER[-1].video_bitrate_kbps
    assert only.video_bitrate_kbps <= only.maxrate_kbps <= only.bufsize_kbps


def test_portrait_rung_names_refer_to_the_short_side() -> None:
    plan = plan_renditions(make_probe(1080, 1920))
    assert dims(plan) == [("1080p", 1080, 1920), ("720p", 720, 1280), ("480p", 480, 854)]


def test_odd_source_dimensions_become_even_and_never_exceed_the_source() -> None:
    plan = plan_renditions(make_probe(853, 479))
    assert dims(plan) == [("478p", 852, 478)]
    plan = plan_renditions(make_probe(853, 480))
    assert dims(plan) == [("480p", 852, 480)]


@pytest.mark.parametrize(
    ("width", "height"),
    [(1920, 1080), (1280, 720), (853, 479), (321, 241), (3840, 1080), (1080, 1920), (2, 2)],
)
def test_every_rendition_is_even_and_within_the_source(width: int, height: int) -> None:
    for spec in plan_renditions(make_probe(width, height)):
        assert spec.width % 2 == 0 and spec.height % 2 == 0
        assert spec.width <= width and spec.height <= height


def test_aspect_ratio_is_preserved() -> None:
    (only,) = plan_renditions(make_probe(1920, 1080), names=["720p"])
    assert only.width / only.height == pytest.approx(1920 / 1080, rel=0.01)
    ultrawide = plan_renditions(make_probe(2560, 1080))
    assert dims(ultrawide)[1] == ("720p", 1706, 720)


def test_tiny_source_is_at_least_two_pixels() -> None:
    (only,) = plan_renditions(make_probe(3, 3))
    assert (only.width, only.height) == (2, 2)


def test_names_restrict_the_ladder_and_unknown_names_are_rejected() -> None:
    plan = plan_renditions(make_probe(1920, 1080), names=["480p", "1080p"])
    assert [r.name for r in plan] == ["1080p", "480p"]
    with pytest.raises(ValueError, match="unknown rendition"):
        plan_renditions(make_probe(1920, 1080), names=["4k"])


def test_names_above_the_source_fall_back_to_the_source_size() -> None:
    plan = plan_renditions(make_probe(1280, 720), names=["1080p"])
    assert dims(plan) == [("720p", 1280, 720)]


def test_no_video_stream_cannot_be_planned() -> None:
    with pytest.raises(MediaError) as info:
        plan_renditions(make_probe(0, 0, has_video=False))
    assert info.value.reason is FailureReason.NO_VIDEO_STREAM
    assert info.value.transient is False


def test_rendition_spec_rejects_odd_dimensions() -> None:
    with pytest.raises(ValueError, match="even"):
        RenditionSpec("bad", 853, 480, 1000, 1100, 1500, 96)


def test_rendition_sars_keep_one_display_aspect_ratio() -> None:
    plan = plan_renditions(make_probe(1920, 1080))
    sars = rendition_sars(plan)
    assert sars == (Fraction(1), Fraction(1), Fraction(1280, 1281))
    for spec, sar in zip(plan, sars, strict=True):
        assert Fraction(spec.width, spec.height) * sar == Fraction(16, 9)
    assert rendition_sars(plan_renditions(make_probe(1440, 1080))) == (Fraction(1),) * 3
    assert rendition_sars(()) == ()


def test_each_rung_is_scaled_from_the_next_larger_picture() -> None:
    ladder = plan_renditions(make_probe(3840, 2160))
    assert [s.height for s in ladder] == [1080, 720, 480]
    assert scale_sources(ladder) == (None, 0, 1)
    assert scale_sources(plan_renditions(make_probe(1080, 1920))) == (None, 0, 1)  # portrait
    assert scale_sources(plan_renditions(make_probe(320, 240))) == (None,)
    assert scale_sources(()) == ()


def test_the_last_picture_is_held_only_while_audio_would_otherwise_be_lost() -> None:
    song = make_probe(1920, 1080, duration_seconds=200.0, video_seconds=0.04)
    assert video_hold_seconds(song) == pytest.approx(199.96)
    # AAC padding and muxing slack past the video's end are cut with it.
    assert video_hold_seconds(make_probe(640, 360, video_seconds=9.95)) == 0.0
    assert video_hold_seconds(make_probe(640, 360, video_seconds=10.0)) == 0.0
    # No audio to keep, or a source that does not say where its video ends.
    assert video_hold_seconds(dataclasses.replace(song, has_audio=False)) == 0.0
    assert video_hold_seconds(make_probe(640, 360, video_seconds=None)) == 0.0
    assert video_hold_seconds(dataclasses.replace(song, duration_seconds=None)) == 0.0


def test_a_rung_is_never_scaled_up_from_a_smaller_picture() -> None:
    wide, tall, small = (RenditionSpec("w", 1280, 480, 1, 1, 1, 64),
                         RenditionSpec("t", 960, 720, 1, 1, 1, 64),
                         RenditionSpec("s", 640, 360, 1, 1, 1, 64))  # fmt: skip
    # Neither of the first two covers the other: both come from the source. Both cover
    # 640x360; the one with fewer pixels (1280x480) is its source.
    assert scale_sources((wide, tall, small)) == (None, None, 0)
    assert scale_sources((tall, small)) == (None, 0)
    assert scale_sources((small, tall)) == (None, None)


# --------------------------------------------------------------------------- validate_probe


def test_validate_accepts_a_normal_source() -> None:
    validate_probe(make_probe(1920, 1080), max_duration=60, max_pixels=3840 * 2160)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"duration_seconds": 61.0}, FailureReason.TOO_LONG),
        ({"coded_width": 7680, "coded_height": 4320}, FailureReason.TOO_LARGE_DIMENSIONS),
        ({"has_video": False}, FailureReason.NO_VIDEO_STREAM),
        ({"size_bytes": 0}, FailureReason.EMPTY_FILE),
        ({"size_bytes": 10**10}, FailureReason.TOO_LARGE_FILE),
        ({"width": 0, "height": 0}, FailureReason.UNSUPPORTED_MEDIA),
        ({"width": 3, "height": 3}, FailureReason.TOO_SMALL_DIMENSIONS),
        ({"width": 4000, "height": 15}, FailureReason.TOO_SMALL_DIMENSIONS),
    ],
)
def test_validate_rejects(overrides: dict[str, object], reason: FailureReason) -> None:
    probe = dataclasses.replace(make_probe(1920, 1080), **overrides)  # type: ignore[arg-type]
    with pytest.raises(MediaError) as info:
        validate_probe(probe, max_duration=60, max_pixels=3840 * 2160, max_file_bytes=10**9)
    assert info.value.reason is reason
    assert info.value.message == describe(reason)


def test_unknown_duration_passes_the_duration_check() -> None:
    validate_probe(make_probe(640, 360, duration_seconds=None), max_duration=1, max_pixels=10**7)


def test_every_reason_has_a_message() -> None:
    for reason in FailureReason:
        assert describe(reason).endswith(".")
        assert reason.value == reason.name


# --------------------------------------------------------------------------- frame rate


@pytest.mark.parametrize(
    ("rate", "expected"),
    [
        (29.97002997, Fraction(30000, 1001)),
        (25.0, Fraction(25)),
        (120.0, Fraction(60)),
        (22.88, Fraction(23)),
        (0.0, Fraction(30)),
        (0.4, Fraction(1)),
    ],
)
def test_target_frame_rate(rate: float, expected: Fraction) -> None:
    assert target_frame_rate(make_probe(640, 360, frame_rate=rate)) == expected


# --------------------------------------------------------------------------- progress


def test_progress_block_midway() -> None:
    block = {
        "frame": "50",
        "out_time_us": "2500000",
        "out_time_ms": "2500000",
        "out_time": "00:00:02.500000",
        "speed": "2.5x",
        "progress": "continue",
    }
    progress = parse_progress_block(block, duration=10.0, rendition_names=["720p", "480p"])
    assert progress.out_time_seconds == pytest.approx(2.5)
    assert progress.percent == pytest.approx(25.0)
    assert progress.speed == pytest.approx(2.5)
    assert progress.eta_seconds == pytest.approx(3.0)
    assert progress.renditions == (("720p", 25.0), ("480p", 25.0))
    assert progress.finished is False


def test_progress_end_is_one_hundred_percent() -> None:
    block = {"out_time_us": "9900000", "speed": "3x", "progress": "end"}
    progress = parse_progress_block(block, duration=10.0)
    assert progress.percent == 100.0
    assert progress.eta_seconds == 0.0
    assert progress.finished is True


def test_progress_before_first_packet_is_zero() -> None:
    block = {"out_time_us": "N/A", "out_time_ms": "N/A", "speed": "N/A", "progress": "continue"}
    progress = parse_progress_block(block, duration=10.0)
    assert (progress.percent, progress.speed, progress.eta_seconds) == (0.0, None, None)


def test_progress_falls_back_to_out_time_and_clamps() -> None:
    late = parse_progress_block({"out_time": "00:01:10.5", "progress": "continue"}, duration=60.0)
    assert late.out_time_seconds == pytest.approx(70.5)
    assert late.percent == 99.0
    early = parse_progress_block({"out_time": "-00:00:00.023", "progress": "continue"}, 60.0)
    assert early.out_time_seconds == 0.0 and early.percent == 0.0


def test_progress_past_the_claimed_duration_is_not_done_and_has_no_eta() -> None:
    # An MPEG-TS whose clock restarts mid-file claims less than it plays.
    block = {"out_time_us": "1500000", "speed": "2x", "progress": "continue"}
    progress = parse_progress_block(block, duration=1.0, rendition_names=["480p"])
    assert progress.percent == 99.0
    assert progress.renditions == (("480p", 99.0),)
    assert progress.eta_seconds is None
    assert progress.finished is False
    at_end = parse_progress_block({**block, "out_time_us": "1000000"}, duration=1.0)
    assert at_end.eta_seconds == 0.0


def test_progress_with_unknown_duration() -> None:
    progress = parse_progress_block({"out_time_us": "5000000", "progress": "continue"}, None)
    assert progress.percent == 0.0
    assert progress.eta_seconds is None


# --------------------------------------------------------------------------- H.264 level


@pytest.mark.parametrize(
    ("width", "height", "rate", "maxrate", "expected"),
    [
        (16, 16, 30, 150, "1.1"),  # 1 macroblock: x264 would say level 1b
        (128, 96, 30, 150, "1.1"),  # 48 macroblocks at 30 fps: 1440/s
        (176, 144, 15, 150, "1.1"),  # QCIF, 99 macroblocks at 15 fps: 1485/s
        (176, 144, 30, 150, None),  # 2970 macroblocks/s: above 1b, x264 picks 1.1+ itself
        (192, 144, 15, 150, None),  # 108 macroblocks: above 1b's frame size
        (128, 96, 30, 500, None),  # above 1b's bitrate
        (854, 480, 30, 1284, None),
    ],
)
def test_h264_level_floor_replaces_level_1b_only(
    width: int, height: int, rate: int, maxrate: int, expected: str | None
) -> None:
    spec = RenditionSpec("small", width, height, maxrate, maxrate, maxrate, 96)
    assert h264_level_floor(spec, Fraction(rate)) == expected


def test_a_tiny_source_sized_rendition_gets_the_level_floor() -> None:
    (only,) = plan_renditions(make_probe(128, 96), LADDER)
    assert h264_level_floor(only, Fraction(30)) == "1.1"
