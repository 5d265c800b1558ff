"""FfmpegTranscoder: the Transcoder port over the ffmpeg and ffprobe command-line tools.

Every tool runs through ``asyncio.create_subprocess_exec`` (argv list, no shell) in its
own session so that a timeout can kill the whole process group. A source is either a local
file, opened as a ``file:`` URL with ``-protocol_whitelist file``, or an object streamed from
the store through a pre-signed GET URL with ``-protocol_whitelist http,https,tcp,tls`` (range
requests, so MP4s with the index at the end work; reconnects on network errors). Either way
a demuxer whitelist applies: uploads are untrusted, and playlist-style formats (HLS, concat,
...) would otherwise let a crafted upload make ffmpeg read other local files or the network.
Signed URLs are secrets while valid: error details carry them without their query string.

Decisions worth knowing:

* Memory ceiling: RLIMIT_AS is applied with ``resource.prlimit(pid, ...)`` on the child
  right after it is spawned. CPython spawns with vfork/exec when no ``preexec_fn`` is
  given, so the child is already ffmpeg (or ``setpriv``, below, which keeps its limits
  when it runs ffmpeg) when the limit lands and every later allocation counts against it.
  ``preexec_fn`` is avoided on purpose: it is unsafe in a process with threads (Faust,
  aiokafka and boto3 all start some).
* A child dies with its worker: it is started through util-linux's ``setpriv --pdeathsig
  KILL`` (Linux; on Debian util-linux is an essential package), so the kernel kills it
  when the worker dies, even by ``kill -9`` or the OOM killer. ffmpeg ignores SIGPIPE
  and the write errors of ``-progress``, so without it an orphaned encode ran to its end,
  competing for the CPU with the job's redelivery. Without ``setpriv`` (another OS) the
  child is started directly.
* CPU time: ffmpeg's own ``-benchmark`` report (``getrusage(RUSAGE_SELF)`` in the child:
  user + system time of all of its threads). ``RUSAGE_CHILDREN`` deltas in the parent
  would mix in every other child reaped meanwhile (concurrent encodes, other tools), and
  asyncio's child watcher reaps the child itself, so ``os.wait4`` is not available.
* Failure mapping: an input ffprobe cannot recognise at all ("Invalid data found when
  processing input") is UNSUPPORTED_MEDIA; a recognised container that is structurally
  broken ("moov atom not found", decode errors) is CORRUPT_MEDIA. A text file renamed
  ``.mp4`` is therefore CORRUPT_MEDIA (ffprobe picks the MP4 demuxer from the
  extension, then finds no moov atom) while the same bytes without an extension, or
  streamed from the store (the URL ends in its signature), are UNSUPPORTED_MEDIA.
  Audio-only input is NO_VIDEO_STREAM, raised by ``probe``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import os
import re
import resource
import shutil
import signal
import time
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from tritontube.domain.media import (
    AudioOutput,
    DashOutput,
    EncodeProgress,
    FailureReason,
    MediaError,
    OutputFile,
    Probe,
    RenditionOutput,
    RenditionSpec,
    h264_level_floor,
    parse_clock,
    parse_progress_block,
    rendition_sars,
    scale_sources,
    target_frame_rate,
    video_hold_seconds,
)
from tritontube.domain.transcode import exact_duration, presentation_seconds
from tritontube.media.port import ProgressCallback, RemoteSource, Source

__all__ = [
    "BT709_TAGS",
    "DEFAULT_INPUT_FORMATS",
    "MANIFEST_NAME",
    "FfmpegTranscoder",
    "hdr_to_sdr_filter",
]

log = logging.getLogger(__name__)

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

_GIB = 1024**3
_SETPRIV = shutil.which("setpriv")
_STDERR_TAIL_BYTES = 16 * 1024
_PROBE_STDOUT_LIMIT = 8 * 1024 * 1024
# ffprobe prints each tag on one line, and an upload's tags are as long as it likes (a
# 100 kB comment broke asyncio's 64 kB default): whatever fits the probe's output budget.
_STDOUT_LINE_LIMIT = _PROBE_STDOUT_LIMIT
_PROGRESS_INTERVAL_SECONDS = 1.0
_THUMBNAIL_MAX_WIDTH = 640
_THUMBNAIL_MAX_OFFSET_SECONDS = 3.0
# Display-aspect scaling (``dar`` includes the SAR, which ``h=-2`` would ignore), even sizes.
_THUMBNAIL_FILTER = (
    f"scale=w='max(2,min({_THUMBNAIL_MAX_WIDTH},trunc(iw*sar/2)*2))'"
    ":h='max(2,round(ow/dar/2)*2)',setsar=1"
)
_MPD_NS = "{urn:mpeg:dash:schema:mpd:2011}"
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
_BENCH_RE = re.compile(r"bench: utime=([0-9.]+)s stime=([0-9.]+)s")

LineHandler = Callable[[str], Awaitable[None]]


# --------------------------------------------------------------------------- processes


class _Tail:
    """The last ``limit`` bytes written to it: bounded memory for chatty stderr."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._buf = bytearray()

    def feed(self, chunk: bytes) -> None:
        self._buf += chunk
        if len(self._buf) > self._limit:
            del self._buf[: len(self._buf) - self._limit]

    def text(self) -> str:
        return self._buf.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class _Completed:
    returncode: int
    stderr_tail: str
    wall_seconds: float


