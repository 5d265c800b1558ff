"""What ffprobe says about a source, as a ``Probe``: streams, display size, timing.

``probe_from_json`` reads ``ffprobe -print_format json -show_streams -show_format``;
``keyframes_from_json`` reads the keyframe times the chunk planner asks for
(``-show_entries packet=pts_time,flags``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from tritontube.domain.media import FailureReason, MediaError, Probe, parse_clock

__all__ = ["as_int", "keyframes_from_json", "probe_from_json", "start_from_json"]


def _ratio(raw: Any) -> float | None:
    if not isinstance(raw, str) or not raw:
        return None
    num, sep, den = raw.partition("/") if "/" in raw else raw.partition(":")
    try:
        value = float(num) / float(den) if sep else float(num)
    except (ValueError, ZeroDivisionError):
        return None
    return value if math.isfinite(value) and value > 0 else None


def as_int(raw: Any, default: int = 0) -> int:
    try:
        return int(raw)
    except (TypeError, ValueError):
        return default


def _float(raw: Any) -> float | None:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value >= 0 else None


def _degrees(raw: Any) -> int | None:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return round(value) % 360 if math.isfinite(value) else None


def _rotation(stream: Mapping[str, Any]) -> int:
    """Display-matrix rotation (ffmpeg >= 5), else the legacy ``rotate`` tag, in [0, 360)."""
    for side in stream.get("side_data_list") or ():
        if isinstance(side, dict) and (degrees := _degrees(side.get("rotation"))) is not None:
            return degrees
    return _degrees((stream.get("tags") or {}).get("rotate")) or 0


def _bit_depth(stream: Mapping[str, Any]) -> int:
    raw = as_int(stream.get("bits_per_raw_sample"))
    if raw > 0:
        return raw
    match = re.search(r"p(9|10|12|14|16)(le|be)$", str(stream.get("pix_fmt") or ""))
    return int(match.group(1)) if match else 8


def _pick(streams: Sequence[Mapping[str, Any]], kind: str) -> Mapping[str, Any] | None:
    """The default stream of a kind, else the first; cover art is not video."""
    candidates = [
        s
        for s in streams
        if s.get("codec_type") == kind and not (s.get("disposition") or {}).get("attached_pic")
    ]
    for stream in candidates:
        if (stream.get("disposition") or {}).get("default"):
            return stream
    return candidates[0] if candidates else None


def _display_size(video: Mapping[str, Any], rotation: int) -> tuple[int, int, int, int]:
    coded_w, coded_h = as_int(video.get("width")), as_int(video.get("height"))
    sar = _ratio(video.get("sample_aspect_ratio")) or 1.0
    display_w, display_h = round(coded_w * sar), coded_h
    if rotation in (90, 270):
        display_w, display_h = display_h, display_w
    return display_w, display_h, coded_w, coded_h


def _span(stream: Mapping[str, Any]) -> tuple[float, float] | None:
    """(first, last) timestamp of a stream in seconds on the container's clock, if the
    container says: ffprobe's duration, else the ``DURATION`` tag Matroska/WebM carry."""
    tags = stream.get("tags") or {}
    length = _float(stream.get("duration")) or parse_clock(tags.get("DURATION"))
    if not length or length <= 0:
        return None
    try:
        start = float(str(stream.get("start_time")))  # may be negative (codec delay)
    except (TypeError, ValueError):
        start = 0.0
    start = start if math.isfinite(start) else 0.0
    return start, start + length


def _timing(
    video: Mapping[str, Any], audio: Mapping[str, Any] | None, fmt: Mapping[str, Any]
) -> tuple[float | None, float | None]:
    """(duration, video end), both from the first played sample: the streams' own spans,
    else the container's duration. The container's duration counts a late first timestamp
    (an MP4 that starts at 10 s) and the longest stream, even one we do not play."""
    video_span = _span(video)
    if video_span is None:
        return _float(fmt.get("duration")), None
    spans = [video_span, *([span] if audio and (span := _span(audio)) else [])]
    zero = min(first for first, _ in spans)
    # ffprobe prints microseconds: keep that precision, not the float subtraction's noise.
    return round(max(last for _, last in spans) - zero, 6), round(video_span[1] - zero, 6)


def probe_from_json(data: Mapping[str, Any], size_bytes: int) -> Probe:
    streams = [s for s in data.get("streams") or () if isinstance(s, dict)]
    fmt = data.get("format") or {}
    if not streams:
        raise MediaError(FailureReason.UNSUPPORTED_MEDIA, detail="ffprobe found no streams")
    video, audio = _pick(streams, "video"), _pick(streams, "audio")
    if video is None:
        raise MediaError(FailureReason.NO_VIDEO_STREAM)
    rotation = _rotation(video)
    width, height, coded_w, coded_h = _display_size(video, rotation)
    avg = _ratio(video.get("avg_frame_rate"))
    real = _ratio(video.get("r_frame_rate"))
    frame_rate = avg or real or 0.0
    duration, video_seconds = _timing(video, audio, fmt)
    return Probe(
        width=width,
        height=height,
        coded_width=coded_w,
        coded_height=coded_h,
        rotation=rotation,
        duration_seconds=duration,
        has_video=True,
        has_audio=audio is not None,
        video_codec=video.get("codec_name"),
        audio_codec=audio.get("codec_name") if audio else None,
        pix_fmt=video.get("pix_fmt"),
        frame_rate=frame_rate,
        variable_frame_rate=bool(avg and real and abs(avg - real) > 0.01 * real),
        bit_depth=_bit_depth(video),
        format_name=str(fmt.get("format_name") or ""),
        size_bytes=as_int(fmt.get("size"), size_bytes) or size_bytes,
        video_stream_index=as_int(video.get("index")),
        audio_stream_index=as_int(audio.get("index")) if audio else None,
        color_transfer=video.get("color_transfer"),
        video_seconds=video_seconds,
    )


def start_from_json(data: Mapping[str, Any]) -> float:
    """The container's start time (``-show_entries format=start_time``); 0 if unknown.
    ffmpeg's ``-ss`` and its output clock count from there."""
    fmt = data.get("format") or {}
    try:
        value = float(str(fmt.get("start_time")))
    except (TypeError, ValueError):
        return 0.0
    return value if math.isfinite(value) else 0.0


def keyframes_from_json(data: Mapping[str, Any], start: float) -> tuple[float, ...]:
    """The times of the keyframe packets ffprobe listed, on the output clock (less the
    container's ``start``), sorted and without duplicates."""
    times: set[float] = set()
    for packet in data.get("packets") or ():
        if not isinstance(packet, dict) or "K" not in str(packet.get("flags") or ""):
            continue
        try:
            value = float(str(packet.get("pts_time")))
        except (TypeError, ValueError):
            continue
        if math.isfinite(value):
            times.add(round(value - start, 6))
    return tuple(sorted(times))
