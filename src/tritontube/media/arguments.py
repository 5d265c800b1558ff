"""ffmpeg command lines: inputs, the filter graph, encoder and DASH muxer options.

Pure functions of a probe and a plan (no process, no file): the adapter in
``tritontube.media.ffmpeg`` puts them together, and the unit tests read them as text.
The one-pass encode and the chunked encode (``tritontube.domain.chunks``) share every
setting that shapes the picture or the bitstream, so that a video cut into chunks plays
like one encoded in one piece: the same filters, the same x264 options, keyframes on the
same grid.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

from tritontube.domain.media import (
    Probe,
    RenditionSpec,
    h264_level_floor,
    rendition_sars,
    scale_sources,
    video_hold_seconds,
)
from tritontube.media.port import RemoteSource, Source

__all__ = [
    "BT709_TAGS",
    "DEFAULT_INPUT_FORMATS",
    "INIT_SEGMENT_TEMPLATE",
    "MANIFEST_NAME",
    "MEDIA_SEGMENT_TEMPLATE",
    "THUMBNAIL_FILTER",
    "audio_output_args",
    "audio_selector",
    "colour_args",
    "dash_args",
    "filter_graph",
    "hdr_to_sdr_filter",
    "input_args",
    "rate_text",
    "to_sdr",
    "video_output_args",
    "video_selector",
]

MANIFEST_NAME = "manifest.mpd"
INIT_SEGMENT_TEMPLATE = "init-$RepresentationID$.m4s"
MEDIA_SEGMENT_TEMPLATE = "chunk-$RepresentationID$-$Number%05d$.m4s"

#: Demuxers we accept for uploads (names as ffmpeg spells them; a demuxer whose name is a
#: list, like "mov,mp4,m4a,3gp,3g2,mj2", matches on any element). Audio-only formats are
#: listed so that an audio upload fails as NO_VIDEO_STREAM rather than UNSUPPORTED_MEDIA.
DEFAULT_INPUT_FORMATS: tuple[str, ...] = (
    "mov",
    "matroska",
    "avi",
    "flv",
    "mpegts",
    "mpeg",
    "mpegvideo",
    "asf",
    "ogg",
    "mxf",
    "dv",
    "m4v",
    "h264",
    "hevc",
    "gif",
    "wav",
    "mp3",
    "aac",
    "flac",
)

_THUMBNAIL_MAX_WIDTH = 640
# Display-aspect scaling (``dar`` includes the SAR, which ``h=-2`` would ignore), even sizes.
THUMBNAIL_FILTER = (
    f"scale=w='max(2,min({_THUMBNAIL_MAX_WIDTH},trunc(iw*sar/2)*2))'"
    ":h='max(2,round(ow/dar/2)*2)',setsar=1"
)
# HDR (PQ or HLG, BT.2020) to SDR BT.709, once before the split: linear light at a 100 nit
# reference white, Hable's curve in float RGB (no desaturation), back to BT.709 4:2:0.
# Browsers would otherwise get 8-bit pictures tagged PQ/HLG, which most displays render
# washed out or wrongly.
_HDR_TO_SDR = (
    "zscale={size}tin={transfer}:pin=bt2020:min=bt2020nc:t=linear:npl=100,format=gbrpf32le,"
    "zscale=p=bt709,tonemap=tonemap=hable:desat=0,zscale=t=bt709:m=bt709:r=tv,format=yuv420p"
)
#: Output options tagging tone-mapped video as BT.709 (ffmpeg would otherwise copy the
#: source's BT.2020/PQ/HLG tags onto the SDR pictures).
BT709_TAGS = ("-color_primaries:v", "bt709", "-color_trc:v", "bt709", "-colorspace:v", "bt709")
#: Reconnect to the object store on network errors, wait at most 30 s for any read.
_HTTP_INPUT_OPTIONS = (
    "-reconnect", "1",
    "-reconnect_on_network_error", "1",
    "-reconnect_delay_max", "8",
    "-rw_timeout", "30000000",
)  # fmt: skip


# --------------------------------------------------------------------------- inputs


def input_args(
    source: Source, formats: str, seek: float = 0.0, *, accurate_seek: bool = True
) -> list[str]:
    """Input options and ``-i``: a local file, or the object store over HTTP(S) with
    reconnects; only the demuxers in ``formats`` (comma-separated), and no protocol but
    the one needed.

    ``seek`` starts reading there. With ``accurate_seek`` off, ffmpeg keeps the frames
    decoded between the keyframe it seeks to and ``seek``, with negative timestamps: the
    chunked encode selects its frames itself (``filter_graph``'s ``frames``)."""
    if isinstance(source, RemoteSource):
        args = ["-protocol_whitelist", "http,https,tcp,tls", *_HTTP_INPUT_OPTIONS]
        url = source.url
    else:
        args = ["-protocol_whitelist", "file"]
        url = f"file:{source}"
    args += ["-format_whitelist", formats]
    if seek > 0:  # No "-ss 0": a stream without timestamps (raw H.264) loses every frame.
        if not accurate_seek:
            args.append("-noaccurate_seek")
        args += ["-ss", f"{seek:.6f}"]
    return [*args, "-i", url]


def rate_text(rate: Fraction) -> str:
    return f"{rate.numerator}/{rate.denominator}"


def video_selector(probe: Probe) -> str:
    """The input video stream: the probed index (skips cover art), else the first."""
    index = probe.video_stream_index
    return f"0:{index}" if index is not None else "0:v:0"


def audio_selector(probe: Probe) -> str:
    index = probe.audio_stream_index
    return f"0:{index}" if index is not None else "0:a:0"


# --------------------------------------------------------------------------- filters


def hdr_to_sdr_filter(transfer: str, size: tuple[int, int] | None = None) -> str:
    """The filters tone-mapping BT.2020 HDR with ``transfer`` (ffmpeg's name: "smpte2084"
    for PQ, "arib-std-b67" for HLG) to SDR BT.709, 8-bit 4:2:0; scaled to ``size`` (width,
    height) on the way to linear light when given."""
    resize = f"w={size[0]}:h={size[1]}:f=bicubic:" if size else ""
    return _HDR_TO_SDR.format(transfer=transfer, size=resize)


def to_sdr(probe: Probe, size: tuple[int, int] | None = None) -> list[str]:
    """The HDR-to-SDR filters for an HDR source (scaled to ``size``); none for SDR."""
    transfer = probe.color_transfer
    return [hdr_to_sdr_filter(transfer, size)] if transfer and probe.is_hdr else []


def filter_graph(
    video: str,
    rate: Fraction,
    plan: Sequence[RenditionSpec],
    probe: Probe,
    *,
    chunk: bool = False,
    frame_count: int | None = None,
    hold: bool = True,
) -> str:
    """Deinterlace flagged frames, constant frame rate, HDR tone-mapped to SDR; then each
    rendition scaled (from the next larger rendition's picture, see ``scale_sources``) and
    made 8-bit 4:2:0 (what browsers decode) with (near-)square pixels: see
    ``rendition_sars`` for why a rung may carry a SAR like 1280:1281.

    ``chunk``: one chunk of a longer source, the frames of the constant-rate timeline from
    the input's time 0 (the chunk's start, where ffmpeg was asked to seek) on,
    ``frame_count`` of them (None: to the end). The rate conversion also sees the frames
    decoded before that point (``input_args`` without an accurate seek), so it picks the
    same picture for each output frame as an encode of the whole source would; a gap
    before the first decoded frame is filled with it, so a chunk starts exactly at its
    first frame. ``hold`` off: no picture held for audio that outlasts the video (every
    chunk but the last).
    """
    sources = scale_sources(plan)

    def chain(source: str, filters: list[str], outputs: list[str]) -> str:
        split = [f"split={len(outputs)}"] if len(outputs) > 1 else []
        return f"[{source}]" + ",".join([*filters, *split]) + "".join(f"[{o}]" for o in outputs)

    def scaled_from(source: int | None) -> list[str]:
        return [f"in{i}" for i, s in enumerate(sources) if s == source]

    head = ["bwdif=mode=send_frame:deint=interlaced"]
    if not chunk:
        head.append(f"fps={rate_text(rate)}")
    else:
        head.append(f"fps={rate_text(rate)}:start_time=0")
        end = "" if frame_count is None else f":end_pts={frame_count}"
        head.append(f"trim=start_pts=0{end}")
    if hold and (seconds := video_hold_seconds(probe)):
        head.append(f"tpad=stop_mode=clone:stop_duration={seconds:.3f}")
    # Tone-map the largest rendition's picture, not a larger source's: zscale scales it on
    # the way to linear light, and the rendition's own scale is then a pass-through. On 5 s
    # of 4K HLG: 6.5 s instead of 18.7 s, SSIM 0.989 against scaling in linear light.
    top = [plan[i] for i, source in enumerate(sources) if source is None]
    shrink = len(top) == 1 and probe.coded_width * probe.coded_height > top[0].pixels
    head += to_sdr(probe, (top[0].width, top[0].height) if shrink else None)
    chains = [chain(video, head, scaled_from(None))]
    for i, (spec, sar) in enumerate(zip(plan, rendition_sars(plan), strict=True)):
        scale = f"scale=w={spec.width}:h={spec.height}:flags=bicubic"
        sar_text = f"r={sar.numerator}/{sar.denominator}:max={max(sar.numerator, sar.denominator)}"
        chains += [
            chain(f"in{i}", [scale], [f"out{i}", *scaled_from(i)]),
            chain(f"out{i}", [f"setsar={sar_text}", "format=yuv420p"], [f"v{i}"]),
        ]
    return ";".join(chains)


# --------------------------------------------------------------------------- encoders


def colour_args(probe: Probe) -> list[str]:
    """Tone-mapped video is BT.709; say so in the H.264 stream."""
    return list(BT709_TAGS) if probe.is_hdr else []


def video_output_args(
    plan: Sequence[RenditionSpec],
    rate: Fraction,
    segment_seconds: int,
    preset: str,
    keyframes: str | None = None,
) -> list[str]:
    """libx264 for every rendition, keyframes forced where ``keyframes`` says (an ffmpeg
    ``-force_key_frames`` value; default: the first frame at or after every multiple of
    ``segment_seconds``)."""
    frames_per_segment = max(1, math.ceil(rate * segment_seconds))
    args = [
        "-c:v",
        "libx264",
        "-preset",
        preset,
        "-profile:v",
        "high",
        # Keyframes on the segment grid in every rendition (the split makes timestamps
        # identical), none from scene cuts, and a GOP cap that never fires before them.
        "-force_key_frames",
        keyframes or f"expr:gte(t,n_forced*{segment_seconds})",
        "-g",
        str(2 * frames_per_segment),
        "-keyint_min",
        str(frames_per_segment),
        "-sc_threshold",
        "0",
        "-fps_mode",
        "cfr",
    ]
    for i, spec in enumerate(plan):
        args += ["-map", f"[v{i}]"]
        args += [f"-b:v:{i}", f"{spec.video_bitrate_kbps}k"]
        args += [f"-maxrate:v:{i}", f"{spec.maxrate_kbps}k"]
        args += [f"-bufsize:v:{i}", f"{spec.bufsize_kbps}k"]
        if (level := h264_level_floor(spec, rate)) is not None:
            args += [f"-level:v:{i}", level]
    return args


def audio_output_args(probe: Probe, plan: Sequence[RenditionSpec]) -> list[str]:
    """One stereo 48 kHz AAC track at the highest audio bitrate of the plan (none without
    audio)."""
    if not probe.has_audio:
        return []
    kbps = max(spec.audio_bitrate_kbps for spec in plan)
    return [
        "-map",
        audio_selector(probe),
        "-c:a",
        "aac",
        "-b:a",
        f"{kbps}k",
        "-ac",
        "2",
        "-ar",
        "48000",
    ]


# --------------------------------------------------------------------------- muxer


def dash_args(
    manifest: Path, adaptation_sets: str, segment_seconds: float, *, extra: Sequence[str] = ()
) -> list[str]:
    """ffmpeg's DASH muxer: fragmented-MP4 segments named by ``INIT_SEGMENT_TEMPLATE`` and
    ``MEDIA_SEGMENT_TEMPLATE`` and a SegmentTimeline manifest at ``manifest``. ``extra``
    goes right before ``-f dash`` (output options such as a timestamp offset)."""
    return [
        "-max_muxing_queue_size",
        "4096",
        "-map_metadata",
        "-1",
        "-map_chapters",
        "-1",
        *extra,
        "-f",
        "dash",
        "-dash_segment_type",
        "mp4",
        "-seg_duration",
        f"{segment_seconds:g}",
        "-use_template",
        "1",
        "-use_timeline",
        "1",
        "-adaptation_sets",
        adaptation_sets,
        "-init_seg_name",
        INIT_SEGMENT_TEMPLATE,
        "-media_seg_name",
        MEDIA_SEGMENT_TEMPLATE,
        f"file:{manifest}",
    ]