async def _pump_tail(stream: asyncio.StreamReader, tail: _Tail) -> None:
    while chunk := await stream.read(4096):
        tail.feed(chunk)


async def _pump_lines(stream: asyncio.StreamReader, on_line: LineHandler | None) -> None:
    while True:
        try:
            raw = await stream.readline()
        except ValueError:  # a line longer than the stream's limit (_STDOUT_LINE_LIMIT)
            raise MediaError(
                FailureReason.UNSUPPORTED_MEDIA,
                detail=f"a line of tool output is longer than {_STDOUT_LINE_LIMIT} bytes",
            ) from None
        if not raw:
            return
        if on_line is not None:
            await on_line(raw.decode("utf-8", errors="replace").rstrip("\r\n"))


def _lower_priority(pid: int, niceness: int) -> None:
    """Encodes yield the CPU to the event path (agents, API) on a shared machine.

    Set right after spawn, before ffmpeg starts its encoder threads (which inherit it)."""
    if niceness <= 0:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.setpriority(os.PRIO_PROCESS, pid, niceness)


def _limit_memory(pid: int, limit_bytes: int | None) -> None:
    if limit_bytes is None:
        return
    with contextlib.suppress(ProcessLookupError):
        resource.prlimit(pid, resource.RLIMIT_AS, (limit_bytes, limit_bytes))


