"""Media domain: probe facts, the rendition ladder, failure reasons and progress maths.

Pure and synchronous. Nothing here touches a process, a file or an event loop; the ffmpeg
adapter in ``tritontube.media.ffmpeg`` produces these values and the agents consume them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from pathlib import Path

__all__ = [
    "HDR_TRANSFERS",
    "LADDER",
    "MIN_PICTURE_SIDE",
    "UNFINISHED_PERCENT_CEILING",
    "AudioOutput",
    "DashOutput",
    "EncodeProgress",
    "FailureReason",
    "MediaError",
    "OutputFile",
    "PartOutput",
    "Probe",
    "RenditionOutput",
    "RenditionSpec",
    "describe",
    "h264_level_floor",
    "parse_clock",
    "parse_progress_block",
    "plan_renditions",
    "rendition_sars",
    "scale_sources",
    "target_frame_rate",
    "validate_probe",
    "video_hold_seconds",
]


#: The smallest picture side accepted. ffmpeg's deinterlacer and the 4:2:0 scaling need 4
#: pixels; below a macroblock nothing is worth watching.
MIN_PICTURE_SIDE = 16


class FailureReason(StrEnum):
    """Why a video could not be made playable. The value is the code the SPA shows."""

    UNSUPPORTED_MEDIA = "UNSUPPORTED_MEDIA"
    CORRUPT_MEDIA = "CORRUPT_MEDIA"
    NO_VIDEO_STREAM = "NO_VIDEO_STREAM"
    EMPTY_FILE = "EMPTY_FILE"
    TOO_LONG = "TOO_LONG"
    TOO_LARGE_DIMENSIONS = "TOO_LARGE_DIMENSIONS"
    TOO_SMALL_DIMENSIONS = "TOO_SMALL_DIMENSIONS"
    TOO_LARGE_FILE = "TOO_LARGE_FILE"
    TRANSCODE_TIMEOUT = "TRANSCODE_TIMEOUT"
    TRANSCODE_FAILED = "TRANSCODE_FAILED"
    SOURCE_MISSING = "SOURCE_MISSING"


_MESSAGES: Mapping[FailureReason, str] = {
    FailureReason.UNSUPPORTED_MEDIA: "The file is not in a video format we support.",
    FailureReason.CORRUPT_MEDIA: "The file is damaged or incomplete and could not be read.",
    FailureReason.NO_VIDEO_STREAM: "The file has no video track.",
    FailureReason.EMPTY_FILE: "The uploaded file is empty.",
    FailureReason.TOO_LONG: "The video is longer than the maximum allowed duration.",
    FailureReason.TOO_LARGE_DIMENSIONS: "The video resolution is larger than we accept.",
    FailureReason.TOO_SMALL_DIMENSIONS: (
        f"The video picture is too small: at least {MIN_PICTURE_SIDE}x{MIN_PICTURE_SIDE} pixels "
        "are needed."
    ),
    FailureReason.TOO_LARGE_FILE: "The file is larger than the maximum upload size.",
    FailureReason.TRANSCODE_TIMEOUT: "Processing the video took too long and was stopped.",
    FailureReason.TRANSCODE_FAILED: "The video could not be processed.",
    FailureReason.SOURCE_MISSING: "The uploaded file could not be found.",
}


def describe(reason: FailureReason) -> str:
    """One-line, user-facing message for a failure reason."""
    return _MESSAGES[reason]


class MediaError(Exception):
    """A media operation failed for a known reason.

    ``transient`` is True when retrying the same input may succeed (the encoder was killed
    by someone else, the disk filled up); False when the input itself is the problem.
    ``detail`` carries diagnostics (an ffmpeg stderr tail) for logs, never for users.
    """

    def __init__(
        self,
        reason: FailureReason,
        message: str | None = None,
        *,
        transient: bool = False,
        detail: str = "",
    ) -> None:
        self.reason = reason
        self.message = message if message is not None else describe(reason)
        self.transient = transient
        self.detail = detail
        super().__init__(f"{reason.value}: {self.message}")


#: Transfer characteristics (ffprobe's names) of high-dynamic-range video.
HDR_TRANSFERS = frozenset({"smpte2084", "arib-std-b67"})


@dataclass(frozen=True)
class Probe:
    """What ffprobe found in a source file.

    ``width``/``height`` are display dimensions: the stored frame size corrected for a
    non-square sample aspect ratio and then swapped when ``rotation`` is 90 or 270.
    ``coded_width``/``coded_height`` are the stored frame size as decoded, before either
    correction. ``rotation`` is ffprobe's display-matrix rotation normalised to
    [0, 360).

    ``duration_seconds`` is how long the source plays: from its first video or audio sample
    to its last (a late first timestamp is not duration). ``video_seconds`` is where the
    video ends on that clock, which is earlier when the audio runs on. Either is None when
    the source does not say.
    """

    width: int
    height: int
    coded_width: int
    coded_height: int
    rotation: int
    duration_seconds: float | None
    has_video: bool
    has_audio: bool
    video_codec: str | None
    audio_codec: str | None
    pix_fmt: str | None
    frame_rate: float
    variable_frame_rate: bool
    bit_depth: int
    format_name: str
    size_bytes: int
    video_stream_index: int | None = None
    audio_stream_index: int | None = None
    color_transfer: str | None = None
    video_seconds: float | None = None

    @property
    def short_side(self) -> int:
        return min(self.width, self.height)

    @property
    def is_portrait(self) -> bool:
        return self.height > self.width

    @property
    def is_hdr(self) -> bool:
        """PQ (HDR10, Dolby Vision) or HLG video, as phones record by default."""
        return self.color_transfer in HDR_TRANSFERS


@dataclass(frozen=True)
class RenditionSpec:
    """One rung of the ladder. ``name`` refers to the short side ("720p" is 1280x720 or
    720x1280)."""

    name: str
    width: int
    height: int
    video_bitrate_kbps: int
    maxrate_kbps: int
    bufsize_kbps: int
    audio_bitrate_kbps: int

    def __post_init__(self) -> None:
        if self.width < 2 or self.height < 2 or self.width % 2 or self.height % 2:
            raise ValueError(f"rendition {self.name}: dimensions must be even and >= 2")
        if not 0 < self.video_bitrate_kbps <= self.maxrate_kbps <= self.bufsize_kbps:
            raise ValueError(f"rendition {self.name}: need 0 < bitrate <= maxrate <= bufsize")
        if self.audio_bitrate_kbps <= 0:
            raise ValueError(f"rendition {self.name}: audio bitrate must be positive")

    @property
    def pixels(self) -> int:
        return self.width * self.height


LADDER: tuple[RenditionSpec, ...] = (
    RenditionSpec("1080p", 1920, 1080, 5000, 5350, 7500, 128),
    RenditionSpec("720p", 1280, 720, 2800, 2996, 4200, 128),
    RenditionSpec("480p", 854, 480, 1200, 1284, 1800, 96),
)

_MIN_SOURCE_SIZED_KBPS = 150


def _even_floor(value: float) -> int:
    return max(2, int(value) // 2 * 2)


def _even_nearest(value: float) -> int:
    return max(2, round(value / 2) * 2)


def _select_ladder(
    ladder: Sequence[RenditionSpec], names: Iterable[str] | None
) -> list[RenditionSpec]:
    rungs = sorted(ladder, key=lambda r: r.height, reverse=True)
    if names is None:
        return rungs
    wanted = set(names)
    unknown = wanted - {r.name for r in rungs}
    if unknown:
        raise ValueError(f"unknown rendition names: {sorted(unknown)}")
    return [r for r in rungs if r.name in wanted]


def _orient(probe: Probe, short: int, long: int) -> tuple[int, int]:
    return (short, long) if probe.is_portrait else (long, short)


def _scaled(probe: Probe, rung: RenditionSpec) -> RenditionSpec:
    """The rung at the source's aspect ratio: short side = rung height, never above source."""
    src_short, src_long = probe.short_side, max(probe.width, probe.height)
    short = rung.height
    long = min(_even_nearest(short * src_long / src_short), _even_floor(src_long))
    width, height = _orient(probe, short, long)
    return RenditionSpec(
        rung.name,
        width,
        height,
        rung.video_bitrate_kbps,
        rung.maxrate_kbps,
        rung.bufsize_kbps,
        rung.audio_bitrate_kbps,
    )


