"""Transcode job logic: which jobs to run, progress maths, the upload plan, manifests, events.

Pure and synchronous: the transcode agent (``tritontube.agents.transcode``) feeds it probe
results and encoder output and publishes what it returns. The only parsing here is of the MPD
that our own ffmpeg wrote (a small, trusted XML document).
"""

from __future__ import annotations

import hashlib
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from fractions import Fraction
from pathlib import PurePosixPath
from typing import Protocol

from tritontube.domain.events import (
    Rendition,
    RenditionProgress,
    RenditionReady,
    TranscodeFailed,
    TranscodeJob,
    TranscodeProgress,
    TranscodeSucceeded,
    VideoState,
)
from tritontube.domain.media import DashOutput, OutputFile, RenditionOutput
from tritontube.domain.video import TERMINAL

__all__ = [
    "MANIFEST_NAME",
    "POSTER_NAME",
    "JobRef",
    "Step",
    "UploadBatch",
    "cache_control",
    "content_type",
    "exact_duration",
    "failed_event",
    "interim_manifest",
    "overall_percent",
    "plan_uploads",
    "presentation_seconds",
    "progress_event",
    "referenced_files",
    "rendition_ready_event",
    "rendition_record",
    "retry_job",
    "skip_reason",
    "succeeded_event",
]

MANIFEST_NAME = "manifest.mpd"
POSTER_NAME = "poster.jpg"

_MPD_URI = "urn:mpeg:dash:schema:mpd:2011"
_NS = f"{{{_MPD_URI}}}"
# Keep the prefixes ffmpeg writes when a manifest is rewritten (no "ns0:" in the output).
ET.register_namespace("", _MPD_URI)
ET.register_namespace("xsi", "http://www.w3.org/2001/XMLSchema-instance")
ET.register_namespace("xlink", "http://www.w3.org/1999/xlink")


class JobRef(Protocol):
    """What the events of a job name: a ``TranscodeJob``, or a chunked job's state."""

    @property
    def job_id(self) -> str: ...

    @property
    def video_id(self) -> str: ...

    @property
    def attempt(self) -> int: ...

    @property
    def output_prefix(self) -> str: ...


class Step(StrEnum):
    """The phases a job reports in TranscodeProgress.step."""

    PROBING = "PROBING"
    #: A chunked job waits for workers to take its chunks (none has started yet).
    QUEUED = "QUEUED"
    ENCODING = "ENCODING"
    UPLOADING = "UPLOADING"
    FINALIZING = "FINALIZING"


# Share of the overall percent each step covers (encoding dominates the wall time).
_STEP_SPAN: dict[Step, tuple[float, float]] = {
    Step.PROBING: (0.0, 5.0),
    Step.QUEUED: (5.0, 5.0),
    Step.ENCODING: (5.0, 90.0),
    Step.UPLOADING: (90.0, 99.0),
    Step.FINALIZING: (99.0, 100.0),
}


# --------------------------------------------------------------------------- job selection


def skip_reason(job: TranscodeJob, state: VideoState | None) -> str | None:
    """Why ``job`` must not run given the video's state, or None when it should run.

    A job runs only for a video that exists, is not terminal, names this job id, and has
    not already moved on to a later attempt (a redelivered or superseded retry).
    """
    if state is None:
        return "unknown video"
    if state.status in TERMINAL:
        return f"video is {state.status}"
    if state.job_id != job.job_id:
        return f"video's current job is {state.job_id}"
    if job.attempt < state.attempt:
        return f"attempt {job.attempt} superseded by attempt {state.attempt}"
    return None


def retry_job(job: TranscodeJob, now: datetime, delay_seconds: float) -> TranscodeJob:
    """The next attempt of ``job``, not to start before ``now + delay_seconds``."""
    return replace(
        job,
        attempt=job.attempt + 1,
        not_before=now + timedelta(seconds=delay_seconds),
        created_at=now,
    )


# --------------------------------------------------------------------------- progress


def overall_percent(step: Step, step_percent: float) -> float:
    """The job's overall percent when ``step`` is ``step_percent`` % done."""
    low, high = _STEP_SPAN[step]
    fraction = max(0.0, min(100.0, step_percent)) / 100.0
    return round(low + (high - low) * fraction, 2)