async def _kill_group(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    await proc.wait()


def _dying_with_parent(argv: Sequence[str]) -> list[str]:
    if _SETPRIV is None:
        return list(argv)
    # A missing tool must stay a FileNotFoundError (the agent retries it: a broken
    # deployment, not a bad upload), not setpriv's exit status 127.
    if shutil.which(argv[0]) is None:
        raise FileNotFoundError(f"{argv[0]} is not an executable on PATH")
    return [_SETPRIV, "--pdeathsig", "KILL", "--", *argv]


async def _run(
    argv: Sequence[str],
    *,
    timeout: float | Callable[[], float],
    memory_limit_bytes: int | None,
    on_stdout_line: LineHandler | None = None,
    niceness: int = 0,
) -> _Completed:
    """Run argv to completion; kill its process group on timeout, error or cancellation.

    Raises MediaError(TRANSCODE_TIMEOUT) when ``timeout`` seconds of wall clock pass. A
    callable ``timeout`` is read again after every stdout line: the budget of an encode
    grows with what ffmpeg reports it has encoded.
    """
    budget = timeout if callable(timeout) else (lambda: timeout)
    started = time.monotonic()
    started_on_loop = asyncio.get_running_loop().time()
    proc = await asyncio.create_subprocess_exec(
        *_dying_with_parent(argv),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
        limit=_STDOUT_LINE_LIMIT,
    )
    _limit_memory(proc.pid, memory_limit_bytes)
    _lower_priority(proc.pid, niceness)
    if proc.stdout is None or proc.stderr is None:  # pragma: no cover - PIPE always sets them
        raise RuntimeError("subprocess pipes were not created")
    tail = _Tail(_STDERR_TAIL_BYTES)
    stderr_task = asyncio.create_task(_pump_tail(proc.stderr, tail))
    deadline = asyncio.timeout_at(started_on_loop + budget())
    try:
        async with deadline:

            async def on_line(line: str) -> None:
                if on_stdout_line is not None:
                    await on_stdout_line(line)
                if not deadline.expired():
                    deadline.reschedule(started_on_loop + budget())

            await _pump_lines(proc.stdout, on_line)
            await proc.wait()
            # Shielded: a timeout here must not cancel the reader the finally awaits.
            await asyncio.shield(stderr_task)
    except TimeoutError:
        if not deadline.expired():  # raised by on_stdout_line (a send), not our budget
            raise
        log.warning(
            "%s timed out after %.1f s; killing process group %s",
            argv[0],
            time.monotonic() - started,
            proc.pid,
        )
        await _kill_group(proc)
        raise MediaError(
            FailureReason.TRANSCODE_TIMEOUT, detail=_error_lines(tail.text())
        ) from None
    finally:
        if proc.returncode is None:
            await _kill_group(proc)
        await stderr_task
    returncode = proc.returncode
    if returncode is None:  # pragma: no cover - wait() above always sets it
        raise RuntimeError("process has no return code after wait()")
    return _Completed(returncode, tail.text(), time.monotonic() - started)


# --------------------------------------------------------------------------- failure mapping

_UNSUPPORTED_MARKERS = (
    "format not on whitelist",
    "protocol not on whitelist",
    "decoder not found",
    "unknown decoder",
    "unsupported codec",
    "no decoder for",
)
_CORRUPT_MARKERS = (
    "moov atom not found",
    "invalid nal unit",
    "error while decoding",
    "non-existing pps",
    "corrupt",
    "truncat",
    "partial file",
    "ebml header parsing failed",
)
_TRANSIENT_MARKERS = (
    "received signal",
    "no space left on device",
    # Streaming from the object store: it may be restarting, or the network failing.
    "connection refused",
    "connection reset",
    "timed out",
    "network is unreachable",
    "input/output error",
    "server returned 5",
    "server returned 403",  # an expired signature: a new attempt signs a new URL
)
#: Reconnect to the object store on network errors, wait at most 30 s for any read.
_HTTP_INPUT_OPTIONS = (
    "-reconnect", "1",
    "-reconnect_on_network_error", "1",
    "-reconnect_delay_max", "8",
    "-rw_timeout", "30000000",
)  # fmt: skip
_SIGNED_QUERY = re.compile(r"(https?://[^\s?]+)\?\S*")


def _error_lines(stderr: str, keep: int = 20) -> str:
    """The most useful part of a stderr tail: error lines if any, else the last lines, with
    the signatures of pre-signed URLs cut off."""
    lines = [_SIGNED_QUERY.sub(r"\1?…", line) for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(("[error]", "[fatal]", "[panic]"))]
    return "\n".join((errors or lines)[-keep:])


def _classify(stderr: str, default: FailureReason) -> MediaError:
    text = stderr.lower()
    detail = _error_lines(stderr)
    if any(marker in text for marker in _TRANSIENT_MARKERS):
        return MediaError(FailureReason.TRANSCODE_FAILED, transient=True, detail=detail)
    if "server returned 404" in text:  # deleted from the store while queued
        return MediaError(FailureReason.SOURCE_MISSING, detail=detail)
    if any(marker in text for marker in _UNSUPPORTED_MARKERS):
        return MediaError(FailureReason.UNSUPPORTED_MEDIA, detail=detail)
    if any(marker in text for marker in _CORRUPT_MARKERS):
        return MediaError(FailureReason.CORRUPT_MEDIA, detail=detail)
    if "invalid data found when processing input" in text:
        return MediaError(FailureReason.UNSUPPORTED_MEDIA, detail=detail)
    return MediaError(default, detail=detail)


def _failure(done: _Completed, default: FailureReason) -> MediaError:
    if done.returncode < 0:
        signum = -done.returncode
        return MediaError(
            FailureReason.TRANSCODE_FAILED,
            f"The media tool was stopped by signal {signum}; the job can be retried.",
            transient=True,
            detail=_error_lines(done.stderr_tail),
        )
    return _classify(done.stderr_tail, default)


def _cpu_seconds(stderr: str) -> float | None:
    matches = _BENCH_RE.findall(stderr)
    if not matches:
        return None
    utime, stime = matches[-1]
    return float(utime) + float(stime)


# --------------------------------------------------------------------------- ffprobe JSON


def _ratio(raw: Any) -> float | None:
    if not isinstance(raw, str) or not raw:
        return None
    num, sep, den = raw.partition("/") if "/" in raw else raw.partition(":")
    try:
        value = float(num) / float(den) if sep else float(num)
    except (ValueError, ZeroDivisionError):
        return None
    return value if math.isfinite(value) and value > 0 else None


def _int(raw: Any, default: int = 0) -> int:
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
    raw = _int(stream.get("bits_per_raw_sample"))
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
    coded_w, coded_h = _int(video.get("width")), _int(video.get("height"))
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


def _probe_from_json(data: Mapping[str, Any], size_bytes: int) -> Probe:
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
        size_bytes=_int(fmt.get("size"), size_bytes) or size_bytes,
        video_stream_index=_int(video.get("index")),
        audio_stream_index=_int(audio.get("index")) if audio else None,
        color_transfer=video.get("color_transfer"),
        video_seconds=video_seconds,
    )