def _source_sized(probe: Probe, smallest: RenditionSpec) -> RenditionSpec:
    """A single rendition at the source size for sources below the smallest rung."""
    width, height = _even_floor(probe.width), _even_floor(probe.height)
    ratio = (width * height) / smallest.pixels

    def scale(kbps: int) -> int:
        return max(_MIN_SOURCE_SIZED_KBPS, round(kbps * ratio))

    bitrate, maxrate, bufsize = (
        scale(smallest.video_bitrate_kbps),
        scale(smallest.maxrate_kbps),
        scale(smallest.bufsize_kbps),
    )
    return RenditionSpec(
        f"{min(width, height)}p",
        width,
        height,
        bitrate,
        max(bitrate, maxrate),
        max(bitrate, maxrate, bufsize),
        smallest.audio_bitrate_kbps,
    )


def plan_renditions(
    probe: Probe,
    ladder: Sequence[RenditionSpec] = LADDER,
    names: Iterable[str] | None = None,
) -> tuple[RenditionSpec, ...]:
    """Renditions to encode for ``probe``, largest first. Never upscales.

    A rung is kept when its height is at most the source's short side (so portrait video
    gets the same rung names as landscape). Each kept rung keeps the source's display
    aspect ratio with square pixels, even dimensions, and is never larger than the source.
    A source smaller than every selected rung gets exactly one rendition at its own size
    (rounded down to even), named after its short side, with bitrates scaled by area from
    the smallest rung. ``names`` restricts the ladder to those rung names.
    """
    if not probe.has_video:
        raise MediaError(FailureReason.NO_VIDEO_STREAM)
    if probe.width < 2 or probe.height < 2:
        raise MediaError(FailureReason.UNSUPPORTED_MEDIA, detail="no usable picture size")
    rungs = _select_ladder(ladder, names)
    if not rungs:
        raise ValueError("the ladder selects no renditions")
    kept = tuple(_scaled(probe, r) for r in rungs if r.height <= probe.short_side)
    return kept if kept else (_source_sized(probe, rungs[-1]),)


