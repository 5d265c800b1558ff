"""Chunked transcoding: where to cut a long source, what each chunk encodes, and the fold
of chunk results into the job's state.

Pure and synchronous. The owner of a job (``agents.transcode``) plans the chunks with
``plan_chunks``; each chunk is a ``TranscodeChunk`` any worker encodes
(``agents.chunks``); results come back as events that ``apply`` folds into a
``ChunkedJob`` (a table value), and the join runs once ``ready_to_join`` says so.

**The timeline.** The output has a constant frame rate ``rate``; frame ``n`` is shown at
``n / rate`` seconds (the first frame of the video at 0). Keyframes, and therefore DASH
segments, start at the first frame at or after every multiple of ``segment_seconds``:
frame ``ceil(j * segment_seconds * rate)`` starts segment ``j + 1``, exactly as the one-pass
encode places them. Chunks are cut only at such segment starts, so every chunk holds whole
segments, each chunk's segments carry their final numbers, and segments line up across
chunks and renditions. A chunk knows its first frame, how many frames it has (the last:
"to the end") and which of its frames are keyframes, all in whole frames: no rounding of
seconds decides where one chunk stops and the next begins.

**Where to cut.** ffmpeg starts decoding a chunk at the source keyframe at or before the
chunk's first frame and throws the frames before it away; decoding those is the price of a
cut. Near each ideal cut (the source split into equal parts of about ``chunk_seconds``) the
planner looks at the source's keyframes (the owner probes a window around each) and picks
the segment start that costs least to reach; a source whose keyframes are far apart costs
up to one of its GOPs per chunk, never a wrong frame.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from fractions import Fraction
from pathlib import Path

from tritontube.domain.events import (
    ChunkedJob,
    ChunkEncoded,
    ChunkFailed,
    ChunkPart,
    ChunkProgress,
    MediaFile,
    TranscodeChunk,
    TranscodeChunked,
    TranscodeJob,
)
from tritontube.domain.manifest import ManifestError, join_chunks, read_tracks
from tritontube.domain.media import (
    UNFINISHED_PERCENT_CEILING,
    AudioOutput,
    DashOutput,
    OutputFile,
    PartOutput,
    Probe,
    RenditionOutput,
    RenditionSpec,
)
from tritontube.domain.transcode import MANIFEST_NAME, presentation_seconds

__all__ = [
    "AUDIO",
    "VIDEO",
    "ChunkSpan",
    "JobStatus",
    "PartStatus",
    "apply",
    "boundary_windows",
    "encoding_progress",
    "keyframe_expression",
    "message_partition",
    "part_key",
    "plan_chunks",
    "ready_to_join",
    "seek_seconds",
    "should_chunk",
    "skip_part",
]

VIDEO = "VIDEO"
AUDIO = "AUDIO"
#: How much of a job's encoding work the audio is, against its video (AAC encodes a
#: minute of stereo in about a second; the video ladder takes about a minute).
_AUDIO_WORK_SHARE = 0.05
#: How far from the ideal cut a cut may move to save decoding: a share of a chunk, at most
#: a few seconds (phones write a keyframe every second or two; x264's default is 10 s).
_CUT_SLACK = 0.25
_MAX_CUT_SLACK_SECONDS = 6.0
#: Container families whose demuxers seek by an index to a keyframe (MP4/QuickTime,
#: Matroska/WebM). MPEG-TS and friends seek by bisecting bytes and may restart their clock
#: mid-file; AVI, FLV and raw streams may have no index at all: those take the one pass.
_SEEKABLE_FORMATS = frozenset({"mov", "mp4", "matroska", "webm"})


class JobStatus(StrEnum):
    ENCODING = "ENCODING"
    JOINED = "JOINED"
    FAILED = "FAILED"


class PartStatus(StrEnum):
    QUEUED = "QUEUED"
    ENCODING = "ENCODING"
    RETRYING = "RETRYING"
    DONE = "DONE"
    FAILED = "FAILED"


# --------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class ChunkPlan:
    """How a long source is encoded in chunks: the output frame rate, the segment length
    and the chunks, in order."""

    rate: Fraction
    segment_seconds: int
    spans: tuple[ChunkSpan, ...]
    video_seconds: float


@dataclass(frozen=True)
class ChunkSpan:
    """Frames ``[start_frame, start_frame + frame_count)`` of the output timeline
    (``frame_count`` None: to the end of the video), which start at segment boundary
    ``first_segment - 1`` and hold ``segment_count`` segments (None: as many as the end
    leaves)."""

    index: int
    start_frame: int
    frame_count: int | None
    first_segment: int
    segment_count: int | None

    @property
    def last(self) -> bool:
        return self.frame_count is None


def _segment_start(segment: int, rate: Fraction, segment_seconds: int) -> int:
    """The frame that starts segment boundary ``segment`` (0-based): the first frame at or
    after ``segment * segment_seconds`` seconds."""
    return math.ceil(segment * segment_seconds * rate)


def seek_seconds(span: ChunkSpan, rate: Fraction) -> Fraction:
    """Where the chunk starts, in seconds of the output timeline (the source's clock less
    its start time, which is what ffmpeg's ``-ss`` counts from)."""
    return span.start_frame / rate


def should_chunk(probe: Probe, threshold_seconds: float, chunk_seconds: float) -> bool:
    """Whether a source is cut into chunks: longer than ``threshold_seconds`` (0 turns
    chunking off), long enough for two chunks, and in a container ffmpeg seeks exactly."""
    duration = probe.video_seconds or probe.duration_seconds
    if threshold_seconds <= 0 or duration is None or duration <= threshold_seconds:
        return False
    if not _SEEKABLE_FORMATS & set(probe.format_name.split(",")):
        return False
    return chunk_count(duration, chunk_seconds) >= 2


def _slack(length: float) -> float:
    return min(_CUT_SLACK * length, _MAX_CUT_SLACK_SECONDS)


def boundary_windows(
    duration: float, chunk_seconds: float, segment_seconds: int
) -> tuple[tuple[float, float], ...]:
    """The source time ranges the owner probes for keyframes: one around each ideal cut,
    wide enough for every cut ``plan_chunks`` may choose plus the keyframe before it."""
    count = chunk_count(duration, chunk_seconds)
    if count < 2:
        return ()
    length = duration / count
    slack = _slack(length) + segment_seconds
    return tuple(
        (max(0.0, k * length - slack - segment_seconds), min(duration, k * length + slack))
        for k in range(1, count)
    )


def chunk_count(duration: float, chunk_seconds: float) -> int:
    """How many chunks of about ``chunk_seconds`` a source of ``duration`` seconds gets."""
    if chunk_seconds <= 0 or duration <= 0:
        return 1
    return max(1, round(duration / chunk_seconds))


def plan_chunks(
    duration: float,
    rate: Fraction,
    segment_seconds: int,
    chunk_seconds: float,
    keyframes: Iterable[float] = (),
) -> tuple[ChunkSpan, ...]:
    """Cut a video of ``duration`` seconds (where its last frame ends) into chunks of
    about ``chunk_seconds``, each starting at a segment boundary.

    ``keyframes`` are source keyframe times on the output clock (seconds from the
    source's start). A cut may move up to a quarter of a chunk (at most 6 s) from its
    ideal place, to
    the segment boundary whose frame is reached with the least decoding from the keyframe
    before it; without keyframes near a cut, the boundary nearest the ideal place wins.
    One chunk (a single span from frame 0 to the end) when the video is too short to cut.
    """
    if rate <= 0 or segment_seconds < 1:
        raise ValueError("need a positive frame rate and segment length")
    segments = max(1, math.ceil(duration / segment_seconds - 1e-9))
    count = min(chunk_count(duration, chunk_seconds), segments)
    known = sorted(set(keyframes))
    cuts: list[int] = []  # segment boundaries (0-based) where chunks 1.. start
    length = duration / count
    slack = _slack(length) / segment_seconds
    for k in range(1, count):
        target = k * length / segment_seconds
        low = max(cuts[-1] + 1 if cuts else 1, math.floor(target - slack))
        high = min(segments - (count - k), math.ceil(target + slack))
        candidates = range(low, max(low, high) + 1)
        cuts.append(
            min(
                candidates,
                key=lambda b: (_preroll(b, rate, segment_seconds, known), abs(b - target)),
            )
        )
    bounds = [0, *cuts]
    spans = []
    for index, boundary in enumerate(bounds):
        start = _segment_start(boundary, rate, segment_seconds)
        if index + 1 < len(bounds):
            following = bounds[index + 1]
            frames: int | None = _segment_start(following, rate, segment_seconds) - start
            segment_count: int | None = following - boundary
        else:
            frames = segment_count = None
        spans.append(ChunkSpan(index, start, frames, boundary + 1, segment_count))
    return tuple(spans)


def _preroll(
    boundary: int, rate: Fraction, segment_seconds: int, keyframes: Sequence[float]
) -> float:
    """Seconds decoded only to reach the first frame of a chunk starting at ``boundary``
    (infinite when no keyframe before it is known)."""
    start = float(_segment_start(boundary, rate, segment_seconds) / rate)
    position = bisect_right(keyframes, start + 1e-6)
    if position == 0:
        return math.inf
    return start - keyframes[position - 1]


def keyframe_expression(span: ChunkSpan, rate: Fraction, segment_seconds: int) -> str:
    """ffmpeg's ``-force_key_frames`` for a chunk: its first frame, then the first frame of
    each later segment, counted in frames from the chunk's start (``n``) so that nothing
    depends on how seconds round. ``ceil`` of an exact integer ratio is exact in double
    arithmetic for any timeline shorter than years."""
    base = span.first_segment - 1  # segment boundaries before the chunk's first
    product = segment_seconds * rate.numerator
    threshold = f"ceil(({base}+n_forced)*{product}/{rate.denominator})-{span.start_frame}"
    return f"expr:gte(n,if(eq(n_forced,0),0,{threshold}))"


# --------------------------------------------------------------------------- the job's state


def part_key(video_id: str, kind: str, index: int) -> str:
    """The table key of one part's result."""
    return f"{video_id}/{kind.lower()}/{index}"


def _parts(event: TranscodeChunked) -> tuple[ChunkPart, ...]:
    video = tuple(
        ChunkPart(kind=VIDEO, index=i, status=PartStatus.QUEUED.value, seconds=seconds)
        for i, seconds in enumerate(event.chunk_seconds)
    )
    if not event.has_audio:
        return video
    audio = ChunkPart(
        kind=AUDIO, index=0, status=PartStatus.QUEUED.value, seconds=event.duration_seconds
    )
    return (*video, audio)


def _same_job(job: ChunkedJob, job_id: str, attempt: int) -> bool:
    return job.job_id == job_id and job.attempt == attempt


def apply(
    job: ChunkedJob | None,
    event: TranscodeChunked | ChunkProgress | ChunkEncoded | ChunkFailed,
) -> ChunkedJob | None:
    """The job's state after ``event``; the same object when the event changes nothing
    (a duplicate, a late event of another attempt, anything after the job ended)."""
    if isinstance(event, TranscodeChunked):
        if job is not None and (job.job_id, job.attempt) == (event.job_id, event.attempt):
            return replace(job, dispatched=True) if event.dispatched and not job.dispatched else job
        if job is not None and job.job_id == event.job_id and job.attempt > event.attempt:
            return job
        return ChunkedJob(
            video_id=event.video_id,
            job_id=event.job_id,
            attempt=event.attempt,
            status=JobStatus.ENCODING.value,
            output_prefix=event.output_prefix,
            thumbnail_key=event.thumbnail_key,
            duration_seconds=event.duration_seconds,
            renditions=tuple(event.renditions),
            planned_at=event.ts,
            parts=_parts(event),
            dispatched=event.dispatched,
        )
    if job is None or not _same_job(job, event.job_id, event.attempt):
        return job
    if job.status != JobStatus.ENCODING:
        return job
    position = _find(job, event.kind, event.index)
    if position is None:
        return job
    part = job.parts[position]
    if part.status in (PartStatus.DONE, PartStatus.FAILED):
        return job
    started: datetime | None
    match event:
        case ChunkProgress():
            new = replace(
                part,
                status=PartStatus.ENCODING.value,
                encoded_seconds=max(part.encoded_seconds, min(part.seconds, event.encoded_seconds)),
                speed=event.speed,
            )
            started = job.encoding_started_at or event.ts
        case ChunkEncoded():
            new = replace(
                part,
                status=PartStatus.DONE.value,
                encoded_seconds=part.seconds,
                speed=event.encoded_seconds / event.wall_seconds
                if event.wall_seconds > 0
                else None,
                wall_seconds=event.wall_seconds,
                cpu_seconds=event.cpu_seconds,
                chunk_attempt=event.chunk_attempt,
            )
            started = job.encoding_started_at or event.ts
        case ChunkFailed():
            if event.final:
                failed = replace(
                    part, status=PartStatus.FAILED.value, chunk_attempt=event.chunk_attempt
                )
                return replace(
                    job,
                    status=JobStatus.FAILED.value,
                    parts=_put(job.parts, position, failed),
                    error_code=event.reason,
                    error_message=event.message,
                )
            new = replace(
                part,
                status=PartStatus.RETRYING.value,
                chunk_attempt=max(part.chunk_attempt, event.chunk_attempt + 1),
                encoded_seconds=0.0,
            )
            started = job.encoding_started_at
    if new == part and started == job.encoding_started_at:
        return job
    return replace(job, parts=_put(job.parts, position, new), encoding_started_at=started)


def _find(job: ChunkedJob, kind: str, index: int) -> int | None:
    for position, part in enumerate(job.parts):
        if part.kind == kind and part.index == index:
            return position
    return None


def _put(parts: tuple[ChunkPart, ...], position: int, part: ChunkPart) -> tuple[ChunkPart, ...]:
    return (*parts[:position], part, *parts[position + 1 :])


def skip_part(job: ChunkedJob | None, chunk: TranscodeChunk) -> str | None:
    """Why a part need not be encoded given its job's state at the owner (None: encode)."""
    if job is None or job.job_id != chunk.job_id:
        return None  # not planned yet as far as the owner knows (or another job): encode
    if job.attempt > chunk.attempt:
        return f"attempt {chunk.attempt} superseded by attempt {job.attempt}"
    if job.attempt < chunk.attempt:
        return None
    if job.status != JobStatus.ENCODING:
        return f"the job is {job.status}"
    for part in job.parts:
        if (part.kind, part.index) == (chunk.kind, chunk.index) and part.status == PartStatus.DONE:
            return "the part is encoded already"
    return None


def ready_to_join(job: ChunkedJob) -> bool:
    """Every part encoded and the job still open."""
    return job.status == JobStatus.ENCODING and all(p.status == PartStatus.DONE for p in job.parts)


def joined(job: ChunkedJob) -> ChunkedJob:
    return replace(job, status=JobStatus.JOINED.value)


def failed_job(job: ChunkedJob, reason: str, message: str) -> ChunkedJob:
    """The job failed after its parts were in (the join could not use them)."""
    return replace(job, status=JobStatus.FAILED.value, error_code=reason, error_message=message)


# --------------------------------------------------------------------------- progress


@dataclass(frozen=True)
class EncodingProgress:
    """Where a chunked job stands: ``percent`` of its encoding work, an ETA from the
    throughput measured so far (None before there is one), and the parts by status."""

    percent: float
    eta_seconds: float | None
    done: int
    encoding: int
    waiting: int


def encoding_progress(job: ChunkedJob, now: datetime) -> EncodingProgress:
    """Progress from the parts' reports: the share of the work done (video seconds encoded,
    the audio counted as a small share), and the remaining work at the rate the job has
    made progress since its first part started (this counts every worker on it, and the
    time parts waited in the queue)."""
    total = done = 0.0
    for part in job.parts:
        weight = _AUDIO_WORK_SHARE if part.kind == AUDIO else 1.0
        total += weight * part.seconds
        finished = part.seconds if part.status == PartStatus.DONE else part.encoded_seconds
        done += weight * min(part.seconds, finished)
    complete = all(p.status == PartStatus.DONE for p in job.parts)
    percent = (
        100.0
        if complete
        else min(UNFINISHED_PERCENT_CEILING, 100.0 * done / total)
        if total
        else 0.0
    )
    eta = None
    if job.encoding_started_at is not None and done > 0 and not complete:
        elapsed = (now - job.encoding_started_at).total_seconds()
        if elapsed > 0:
            eta = (total - done) / (done / elapsed)
    counts = {s: sum(1 for p in job.parts if p.status == s) for s in PartStatus}
    return EncodingProgress(
        percent=round(percent, 2),
        eta_seconds=eta,
        done=counts[PartStatus.DONE],
        encoding=counts[PartStatus.ENCODING],
        waiting=counts[PartStatus.QUEUED] + counts[PartStatus.RETRYING],
    )


def chunk_seconds(
    spans: Sequence[ChunkSpan], rate: Fraction, video_seconds: float
) -> tuple[float, ...]:
    """How many seconds of video each chunk holds (the last: to ``video_seconds``)."""
    out = []
    for span in spans:
        if span.frame_count is not None:
            out.append(float(span.frame_count / rate))
        else:
            out.append(max(0.0, video_seconds - float(span.start_frame / rate)))
    return tuple(round(s, 6) for s in out)


# --------------------------------------------------------------------------- events


def planned_event(
    job: TranscodeJob,
    probe: Probe,
    renditions: Sequence[RenditionSpec],
    chunk_plan: ChunkPlan,
    thumbnail_key: str | None,
    now: datetime,
) -> TranscodeChunked:
    """The plan the join waits for (deterministic id: a redelivered job plans again)."""
    return TranscodeChunked(
        event_id=f"{job.job_id}#{job.attempt}:chunked",
        video_id=job.video_id,
        job_id=job.job_id,
        attempt=job.attempt,
        output_prefix=job.output_prefix,
        duration_seconds=float(probe.duration_seconds or chunk_plan.video_seconds),
        chunk_seconds=chunk_seconds(chunk_plan.spans, chunk_plan.rate, chunk_plan.video_seconds),
        has_audio=probe.has_audio,
        renditions=tuple(r.name for r in renditions),
        ts=now,
        thumbnail_key=thumbnail_key,
    )


def dispatched_event(planned: TranscodeChunked) -> TranscodeChunked:
    """The plan again, once every part was sent: a redelivered job sends none again."""
    return replace(planned, event_id=f"{planned.event_id}:dispatched", dispatched=True)


def chunk_jobs(
    job: TranscodeJob,
    probe: Probe,
    renditions: Sequence[RenditionSpec],
    chunk_plan: ChunkPlan,
    now: datetime,
) -> tuple[TranscodeChunk, ...]:
    """One ``TranscodeChunk`` per video chunk, then the audio's (if the source has audio)."""
    rate = chunk_plan.rate

    def part(kind: str, span: ChunkSpan) -> TranscodeChunk:
        return TranscodeChunk(
            job_id=job.job_id,
            video_id=job.video_id,
            attempt=job.attempt,
            kind=kind,
            index=span.index,
            chunk_count=len(chunk_plan.spans),
            chunk_attempt=1,
            source_key=job.source_key,
            output_prefix=job.output_prefix,
            probe=probe,
            renditions=tuple(renditions),
            frame_rate_num=rate.numerator,
            frame_rate_den=rate.denominator,
            segment_seconds=chunk_plan.segment_seconds,
            start_frame=span.start_frame,
            frame_count=span.frame_count,
            first_segment=span.first_segment,
            segment_count=span.segment_count,
            not_before=now,
            created_at=now,
        )

    video = tuple(part(VIDEO, span) for span in chunk_plan.spans)
    if not probe.has_audio:
        return video
    return (*video, part(AUDIO, ChunkSpan(0, 0, None, 1, None)))


def span_of(chunk: TranscodeChunk) -> ChunkSpan:
    return ChunkSpan(
        chunk.index, chunk.start_frame, chunk.frame_count, chunk.first_segment, chunk.segment_count
    )


def rate_of(chunk: TranscodeChunk) -> Fraction:
    return Fraction(chunk.frame_rate_num, chunk.frame_rate_den)


def retry_chunk(chunk: TranscodeChunk, now: datetime, delay_seconds: float) -> TranscodeChunk:
    """The next try of ``chunk``, not to start before ``now + delay_seconds``."""
    return replace(
        chunk,
        chunk_attempt=chunk.chunk_attempt + 1,
        not_before=now + timedelta(seconds=delay_seconds),
        created_at=now,
    )


def message_key(chunk: TranscodeChunk) -> str:
    """The chunk's message key: the video and the part."""
    return part_key(chunk.video_id, chunk.kind, chunk.index)


def message_partition(chunk: TranscodeChunk, video_partition: int, partitions: int) -> int:
    """The partition of ``transcode-chunks`` a part goes to: round robin from the video's
    own partition, so that a job's parts spread evenly over the partitions (and so over
    the workers that own them). Hashing each part's key would too, on average only: five
    parts all landed in one of two partitions one time in sixteen."""
    offset = chunk.index if chunk.kind == VIDEO else chunk.chunk_count
    return (video_partition + offset) % partitions


def _event_id(chunk: TranscodeChunk, what: str) -> str:
    part = f"{chunk.kind.lower()}{chunk.index}#{chunk.chunk_attempt}"
    return f"{chunk.job_id}#{chunk.attempt}:{part}:{what}"


def progress_of(
    chunk: TranscodeChunk, event_id: str, encoded_seconds: float, speed: float | None, now: datetime
) -> ChunkProgress:
    return ChunkProgress(
        event_id=event_id,
        video_id=chunk.video_id,
        job_id=chunk.job_id,
        attempt=chunk.attempt,
        kind=chunk.kind,
        index=chunk.index,
        chunk_attempt=chunk.chunk_attempt,
        encoded_seconds=round(encoded_seconds, 3),
        ts=now,
        speed=speed,
    )


def encoded_of(
    chunk: TranscodeChunk,
    output: PartOutput,
    wall_seconds: float,
    worker: str,
    now: datetime,
) -> ChunkEncoded:
    return ChunkEncoded(
        event_id=_event_id(chunk, "encoded"),
        video_id=chunk.video_id,
        job_id=chunk.job_id,
        attempt=chunk.attempt,
        kind=chunk.kind,
        index=chunk.index,
        chunk_attempt=chunk.chunk_attempt,
        manifest=output.manifest,
        files=tuple(MediaFile(f.path.as_posix(), f.size_bytes, f.sha256) for f in output.files),
        encoded_seconds=round(output.encoded_seconds, 3),
        wall_seconds=round(wall_seconds, 3),
        cpu_seconds=round(output.cpu_seconds or 0.0, 3),
        ts=now,
        worker=worker,
    )


def failed_of(
    chunk: TranscodeChunk, reason: str, message: str, final: bool, now: datetime
) -> ChunkFailed:
    return ChunkFailed(
        event_id=_event_id(chunk, "failed"),
        video_id=chunk.video_id,
        job_id=chunk.job_id,
        attempt=chunk.attempt,
        kind=chunk.kind,
        index=chunk.index,
        chunk_attempt=chunk.chunk_attempt,
        reason=reason,
        message=message,
        final=final,
        ts=now,
    )


# --------------------------------------------------------------------------- the join


@dataclass(frozen=True)
class Package:
    """The joined package of a chunked job: its manifest, every file, the renditions and
    the audio as a one-pass ``DashOutput`` describes them (same checksums)."""

    manifest: str
    output: DashOutput


def join(job: ChunkedJob, results: Sequence[ChunkEncoded]) -> Package:
    """Join the parts of ``job`` (every part's ``ChunkEncoded``) into one package.

    Raises ManifestError when the parts do not fit together: timelines that do not meet,
    representations that differ, or init segments that are not the same bytes in every
    chunk (they are, when every chunk used the same encoder settings: one init segment
    serves the whole Representation)."""
    video = sorted((r for r in results if r.kind == VIDEO), key=lambda r: r.index)
    audio = [r for r in results if r.kind == AUDIO]
    if [r.index for r in video] != list(range(len(video))) or not video:
        raise ManifestError(f"chunks {[r.index for r in video]} do not cover the video")
    audio_id = str(len(job.renditions))
    text = join_chunks([r.manifest for r in video], audio[0].manifest if audio else None, audio_id)
    files: dict[str, MediaFile] = {}
    for result in (*video, *audio):
        for item in result.files:
            seen = files.setdefault(item.path, item)
            if seen.sha256 != item.sha256:
                raise ManifestError(f"{item.path} differs between chunks")
    by_path = {p: OutputFile(Path(p), f.size_bytes, f.sha256) for p, f in files.items()}
    tracks = read_tracks(text)
    video_tracks = [t for t in tracks if t.content_type == "video"]
    if len(video_tracks) != len(job.renditions):
        raise ManifestError(
            f"{len(video_tracks)} video representations for {len(job.renditions)} renditions"
        )
    missing = [
        name
        for t in tracks
        for name in (t.init, *(s.name for s in t.segments))
        if name not in by_path
    ]
    if missing:
        raise ManifestError(f"the joined manifest lists {len(missing)} file(s) no part made")
    renditions = tuple(
        RenditionOutput(
            name=name,
            width=t.width,
            height=t.height,
            bandwidth_bps=t.bandwidth,
            representation_id=t.representation_id,
            files=(Path(t.init), *(Path(s.name) for s in t.segments)),
        )
        for name, t in zip(job.renditions, video_tracks, strict=True)
    )
    audio_out = None
    for t in tracks:
        if t.content_type == "audio":
            audio_out = AudioOutput(
                t.representation_id,
                t.bandwidth,
                (Path(t.init), *(Path(s.name) for s in t.segments)),
            )
    listed = {p for r in renditions for p in r.files} | (
        set(audio_out.files) if audio_out else set()
    )
    output = DashOutput(
        manifest=Path(MANIFEST_NAME),
        files=tuple(by_path[p.as_posix()] for p in sorted(listed)),
        renditions=renditions,
        audio=audio_out,
        cpu_seconds=sum(r.cpu_seconds for r in results),
        wall_seconds=max(r.wall_seconds for r in results),
        duration_seconds=presentation_seconds(text),
    )
    return Package(text, output)