def progress_event(
    job: JobRef,
    event_id: str,
    step: Step,
    step_percent: float,
    now: datetime,
    eta_seconds: float | None = None,
    renditions: Iterable[tuple[str, float]] = (),
) -> TranscodeProgress:
    return TranscodeProgress(
        event_id=event_id,
        video_id=job.video_id,
        job_id=job.job_id,
        attempt=job.attempt,
        step=step.value,
        percent=overall_percent(step, step_percent),
        ts=now,
        eta_seconds=None if eta_seconds is None else round(max(0.0, eta_seconds), 1),
        renditions=tuple(RenditionProgress(name, round(pct, 2)) for name, pct in renditions),
    )


# --------------------------------------------------------------------------- outputs


@dataclass(frozen=True)
class UploadBatch:
    """Files to upload together; afterwards ``manifest`` (if any) is written, listing
    ``ready`` renditions, and RenditionReady is published for ``announce``."""

    files: tuple[OutputFile, ...]
    ready: tuple[RenditionOutput, ...]
    announce: RenditionOutput | None


def plan_uploads(output: DashOutput) -> tuple[UploadBatch, ...]:
    """Upload order that keeps every written manifest playable.

    The smallest rendition goes first together with the audio, so an interim manifest can
    list it and the video plays before the rest is uploaded; then each larger rendition.
    The manifest itself is never in a batch: the caller writes it after each batch.
    """
    by_path = {f.path: f for f in output.files}
    order = sorted(output.renditions, key=lambda r: (r.bandwidth_bps, r.height))
    batches: list[UploadBatch] = []
    ready: list[RenditionOutput] = []
    audio_files = tuple(by_path[p] for p in output.audio.files) if output.audio else ()
    for index, rendition in enumerate(order):
        files = tuple(by_path[p] for p in rendition.files)
        if index == 0:
            files = audio_files + files
        ready.append(rendition)
        batches.append(UploadBatch(files=files, ready=tuple(ready), announce=rendition))
    return tuple(batches)


def rendition_record(rendition: RenditionOutput, files: Sequence[OutputFile]) -> Rendition:
    """The Rendition record: total size, a checksum over its files and its segment count.

    ``sha256`` is the SHA-256 of a ``sha256sum``-style listing (``<hex>  <name>\\n`` per
    file, init segment first, then media segments in order), so it can be recomputed from
    the stored objects with standard tools.
    """
    by_path = {f.path: f for f in files}
    mine = [by_path[p] for p in rendition.files]
    listing = "".join(f"{f.sha256}  {f.path.as_posix()}\n" for f in mine)
    return Rendition(
        name=rendition.name,
        width=rendition.width,
        height=rendition.height,
        bandwidth_bps=rendition.bandwidth_bps,
        representation_id=rendition.representation_id,
        size_bytes=sum(f.size_bytes for f in mine),
        segment_count=sum(1 for f in mine if not f.path.name.startswith("init-")),
        sha256=hashlib.sha256(listing.encode()).hexdigest(),
    )


def content_type(name: str) -> str:
    suffix = PurePosixPath(name).suffix.lower()
    if suffix == ".mpd":
        return "application/dash+xml"
    if suffix == ".jpg":
        return "image/jpeg"
    if suffix == ".m4s" and not PurePosixPath(name).name.startswith("init-"):
        return "video/iso.segment"
    return "video/mp4"


def cache_control(name: str) -> str:
    """Manifests change while a job uploads (interim manifests); segments do not."""
    if name.endswith(".mpd"):
        return "no-cache"
    return "public, max-age=86400"


# --------------------------------------------------------------------------- manifests