def rendition_sars(plan: Sequence[RenditionSpec]) -> tuple[Fraction, ...]:
    """The sample aspect ratio each rendition must carry so that all of them display at
    exactly the first rendition's aspect ratio.

    MPEG-DASH players switch only within one adaptation set, and ffmpeg's DASH muxer
    (rightly) refuses an adaptation set whose representations differ in picture aspect
    ratio. Rounding to even sizes breaks exactness (854x480 is not quite 16:9), so such a
    rung gets a near-square SAR (1280:1281) instead of being stretched or cropped.
    """
    if not plan:
        return ()
    reference = Fraction(plan[0].width, plan[0].height)
    return tuple(reference / Fraction(spec.width, spec.height) for spec in plan)


def scale_sources(plan: Sequence[RenditionSpec]) -> tuple[int | None, ...]:
    """For each rendition, the index of the rendition whose picture it is scaled from, or
    None for the source itself.

    A rendition is scaled from the smallest earlier rendition at least as large in both
    dimensions: 480p from the 720p picture, 720p from the 1080p one. From a 1080p source that
    is a sixth of the work of scaling 1080p to 480p again (ffmpeg -benchmark, 60 s clip: 1.5
    against 5.1 CPU-seconds), and the picture is the same (SSIM 0.998 against the direct
    scale, before a lossy encode at 1.4 Mb/s). Separate per-rendition runs cannot do this.
    """
    sources: list[int | None] = []
    for i, spec in enumerate(plan):
        larger = [
            j for j in range(i) if plan[j].width >= spec.width and plan[j].height >= spec.height
        ]
        sources.append(min(larger, key=lambda j: plan[j].width * plan[j].height, default=None))
    return tuple(sources)


def validate_probe(
    probe: Probe,
    max_duration: float,
    max_pixels: int,
    max_file_bytes: int | None = None,
) -> None:
    """Raise MediaError when the source is outside what we accept; return None if fine.

    A source whose duration is unknown passes the duration check; the transcode timeout
    bounds it instead.
    """
    if probe.size_bytes == 0:
        raise MediaError(FailureReason.EMPTY_FILE)
    if max_file_bytes is not None and probe.size_bytes > max_file_bytes:
        raise MediaError(FailureReason.TOO_LARGE_FILE)
    if not probe.has_video:
        raise MediaError(FailureReason.NO_VIDEO_STREAM)
    if probe.width < 2 or probe.height < 2:
        raise MediaError(FailureReason.UNSUPPORTED_MEDIA, detail="no usable picture size")
    if min(probe.width, probe.height) < MIN_PICTURE_SIDE:
        raise MediaError(FailureReason.TOO_SMALL_DIMENSIONS)
    if probe.duration_seconds is not None and probe.duration_seconds > max_duration:
        raise MediaError(FailureReason.TOO_LONG)
    if probe.coded_width * probe.coded_height > max_pixels:
        raise MediaError(FailureReason.TOO_LARGE_DIMENSIONS)