# --------------------------------------------------------------------------- progress


class _ProgressForwarder:
    """Collects ``-progress`` key=value lines into blocks and forwards EncodeProgress at
    most once per interval, plus always the final block. ``encoded_seconds`` is the
    furthest point ffmpeg has reported, whether or not anyone is listening."""

    def __init__(
        self,
        callback: ProgressCallback | None,
        duration: float | None,
        names: Sequence[str],
        interval: float = _PROGRESS_INTERVAL_SECONDS,
    ) -> None:
        self._callback = callback
        self._duration = duration
        self._names = tuple(names)
        self._interval = interval
        self._block: dict[str, str] = {}
        self._last_sent = -math.inf
        self._last_percent = 0.0
        self.encoded_seconds = 0.0

    async def feed(self, line: str) -> None:
        key, sep, value = line.partition("=")
        if not sep:
            return
        self._block[key.strip()] = value.strip()
        if key.strip() != "progress":
            return
        progress = parse_progress_block(self._block, self._duration, self._names)
        self._block = {}
        self.encoded_seconds = max(self.encoded_seconds, progress.out_time_seconds)
        if self._callback is None:
            return
        now = time.monotonic()
        if progress.finished or now - self._last_sent >= self._interval:
            await self._send(progress, now)

    async def _send(self, progress: EncodeProgress, now: float) -> None:
        # ffmpeg's clock can step back a little between blocks (audio vs video); callers
        # are promised a non-decreasing percent.
        if progress.percent < self._last_percent:
            progress = EncodeProgress(
                progress.out_time_seconds,
                self._last_percent,
                progress.speed,
                progress.eta_seconds,
                tuple((name, self._last_percent) for name in self._names),
                progress.finished,
            )
        self._last_percent = progress.percent
        self._last_sent = now
        if self._callback is not None:
            await self._callback(progress)


# --------------------------------------------------------------------------- outputs


def _sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _files_of(representation_id: str, files: Sequence[OutputFile]) -> tuple[Path, ...]:
    init, chunk = f"init-{representation_id}.", f"chunk-{representation_id}-"
    mine = [f.path for f in files if f.path.name.startswith((init, chunk))]
    return tuple(sorted(mine, key=lambda p: (not p.name.startswith(init), p.name)))


def _write_exact_duration(manifest: Path) -> float | None:
    """Rewrite the manifest's duration (``exact_duration``) and return it in seconds."""
    text = exact_duration(manifest.read_text(encoding="utf-8"))
    manifest.write_text(text, encoding="utf-8")
    return presentation_seconds(text)


def _representations(manifest: Path) -> list[tuple[str, ET.Element]]:
    """(content type, Representation element) for every Representation in the MPD."""
    root = ET.parse(manifest).getroot()  # noqa: S314 - our own ffmpeg wrote this file
    found: list[tuple[str, ET.Element]] = []
    for adaptation in root.iter(f"{_MPD_NS}AdaptationSet"):
        for rep in adaptation.iter(f"{_MPD_NS}Representation"):
            mime = rep.get("mimeType") or adaptation.get("mimeType") or ""
            kind = adaptation.get("contentType") or mime.partition("/")[0]
            found.append((kind, rep))
    return found