def interim_manifest(mpd: str, keep_ids: Iterable[str]) -> str:
    """``mpd`` listing only the video Representations in ``keep_ids`` (audio is kept).

    The adaptation set's maxWidth/maxHeight shrink to what remains. Raises ValueError when
    no video representation would remain.
    """
    keep = set(keep_ids)
    root = ET.fromstring(mpd)  # noqa: S314 - our own ffmpeg wrote this document
    kept_video = 0
    for adaptation in _video_sets(root):
        reps = adaptation.findall(f"{_NS}Representation")
        for rep in reps:
            if rep.get("id") not in keep:
                adaptation.remove(rep)
        remaining = adaptation.findall(f"{_NS}Representation")
        kept_video += len(remaining)
        for attr, dim in (("maxWidth", "width"), ("maxHeight", "height")):
            sizes = [int(r.get(dim, "0")) for r in remaining]
            if adaptation.get(attr) is not None and sizes:
                adaptation.set(attr, str(max(sizes)))
    if kept_video == 0:
        raise ValueError("an interim manifest needs at least one video representation")
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def video_representation_ids(mpd: str) -> frozenset[str]:
    """The ids of the video Representations ``mpd`` lists (ValueError if it is not XML)."""
    try:
        root = ET.fromstring(mpd)  # noqa: S314 - written by our own ffmpeg, or refused
    except ET.ParseError as exc:
        raise ValueError(f"not a manifest: {exc}") from exc
    return frozenset(
        rep.get("id", "")
        for adaptation in _video_sets(root)
        for rep in adaptation.findall(f"{_NS}Representation")
    )


def interim_may_replace(interim_ids: Iterable[str], stored: str | None) -> bool:
    """Whether an interim manifest listing ``interim_ids`` may overwrite the ``stored``
    manifest (None: there is none).

    Not when the stored one already lists every rendition the interim one would: an
    earlier run of the same job got that far (a job redelivered after its success, before
    the video's state showed READY), and viewers must not lose renditions to the rerun,
    nor keep an interim manifest for good if the rerun then dies. The rerun rewrites the
    same segments under the same names (same source, same settings; each segment starts
    at the same keyframe), and the full manifest last.
    """
    if stored is None:
        return True
    try:
        listed = video_representation_ids(stored)
    except ValueError:
        return True
    return not set(interim_ids) <= listed


def exact_duration(mpd: str) -> str:
    """``mpd`` with mediaPresentationDuration set to the end of its last sample, video or
    audio, rounded up to the millisecond.

    ffmpeg's DASH muxer writes the duration to the nearest tenth of a second. A clip of one
    or two frames gets "PT0.0S", which dash.js takes for no duration and will not play;
    and a duration that stops short of the media (3.0 s for 3.033 s of video, or 10.000 s
    for audio that ends 7 ms after the video) leaves dash.js paused before the end in
    some runs (about half for the video, 4 of 26 for the audio; Chromium, dash.js 5).
    A manifest without a video timeline is returned unchanged.
    """
    root = ET.fromstring(mpd)  # noqa: S314 - our own ffmpeg wrote this document
    ends = {
        kind: [
            end
            for adaptation in root.iter(f"{_NS}AdaptationSet")
            if _content_type(adaptation) == kind
            for template in adaptation.iter(f"{_NS}SegmentTemplate")
            if (end := _timeline_end(template)) is not None
        ]
        for kind in ("video", "audio")
    }
    if not ends["video"]:
        return mpd
    millis = math.ceil(max(ends["video"] + ends["audio"]) * 1000)
    root.set("mediaPresentationDuration", f"PT{millis // 1000}.{millis % 1000:03d}S")
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


_ISO_DURATION = re.compile(r"PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?")