#: Audio that runs past the video's end by at most this much is cut with it (encoder
#: padding, muxing slack); longer, the video's last picture is held until the audio ends.
AUDIO_OVERHANG_TOLERANCE_SECONDS = 0.1


def video_hold_seconds(probe: Probe) -> float:
    """How long to hold the last video frame so that the audio plays to its end: a song
    uploaded with one still picture, a recording whose camera stopped before its
    microphone. 0.0 when nothing would be lost."""
    if not probe.has_audio or probe.duration_seconds is None or probe.video_seconds is None:
        return 0.0
    overhang = probe.duration_seconds - probe.video_seconds
    return overhang if overhang > AUDIO_OVERHANG_TOLERANCE_SECONDS else 0.0


_COMMON_RATES: tuple[Fraction, ...] = (
    Fraction(24000, 1001),
    Fraction(24),
    Fraction(25),
    Fraction(30000, 1001),
    Fraction(30),
    Fraction(48),
    Fraction(50),
    Fraction(60000, 1001),
    Fraction(60),
)


def target_frame_rate(probe: Probe, max_rate: float = 60.0, default: int = 30) -> Fraction:
    """The constant output frame rate: the source's average rate, halved until it is at
    most ``max_rate``, snapped to a broadcast rate within 1 %, else rounded to an integer."""
    rate = probe.frame_rate
    if not math.isfinite(rate) or rate <= 0:
        return Fraction(default)
    while rate > max_rate:
        rate /= 2
    nearest = min(_COMMON_RATES, key=lambda common: abs(rate - float(common)))
    if abs(rate - float(nearest)) <= float(nearest) * 0.01:
        return nearest
    return Fraction(max(1, round(rate)))


# H.264 level 1b (limits of the High profile: 99 macroblocks a frame, 1485 a second,
# 160 kb/s, a 437.5 kbit buffer). x264 labels a tiny rendition 1b when it fits, and
# Chromium's MediaCapabilities reports level_idc 9 as unsupported, so dash.js finds "no
# streams to play". Level 1.1's limits all exceed 1b's, so labelling such a stream 1.1
# is conformant.
_LEVEL_1B_MACROBLOCKS = 99
_LEVEL_1B_MACROBLOCKS_PER_SECOND = 1485
_LEVEL_1B_KBPS = 160
_LEVEL_1B_BUFFER_KBIT = 437.5


def h264_level_floor(spec: RenditionSpec, rate: Fraction) -> str | None:
    """The H.264 level to impose on ``spec`` at ``rate`` fps, or None to let x264 choose:
    "1.1" where x264 could otherwise choose level 1b, which browsers refuse."""
    macroblocks = math.ceil(spec.width / 16) * math.ceil(spec.height / 16)
    could_be_1b = (
        macroblocks <= _LEVEL_1B_MACROBLOCKS
        and macroblocks * rate <= _LEVEL_1B_MACROBLOCKS_PER_SECOND
        and spec.maxrate_kbps <= _LEVEL_1B_KBPS
        and spec.bufsize_kbps <= _LEVEL_1B_BUFFER_KBIT
    )
    return "1.1" if could_be_1b else None


@dataclass(frozen=True)
class EncodeProgress:
    """Progress of one encode. With one ffmpeg pass every rendition advances together, so
    each entry of ``renditions`` carries the overall percent."""

    out_time_seconds: float
    percent: float
    speed: float | None
    eta_seconds: float | None
    renditions: tuple[tuple[str, float], ...] = ()
    finished: bool = False