def _collect_outputs(
    out_dir: Path, plan: Sequence[RenditionSpec]
) -> tuple[tuple[OutputFile, ...], tuple[RenditionOutput, ...], AudioOutput | None]:
    files = tuple(
        OutputFile(path.relative_to(out_dir), path.stat().st_size, _sha256(path))
        for path in sorted(out_dir.rglob("*"))
        if path.is_file()
    )
    reps = _representations(out_dir / MANIFEST_NAME)
    video_reps = [rep for kind, rep in reps if kind != "audio"]
    audio_reps = [rep for kind, rep in reps if kind == "audio"]
    if len(video_reps) != len(plan):
        raise MediaError(
            FailureReason.TRANSCODE_FAILED,
            detail=f"manifest has {len(video_reps)} video representations, planned {len(plan)}",
        )
    # Video representations are numbered in output-stream order, which is plan order.
    videos = tuple(
        _rendition_output(spec, rep, files) for spec, rep in zip(plan, video_reps, strict=True)
    )
    audio = None
    if audio_reps:
        rep_id = audio_reps[0].get("id", "")
        audio = AudioOutput(rep_id, _int(audio_reps[0].get("bandwidth")), _files_of(rep_id, files))
    return files, videos, audio


def _rendition_output(
    spec: RenditionSpec, rep: ET.Element, files: Sequence[OutputFile]
) -> RenditionOutput:
    rep_id = rep.get("id", "")
    width, height = _int(rep.get("width")), _int(rep.get("height"))
    if (width, height) != (spec.width, spec.height):
        raise MediaError(
            FailureReason.TRANSCODE_FAILED,
            detail=f"representation {rep_id} is {width}x{height}, planned {spec.width}x"
            f"{spec.height}",
        )
    bandwidth = _int(rep.get("bandwidth"))
    return RenditionOutput(spec.name, width, height, bandwidth, rep_id, _files_of(rep_id, files))


# --------------------------------------------------------------------------- argv builders


def _rate_text(rate: Fraction) -> str:
    return f"{rate.numerator}/{rate.denominator}"


def _video_selector(probe: Probe) -> str:
    """The input video stream: the probed index (skips cover art), else the first."""
    index = probe.video_stream_index
    return f"0:{index}" if index is not None else "0:v:0"


def _audio_selector(probe: Probe) -> str:
    index = probe.audio_stream_index
    return f"0:{index}" if index is not None else "0:a:0"


def hdr_to_sdr_filter(transfer: str, size: tuple[int, int] | None = None) -> str:
    """The filters tone-mapping BT.2020 HDR with ``transfer`` (ffmpeg's name: "smpte2084"
    for PQ, "arib-std-b67" for HLG) to SDR BT.709, 8-bit 4:2:0; scaled to ``size`` (width,
    height) on the way to linear light when given."""
    resize = f"w={size[0]}:h={size[1]}:f=bicubic:" if size else ""
    return _HDR_TO_SDR.format(transfer=transfer, size=resize)


def _to_sdr(probe: Probe, size: tuple[int, int] | None = None) -> list[str]:
    """The HDR-to-SDR filters for an HDR source (scaled to ``size``); none for SDR."""
    transfer = probe.color_transfer
    return [hdr_to_sdr_filter(transfer, size)] if transfer and probe.is_hdr else []


