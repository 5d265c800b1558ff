"""FfmpegTranscoder: the Transcoder port over the ffmpeg and ffprobe command-line tools.

The adapter puts together what its neighbours provide, one job each:
``media.process`` runs a tool (bounded, killable, dies with the worker, errors mapped to
reasons), ``media.probe`` reads what ffprobe says, ``media.arguments`` builds the command
lines and ``media.outputs`` reads what an encode wrote. A source is either a local file,
opened as a ``file:`` URL with ``-protocol_whitelist file``, or an object streamed from the
store through a pre-signed GET URL with ``-protocol_whitelist http,https,tcp,tls`` (range
requests, so MP4s with the index at the end work; reconnects on network errors). Either
way a demuxer whitelist applies: uploads are untrusted, and playlist-style formats (HLS,
concat, ...) would otherwise let a crafted upload make ffmpeg read other local files or the
network. Audio-only input is NO_VIDEO_STREAM, raised by ``probe``.

Besides the one-pass ``transcode``, the adapter encodes the parts of a chunked job
(``tritontube.domain.chunks``): ``plan_chunks`` probes the source's keyframes near the
ideal cuts, ``encode_chunk`` encodes a range of frames into every rendition from one
decode, and ``encode_audio`` the whole source's audio once.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

from tritontube.domain import chunks as plan
from tritontube.domain.media import (
    DashOutput,
    FailureReason,
    MediaError,
    PartOutput,
    Probe,
    RenditionSpec,
    target_frame_rate,
)
from tritontube.media.arguments import (
    BT709_TAGS,
    DEFAULT_INPUT_FORMATS,
    MANIFEST_NAME,
    THUMBNAIL_FILTER,
    audio_output_args,
    colour_args,
    dash_args,
    filter_graph,
    hdr_to_sdr_filter,
    input_args,
    to_sdr,
    video_output_args,
    video_selector,
)
from tritontube.media.outputs import (
    collect_outputs,
    collect_part,
    rename_representation,
    renumber_part,
    write_exact_duration,
)
from tritontube.media.port import ProgressCallback, RemoteSource, Source
from tritontube.media.probe import keyframes_from_json, probe_from_json, start_from_json
from tritontube.media.process import (
    PROBE_STDOUT_LIMIT,
    Completed,
    ProgressForwarder,
    cpu_seconds,
    failure,
    run_tool,
)

__all__ = [
    "BT709_TAGS",
    "DEFAULT_INPUT_FORMATS",
    "MANIFEST_NAME",
    "FfmpegTranscoder",
    "hdr_to_sdr_filter",
]

log = logging.getLogger(__name__)

_GIB = 1024**3
_THUMBNAIL_MAX_OFFSET_SECONDS = 3.0
#: The chunk encodes' DASH muxer starts a segment at every keyframe: the chunk forces
#: keyframes exactly where its segments start (``domain.chunks.keyframe_expression``), and
#: the muxer's own rule (a new segment once ``seg_duration`` has passed since the chunk's
#: first frame) would move a boundary where the chunk's first frame is not on the grid.
_CHUNK_MUXER_SEGMENT_SECONDS = 0.1


class FfmpegTranscoder:
    """The Transcoder port implemented with ffmpeg/ffprobe subprocesses.

    ``timeout_seconds`` plus ``timeout_per_source_second`` for each second of source bounds
    each transcode (wall clock): the seconds the probe found, or the seconds ffmpeg has
    encoded once it is past them, at most ``max_source_seconds`` (None: no cap; it is
    the longest source the caller accepts); a chunk gets the allowance of its own seconds.
    ``probe_timeout_seconds`` bounds ffprobe and thumbnail runs. ``memory_limit_bytes`` is
    the RLIMIT_AS of every child (None: no limit). ``threads`` is passed as ``-threads`` to
    each encoder and as ``-filter_complex_threads`` (None: ffmpeg's own choice).
    ``niceness`` lowers the CPU priority of every child so encoding never starves the
    event-processing path.
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
        data = await self._probe_json(
            source, ["-show_streams", "-show_format"], FailureReason.CORRUPT_MEDIA
        )
        return probe_from_json(data, size)

    async def _probe_json(
        self,
        source: Source,
        options: Sequence[str],
        default: FailureReason,
        timeout: float | None = None,
    ) -> dict[str, object]:
        """ffprobe's JSON for ``options`` (within the output budget)."""
        stdout: list[str] = []
        budget = PROBE_STDOUT_LIMIT

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
            *options,
            *self._input(source),
        ]
        done = await run_tool(
            argv,
            timeout=timeout or self._probe_timeout,
            memory_limit_bytes=self._memory_limit,
            niceness=self._niceness,
            on_stdout_line=collect,
        )
        if done.returncode != 0:
            raise failure(done, default)
        try:
            data = json.loads("\n".join(stdout))
        except json.JSONDecodeError as exc:
            raise MediaError(FailureReason.UNSUPPORTED_MEDIA, detail=str(exc)) from exc
        if not isinstance(data, dict):
            raise MediaError(FailureReason.UNSUPPORTED_MEDIA, detail="ffprobe printed no object")
        return data

    # ---- one pass

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
        forwarder = ProgressForwarder(on_progress, probe.duration_seconds, [s.name for s in plan])
        log.info("transcoding %s into %d renditions", source, len(plan))
        done = await self._encode(argv, forwarder, probe.duration_seconds)
        duration = await asyncio.to_thread(write_exact_duration, out_dir / MANIFEST_NAME)
        files, renditions, audio = await asyncio.to_thread(collect_outputs, out_dir, plan)
        return DashOutput(
            manifest=out_dir / MANIFEST_NAME,
            files=files,
            renditions=renditions,
            audio=audio,
            cpu_seconds=cpu_seconds(done.stderr_tail),
            wall_seconds=done.wall_seconds,
            duration_seconds=duration,
        )

    async def _encode(
        self, argv: Sequence[str], forwarder: ProgressForwarder, seconds: float | None
    ) -> Completed:
        """Run an encode; its timeout allows for ``seconds`` of media or, once ffmpeg has
        encoded more than that, what it has encoded (up to the longest source accepted)."""

        def budget() -> float:
            # A source can play longer than its container claims (an MPEG-TS whose clock
            # restarts): the allowance follows what ffmpeg has encoded, up to the longest
            # source accepted.
            length = max(seconds or 0.0, forwarder.encoded_seconds)
            if self._max_source_seconds is not None:
                length = min(length, self._max_source_seconds)
            return self._timeout + self._timeout_per_source_second * length

        done = await run_tool(
            argv,
            timeout=budget,
            memory_limit_bytes=self._memory_limit,
            niceness=self._niceness,
            on_stdout_line=forwarder.feed,
        )
        if done.returncode != 0:
            raise failure(done, FailureReason.TRANSCODE_FAILED)
        return done

    def _head(self) -> list[str]:
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
        ]

    def _dash_argv(
        self, source: Source, out_dir: Path, plan: Sequence[RenditionSpec], probe: Probe
    ) -> list[str]:
        rate = target_frame_rate(probe, self._max_frame_rate)
        adaptation_sets = "id=0,streams=v id=1,streams=a" if probe.has_audio else "id=0,streams=v"
        return [
            *self._head(),
            *self._input(source),
            "-filter_complex",
            filter_graph(video_selector(probe), rate, plan, probe),
            *video_output_args(plan, rate, self._segment_seconds, self._preset),
            *colour_args(probe),
            *audio_output_args(probe, plan),
            *self._thread_args("-threads"),
            *dash_args(out_dir / MANIFEST_NAME, adaptation_sets, self._segment_seconds),
        ]

    # ---- chunks

    async def plan_chunks(
        self, source: Source, probe: Probe, chunk_seconds: float
    ) -> plan.ChunkPlan:
        """Cut ``source`` into chunks of about ``chunk_seconds`` where its keyframes make
        the cuts cheapest (``domain.chunks.plan_chunks``); the keyframes are probed in a
        window around each ideal cut only."""
        rate = target_frame_rate(probe, self._max_frame_rate)
        video_seconds = probe.video_seconds or probe.duration_seconds or 0.0
        windows = plan.boundary_windows(video_seconds, chunk_seconds, self._segment_seconds)
        keyframes = await self._keyframes(source, probe, windows) if windows else ()
        spans = plan.plan_chunks(
            video_seconds, rate, self._segment_seconds, chunk_seconds, keyframes
        )
        return plan.ChunkPlan(rate, self._segment_seconds, spans, video_seconds)

    async def _keyframes(
        self, source: Source, probe: Probe, windows: Sequence[tuple[float, float]]
    ) -> tuple[float, ...]:
        head = await self._probe_json(
            source, ["-show_entries", "format=start_time"], FailureReason.CORRUPT_MEDIA
        )
        start = start_from_json(head)
        intervals = ",".join(f"{start + a:.3f}%{start + b:.3f}" for a, b in windows)
        stream = str(probe.video_stream_index) if probe.video_stream_index is not None else "v:0"
        data = await self._probe_json(
            source,
            [
                "-select_streams",
                stream,
                "-show_entries",
                "packet=pts_time,flags",
                "-read_intervals",
                intervals,
            ],
            FailureReason.CORRUPT_MEDIA,
            timeout=self._probe_timeout * max(1, len(windows)),
        )
        return keyframes_from_json(data, start)

    async def encode_chunk(
        self,
        source: Source,
        out_dir: Path,
        probe: Probe,
        renditions: Sequence[RenditionSpec],
        rate: Fraction,
        segment_seconds: int,
        span: plan.ChunkSpan,
        on_progress: ProgressCallback | None = None,
    ) -> PartOutput:
        """Encode frames ``span`` of the output timeline into every rendition from one
        decode (video only: the audio is ``encode_audio``'s), segments numbered as in the
        whole video."""
        if not renditions:
            raise ValueError("plan has no renditions")
        _require_source(source)
        _prepare_out_dir(out_dir)
        start = plan.seek_seconds(span, rate)
        seconds = (
            float(span.frame_count / rate)
            if span.frame_count is not None
            else max(0.0, (probe.video_seconds or probe.duration_seconds or 0.0) - float(start))
        )
        offset = ["-output_ts_offset", f"{float(start):.6f}"] if start > 0 else []
        # Timestamps from the chunk's start on (tfdt) rather than from 0 in every segment.
        offset += ["-format_options", "movflags=+frag_discont"] if start > 0 else []
        argv = [
            *self._head(),
            *self._input(source, float(start), accurate_seek=False),
            "-filter_complex",
            filter_graph(
                video_selector(probe),
                rate,
                renditions,
                probe,
                chunk=True,
                frame_count=span.frame_count,
                hold=span.last,
            ),
            *video_output_args(
                renditions,
                rate,
                segment_seconds,
                self._preset,
                keyframes=plan.keyframe_expression(span, rate, segment_seconds),
            ),
            *colour_args(probe),
            *self._thread_args("-threads"),
            *dash_args(
                out_dir / MANIFEST_NAME,
                "id=0,streams=v",
                _CHUNK_MUXER_SEGMENT_SECONDS,
                extra=offset,
            ),
        ]
        # ffmpeg reports the time encoded from the chunk's start (before the offset).
        forwarder = ProgressForwarder(on_progress, seconds, [s.name for s in renditions])
        log.info("encoding chunk %d (frames from %d) of %s", span.index, span.start_frame, source)
        done = await self._encode(argv, forwarder, seconds)
        manifest = await asyncio.to_thread(
            renumber_part, out_dir, span.first_segment, span.segment_count
        )
        files = await asyncio.to_thread(collect_part, out_dir, manifest)
        return PartOutput(
            manifest, files, cpu_seconds(done.stderr_tail), done.wall_seconds, seconds
        )

    async def encode_audio(
        self,
        source: Source,
        out_dir: Path,
        probe: Probe,
        renditions: Sequence[RenditionSpec],
        representation_id: str,
        on_progress: ProgressCallback | None = None,
    ) -> PartOutput:
        """Encode the whole source's audio once, as the one pass would (same encoder, same
        clock), as representation ``representation_id``."""
        if not probe.has_audio:
            raise ValueError("the source has no audio")
        _require_source(source)
        _prepare_out_dir(out_dir)
        argv = [
            *self._head(),
            *self._input(source),
            *audio_output_args(probe, renditions),
            *self._thread_args("-threads"),
            *dash_args(out_dir / MANIFEST_NAME, "id=0,streams=a", self._segment_seconds),
        ]
        seconds = probe.duration_seconds or 0.0
        forwarder = ProgressForwarder(on_progress, seconds or None, ["audio"])
        done = await self._encode(argv, forwarder, seconds)
        manifest = await asyncio.to_thread(rename_representation, out_dir, "0", representation_id)
        files = await asyncio.to_thread(collect_part, out_dir, manifest)
        return PartOutput(
            manifest, files, cpu_seconds(done.stderr_tail), done.wall_seconds, seconds
        )

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
            video_selector(probe),
            "-frames:v",
            "1",
            "-vf",
            ",".join([*to_sdr(probe), THUMBNAIL_FILTER]),
            "-q:v",
            "3",
            "-f",
            "image2",
            "-update",
            "1",
            "-y",
            f"file:{out_path}",
        ]
        done = await run_tool(
            argv,
            timeout=self._probe_timeout,
            memory_limit_bytes=self._memory_limit,
            niceness=self._niceness,
        )
        if done.returncode != 0:
            raise failure(done, FailureReason.TRANSCODE_FAILED)

    # ---- helpers

    def _input(self, source: Source, seek: float = 0.0, *, accurate_seek: bool = True) -> list[str]:
        return input_args(source, self._input_formats, seek, accurate_seek=accurate_seek)

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
