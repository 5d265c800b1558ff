"""The ffmpeg filter graph FfmpegTranscoder builds: what runs on which picture."""

from __future__ import annotations

from fractions import Fraction

from helpers import make_probe
from tritontube.domain.media import plan_renditions
from tritontube.media.arguments import filter_graph as _filter_graph

HLG = "arib-std-b67"


def head(width: int, height: int, **overrides: object) -> str:
    """The chain every rendition starts from (up to its split)."""
    probe = make_probe(width, height, **overrides)
    return _filter_graph("0:0", Fraction(30), plan_renditions(probe), probe).split(";")[0]


def test_hdr_larger_than_the_top_rendition_is_scaled_down_before_tone_mapping() -> None:
    chain = head(3840, 2160, color_transfer=HLG, bit_depth=10)
    assert chain.index("zscale=w=1920:h=1080:") < chain.index("tonemap=")


def test_hdr_at_the_top_rendition_size_and_sdr_sources_are_not_scaled_in_the_head() -> None:
    assert "w=1920" not in head(1920, 1080, color_transfer=HLG, bit_depth=10)
    assert "tonemap=" in head(1920, 1080, color_transfer=HLG, bit_depth=10)
    assert "w=1920" not in head(3840, 2160)  # SDR: nothing costly runs on the source picture


def test_the_last_picture_is_held_while_the_audio_plays_on() -> None:
    assert "tpad=stop_mode=clone:stop_duration=9.000" in head(
        1280, 720, duration_seconds=10.0, video_seconds=1.0
    )
    assert "tpad" not in head(1280, 720, duration_seconds=10.0, video_seconds=10.0)