def _filter_graph(video: str, rate: Fraction, plan: Sequence[RenditionSpec], probe: Probe) -> str:
    """Deinterlace flagged frames, constant frame rate, HDR tone-mapped to SDR; then each
    rendition scaled (from the next larger rendition's picture, see ``scale_sources``) and
    made 8-bit 4:2:0 (what browsers decode) with (near-)square pixels: see
    ``rendition_sars`` for why a rung may carry a SAR like 1280:1281."""
    sources = scale_sources(plan)

    def chain(source: str, filters: list[str], outputs: list[str]) -> str:
        split = [f"split={len(outputs)}"] if len(outputs) > 1 else []
        return f"[{source}]" + ",".join([*filters, *split]) + "".join(f"[{o}]" for o in outputs)

    def scaled_from(source: int | None) -> list[str]:
        return [f"in{i}" for i, s in enumerate(sources) if s == source]

    head = ["bwdif=mode=send_frame:deint=interlaced", f"fps={_rate_text(rate)}"]
    if hold := video_hold_seconds(probe):
        head.append(f"tpad=stop_mode=clone:stop_duration={hold:.3f}")
    # Tone-map the largest rendition's picture, not a larger source's: zscale scales it on
    # the way to linear light, and the rendition's own scale is then a pass-through. On 5 s
    # of 4K HLG: 6.5 s instead of 18.7 s, SSIM 0.989 against scaling in linear light.
    top = [plan[i] for i, source in enumerate(sources) if source is None]
    shrink = len(top) == 1 and probe.coded_width * probe.coded_height > top[0].pixels
    head += _to_sdr(probe, (top[0].width, top[0].height) if shrink else None)
    chains = [chain(video, head, scaled_from(None))]
    for i, (spec, sar) in enumerate(zip(plan, rendition_sars(plan), strict=True)):
        scale = f"scale=w={spec.width}:h={spec.height}:flags=bicubic"
        sar_text = f"r={sar.numerator}/{sar.denominator}:max={max(sar.numerator, sar.denominator)}"
        chains += [
            chain(f"in{i}", [scale], [f"out{i}", *scaled_from(i)]),
            chain(f"out{i}", [f"setsar={sar_text}", "format=yuv420p"], [f"v{i}"]),
        ]
    return ";".join(chains)


def _colour_args(probe: Probe) -> list[str]:
    """Tone-mapped video is BT.709; say so in the H.264 stream."""
    return list(BT709_TAGS) if probe.is_hdr else []


def _video_output_args(
    plan: Sequence[RenditionSpec], rate: Fraction, segment_seconds: int, preset: str
) -> list[str]:
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
        f"expr:gte(t,n_forced*{segment_seconds})",
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


def _audio_output_args(probe: Probe, plan: Sequence[RenditionSpec]) -> list[str]:
    if not probe.has_audio:
        return []
    kbps = max(spec.audio_bitrate_kbps for spec in plan)
    return [
        "-map",
        _audio_selector(probe),
        "-c:a",
        "aac",
        "-b:a",
        f"{kbps}k",
        "-ac",
        "2",
        "-ar",
        "48000",
    ]


# --------------------------------------------------------------------------- adapter