def presentation_seconds(mpd: str) -> float | None:
    """The manifest's mediaPresentationDuration in seconds (None if absent or not a
    ``PT…H…M…S`` duration)."""
    root = ET.fromstring(mpd)  # noqa: S314 - our own ffmpeg wrote this document
    match = _ISO_DURATION.fullmatch(root.get("mediaPresentationDuration") or "")
    if match is None or not any(match.groups()):
        return None
    hours, minutes, seconds = (float(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def _timeline_end(template: ET.Element) -> Fraction | None:
    """Seconds from the period start to the end of the template's last segment."""
    timeline = template.find(f"{_NS}SegmentTimeline")
    if timeline is None:
        return None
    clock = 0
    for segment in timeline.findall(f"{_NS}S"):
        clock = int(segment.get("t", clock))
        clock += int(segment.get("d", "0")) * (1 + max(0, int(segment.get("r", "0"))))
    offset = int(template.get("presentationTimeOffset", "0"))
    return Fraction(clock - offset, int(template.get("timescale", "1")))


def _video_sets(root: ET.Element) -> list[ET.Element]:
    return [a for a in root.iter(f"{_NS}AdaptationSet") if _content_type(a) == "video"]


def _content_type(adaptation: ET.Element) -> str:
    explicit = adaptation.get("contentType")
    if explicit:
        return explicit
    mime = adaptation.get("mimeType") or ""
    if not mime:
        rep = adaptation.find(f"{_NS}Representation")
        mime = (rep.get("mimeType") or "") if rep is not None else ""
    return mime.partition("/")[0]


_NUMBER = re.compile(r"\$Number(?:%0(\d+)d)?\$")


def referenced_files(mpd: str) -> tuple[str, ...]:
    """Every file name the MPD's SegmentTemplates reference (init and media segments).

    Handles ``$RepresentationID$``, ``$Number$``/``$Number%0Nd$`` and SegmentTimeline
    repeat counts (``r``), which is what ffmpeg's DASH muxer writes.
    """
    root = ET.fromstring(mpd)  # noqa: S314 - our own ffmpeg wrote this document
    names: list[str] = []
    for adaptation in root.iter(f"{_NS}AdaptationSet"):
        shared = adaptation.find(f"{_NS}SegmentTemplate")
        for rep in adaptation.findall(f"{_NS}Representation"):
            template = rep.find(f"{_NS}SegmentTemplate")
            template = template if template is not None else shared
            if template is None:
                continue
            names.extend(_template_files(template, rep.get("id", "")))
    return tuple(names)


def _template_files(template: ET.Element, rep_id: str) -> list[str]:
    out: list[str] = []
    init = template.get("initialization")
    if init:
        out.append(init.replace("$RepresentationID$", rep_id))
    media = template.get("media")
    timeline = template.find(f"{_NS}SegmentTimeline")
    if not media or timeline is None:
        return out
    count = sum(1 + max(0, int(s.get("r", "0"))) for s in timeline.findall(f"{_NS}S"))
    start = int(template.get("startNumber", "1"))
    base = media.replace("$RepresentationID$", rep_id)
    for number in range(start, start + count):
        out.append(_NUMBER.sub(_number_formatter(number), base))
    return out


def _number_formatter(number: int) -> Callable[[re.Match[str]], str]:
    def format_number(match: re.Match[str]) -> str:
        width = match.group(1)
        return str(number).zfill(int(width)) if width else str(number)

    return format_number


# --------------------------------------------------------------------------- events


def rendition_ready_event(
    job: JobRef, rendition: Rendition, manifest_key: str, now: datetime
) -> RenditionReady:
    return RenditionReady(
        event_id=f"{job.job_id}#{job.attempt}:ready:{rendition.name}",
        video_id=job.video_id,
        job_id=job.job_id,
        rendition=rendition,
        manifest_key=manifest_key,
        ts=now,
    )


def succeeded_event(
    job: JobRef,
    output: DashOutput,
    duration_seconds: float,
    wall_seconds: float,
    now: datetime,
    thumbnail_key: str | None,
) -> TranscodeSucceeded:
    """Deterministic event id per attempt: a redelivered job's second success dedupes."""
    return TranscodeSucceeded(
        event_id=f"{job.job_id}#{job.attempt}:succeeded",
        video_id=job.video_id,
        job_id=job.job_id,
        attempt=job.attempt,
        manifest_key=job.output_prefix + MANIFEST_NAME,
        duration_seconds=round(duration_seconds, 3),
        renditions=tuple(rendition_record(r, output.files) for r in output.renditions),
        wall_seconds=round(wall_seconds, 3),
        cpu_seconds=round(output.cpu_seconds or 0.0, 3),
        ts=now,
        thumbnail_key=thumbnail_key,
    )


def failed_event(
    job: JobRef, reason: str, message: str, final: bool, now: datetime
) -> TranscodeFailed:
    return TranscodeFailed(
        event_id=f"{job.job_id}#{job.attempt}:failed",
        video_id=job.video_id,
        job_id=job.job_id,
        attempt=job.attempt,
        reason=reason,
        message=message,
        final=final,
        ts=now,
    )