def _parse_float(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        value = float(raw.strip().rstrip("x"))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def parse_clock(raw: str | None) -> float | None:
    """``HH:MM:SS.micro`` (possibly negative) to seconds."""
    if raw is None:
        return None
    text = raw.strip()
    sign = -1.0 if text.startswith("-") else 1.0
    parts = text.lstrip("-").split(":")
    if len(parts) != 3:
        return None
    try:
        hours, minutes, seconds = int(parts[0]), int(parts[1]), float(parts[2])
    except ValueError:
        return None
    return sign * (hours * 3600 + minutes * 60 + seconds)


def _out_time(lines: Mapping[str, str]) -> float:
    # ffmpeg writes microseconds into both out_time_us and (historically mis-named)
    # out_time_ms; both are "N/A" before the first packet.
    for key in ("out_time_us", "out_time_ms"):
        micros = _parse_float(lines.get(key))
        if micros is not None:
            return max(0.0, micros / 1_000_000)
    clock = parse_clock(lines.get("out_time"))
    return max(0.0, clock) if clock is not None else 0.0


#: The highest percent an encode reports before ffmpeg says it has ended.
UNFINISHED_PERCENT_CEILING = 99.0


def parse_progress_block(
    lines: Mapping[str, str],
    duration: float | None,
    rendition_names: Sequence[str] = (),
) -> EncodeProgress:
    """Turn one ``-progress`` key=value block into EncodeProgress.

    ``percent`` is out_time / duration clamped to [0, 99], and exactly 100 once ffmpeg
    reports ``progress=end``: an encode still running is never done, even when it has
    passed the duration the container claimed (an MPEG-TS whose clock restarts mid-file).
    Past that point the ETA is unknown. With an unknown duration percent stays 0 until the
    end.
    """
    finished = lines.get("progress", "").strip() == "end"
    out_time = _out_time(lines)
    speed = _parse_float(lines.get("speed"))
    if speed is not None and speed <= 0:
        speed = None
    percent: float
    eta: float | None
    if finished:
        percent, eta = 100.0, 0.0
    elif duration is None or duration <= 0:
        percent, eta = 0.0, None
    else:
        percent = min(UNFINISHED_PERCENT_CEILING, max(0.0, 100.0 * out_time / duration))
        eta = None
        if speed is not None and out_time <= duration:
            eta = (duration - out_time) / speed
    return EncodeProgress(
        out_time_seconds=out_time,
        percent=percent,
        speed=speed,
        eta_seconds=eta,
        renditions=tuple((name, percent) for name in rendition_names),
        finished=finished,
    )


@dataclass(frozen=True)
class OutputFile:
    """One produced file; ``path`` is relative to the output directory."""

    path: Path
    size_bytes: int
    sha256: str


@dataclass(frozen=True)
class RenditionOutput:
    """A video Representation in the manifest and the files that belong to it."""

    name: str
    width: int
    height: int
    bandwidth_bps: int
    representation_id: str
    files: tuple[Path, ...]


@dataclass(frozen=True)
class AudioOutput:
    """The audio Representation in the manifest and the files that belong to it."""

    representation_id: str
    bandwidth_bps: int
    files: tuple[Path, ...]


@dataclass(frozen=True)
class DashOutput:
    """The result of a successful transcode into an MPEG-DASH package.

    ``cpu_seconds`` is the user+system CPU time of the encoder process itself (None when
    the encoder did not report it); ``wall_seconds`` is elapsed time around the run.
    ``duration_seconds`` is how long the package plays, as its manifest says: measured on
    the encoded media, where the probe's duration is what the container claimed.
    """

    manifest: Path
    files: tuple[OutputFile, ...]
    renditions: tuple[RenditionOutput, ...]
    audio: AudioOutput | None
    cpu_seconds: float | None
    wall_seconds: float
    duration_seconds: float | None = None

    @property
    def total_bytes(self) -> int:
        return sum(f.size_bytes for f in self.files)


@dataclass(frozen=True)
class PartOutput:
    """One encoded part of a chunked job (a range of the video in every rendition, or the
    whole audio): its own manifest, segments numbered and files named as in the joined
    package, and every file (``OutputFile.path`` relative to the part's directory)."""

    manifest: str
    files: tuple[OutputFile, ...]
    cpu_seconds: float | None
    wall_seconds: float
    encoded_seconds: float

    @property
    def total_bytes(self) -> int:
        return sum(f.size_bytes for f in self.files)