class FfmpegTranscoder:
    """The Transcoder port implemented with ffmpeg/ffprobe subprocesses.

    ``timeout_seconds`` plus ``timeout_per_source_second`` for each second of source bounds
    each transcode (wall clock): the seconds the probe found, or the seconds ffmpeg has
    encoded once it is past them, at most ``max_source_seconds`` (None: no cap; it is
    the longest source the caller accepts). ``probe_timeout_seconds`` bounds ffprobe and
    thumbnail runs. ``memory_limit_bytes`` is the RLIMIT_AS of every
    child (None: no limit). ``threads`` is passed as ``-threads`` to each encoder and as
    ``-filter_complex_threads`` (None: ffmpeg's own choice). ``niceness`` lowers the CPU
    priority of every child so encoding never starves the event-processing path.
    """

    def __init__(
        self,
        ffmpeg_path: str = "ffmpeg",
        ffprobe_path: str = "ffprobe",
        preset: str = "veryfast",
        timeout_seconds: float = 3600.0,
        memory_limit_bytes: int | None = 4 * _GIB,
        threads: int | None = None,
        *,
        probe_timeout_seconds: float = 60.0,
        segment_seconds: int = 2,
        max_frame_rate: float = 60.0,
        input_formats: Sequence[str] = DEFAULT_INPUT_FORMATS,
        niceness: int = 10,
        timeout_per_source_second: float = 0.0,
        max_source_seconds: float | None = None,
    ) -> None:
        if timeout_seconds <= 0 or probe_timeout_seconds <= 0 or timeout_per_source_second < 0:
            raise ValueError("timeouts must be positive")
        if segment_seconds < 1:
            raise ValueError("segment_seconds must be at least 1")
        self._ffmpeg = ffmpeg_path
        self._ffprobe = ffprobe_path
        self._preset = preset
        self._timeout = timeout_seconds
        self._timeout_per_source_second = timeout_per_source_second
        self._max_source_seconds = max_source_seconds
        self._probe_timeout = probe_timeout_seconds
        self._memory_limit = memory_limit_bytes
        self._threads = threads
        self._segment_seconds = segment_seconds
        self._max_frame_rate = max_frame_rate
        self._input_formats = ",".join(input_formats)
        self._niceness = niceness

    # ---- probe

    async def probe(self, source: Source) -> Probe:
        size = _source_size(source)
        stdout: list[str] = []
        budget = _PROBE_STDOUT_LIMIT

        async def collect(line: str) -> None:
            nonlocal budget
            budget -= len(line) + 1
            if budget < 0:
                raise MediaError(FailureReason.UNSUPPORTED_MEDIA, detail="ffprobe output too large")
            stdout.append(line)

        argv = [
            self._ffprobe,
            "-hide_banner",
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_streams",
            "-show_format",
            *self._input(source),
        ]
        done = await _run(
            argv,
            timeout=self._probe_timeout,
            memory_limit_bytes=self._memory_limit,
            niceness=self._niceness,
            on_stdout_line=collect,
        )
        if done.returncode != 0:
            raise _failure(done, FailureReason.CORRUPT_MEDIA)
        try:
            data = json.loads("\n".join(stdout))
        except json.JSONDecodeError as exc:
            raise MediaError(FailureReason.UNSUPPORTED_MEDIA, detail=str(exc)) from exc
        return _probe_from_json(data, size)

    # ---- transcode

    async def transcode(
        self,
        source: Source,
        out_dir: Path,
        plan: Sequence[RenditionSpec],
        probe: Probe,
        on_progress: ProgressCallback | None = None,
    ) -> DashOutput:
        if not plan:
            raise ValueError("plan has no renditions")
        if not probe.has_video:
            raise MediaError(FailureReason.NO_VIDEO_STREAM)
        _require_source(source)
        _prepare_out_dir(out_dir)
        argv = self._dash_argv(source, out_dir, plan, probe)
        forwarder = _ProgressForwarder(on_progress, probe.duration_seconds, [s.name for s in plan])

        def budget() -> float:
            # A source can play longer than its container claims (an MPEG-TS whose clock
            # restarts): the allowance follows what ffmpeg has encoded, up to the longest
            # source accepted.
            seconds = max(probe.duration_seconds or 0.0, forwarder.encoded_seconds)
            if self._max_source_seconds is not None:
                seconds = min(seconds, self._max_source_seconds)
            return self._timeout + self._timeout_per_source_second * seconds

        log.info("transcoding %s into %d renditions", source, len(plan))
        done = await _run(
            argv,
            timeout=budget,
            memory_limit_bytes=self._memory_limit,
            niceness=self._niceness,
            on_stdout_line=forwarder.feed,
        )
        if done.returncode != 0:
            raise _failure(done, FailureReason.TRANSCODE_FAILED)
        duration = await asyncio.to_thread(_write_exact_duration, out_dir / MANIFEST_NAME)
        files, renditions, audio = await asyncio.to_thread(_collect_outputs, out_dir, plan)
        return DashOutput(
            manifest=out_dir / MANIFEST_NAME,
            files=files,
            renditions=renditions,
            audio=audio,
            cpu_seconds=_cpu_seconds(done.stderr_tail),
            wall_seconds=done.wall_seconds,
            duration_seconds=duration,
        )

    def _dash_argv(
        self, source: Source, out_dir: Path, plan: Sequence[RenditionSpec], probe: Probe
    ) -> list[str]:
        rate = target_frame_rate(probe, self._max_frame_rate)
        adaptation_sets = "id=0,streams=v id=1,streams=a" if probe.has_audio else "id=0,streams=v"
        return [
            self._ffmpeg,
            "-hide_banner",
            "-nostdin",
            "-loglevel",
            "level+info",
            "-nostats",
            "-benchmark",
            "-progress",
            "pipe:1",
            *self._thread_args("-filter_complex_threads"),
            *self._input(source),
            "-filter_complex",
            _filter_graph(_video_selector(probe), rate, plan, probe),
            *_video_output_args(plan, rate, self._segment_seconds, self._preset),
            *_colour_args(probe),
            *_audio_output_args(probe, plan),
            *self._thread_args("-threads"),
            "-max_muxing_queue_size",
            "4096",
            "-map_metadata",
            "-1",
            "-map_chapters",
            "-1",
            "-f",
            "dash",
            "-dash_segment_type",
            "mp4",
            "-seg_duration",
            str(self._segment_seconds),
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
            f"file:{out_dir / MANIFEST_NAME}",
        ]

    # ---- thumbnail

    async def thumbnail(self, source: Source, out_path: Path, probe: Probe) -> None:
        if not probe.has_video:
            raise MediaError(FailureReason.NO_VIDEO_STREAM)
        _require_source(source)
        offset = _poster_offset(probe.video_seconds or probe.duration_seconds)
        await self._grab_frame(source, out_path, probe, offset)
        if offset > 0 and not _non_empty(out_path):
            # The container overstated its duration (truncated upload): take the first frame.
            await self._grab_frame(source, out_path, probe, 0.0)
        if not _non_empty(out_path):
            raise MediaError(FailureReason.TRANSCODE_FAILED, detail="no frame could be decoded")

    async def _grab_frame(
        self, source: Source, out_path: Path, probe: Probe, offset: float
    ) -> None:
        argv = [
            self._ffmpeg,
            "-hide_banner",
            "-nostdin",
            "-loglevel",
            "level+error",
            *self._input(source, seek=offset),
            "-map",
            _video_selector(probe),
            "-frames:v",
            "1",
            "-vf",
            ",".join([*_to_sdr(probe), _THUMBNAIL_FILTER]),
            "-q:v",
            "3",
            "-f",
            "image2",
            "-update",
            "1",
            "-y",
            f"file:{out_path}",
        ]
        done = await _run(
            argv,
            timeout=self._probe_timeout,
            memory_limit_bytes=self._memory_limit,
            niceness=self._niceness,
        )
        if done.returncode != 0:
            raise _failure(done, FailureReason.TRANSCODE_FAILED)

    # ---- helpers

    def _input(self, source: Source, seek: float = 0.0) -> list[str]:
        """Input options and ``-i``: a local file, or the object store over HTTP(S) with
        reconnects; only the demuxers we accept, and no protocol but the one needed."""
        if isinstance(source, RemoteSource):
            args = ["-protocol_whitelist", "http,https,tcp,tls", *_HTTP_INPUT_OPTIONS]
            url = source.url
        else:
            args = ["-protocol_whitelist", "file"]
            url = f"file:{source}"
        args += ["-format_whitelist", self._input_formats]
        if seek > 0:  # No "-ss 0": a stream without timestamps (raw H.264) loses every frame.
            args += ["-ss", f"{seek:.3f}"]
        return [*args, "-i", url]

    def _thread_args(self, option: str) -> list[str]:
        return [option, str(self._threads)] if self._threads is not None else []


def _source_size(source: Source) -> int:
    if isinstance(source, RemoteSource):
        if source.size_bytes == 0:
            raise MediaError(FailureReason.EMPTY_FILE)
        return source.size_bytes
    try:
        size = source.stat().st_size
    except FileNotFoundError as exc:
        raise MediaError(FailureReason.SOURCE_MISSING, detail=str(source)) from exc
    if size == 0:
        raise MediaError(FailureReason.EMPTY_FILE)
    return size


def _require_source(source: Source) -> None:
    if isinstance(source, Path) and not source.exists():
        raise MediaError(FailureReason.SOURCE_MISSING, detail=str(source))


def _prepare_out_dir(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    if any(out_dir.iterdir()):
        raise ValueError(f"output directory {out_dir} is not empty")


def _poster_offset(duration: float | None) -> float:
    """10 % into the video, at most a few seconds; the first frame for short clips."""
    if duration is None or duration < 1.0:
        return 0.0
    return min(duration * 0.1, _THUMBNAIL_MAX_OFFSET_SECONDS)


def _non_empty(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 0
