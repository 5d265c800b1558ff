"""Domain events: plain frozen dataclasses mirroring the Avro records field for field.

The codec layer (``streams.records``) maps between these and Avro; nothing here knows Avro.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

# Nested in TranscodeChunk: the chunk carries the probe and the ladder the owner planned.
from tritontube.domain.media import Probe, RenditionSpec


@dataclass(frozen=True)
class RenditionProgress:
    name: str
    percent: float


@dataclass(frozen=True)
class Rendition:
    name: str
    width: int
    height: int
    bandwidth_bps: int
    representation_id: str
    size_bytes: int
    segment_count: int
    sha256: str


@dataclass(frozen=True)
class UploadSessionCreated:
    event_id: str
    video_id: str
    owner: str
    title: str
    file_name: str
    content_type: str
    declared_size_bytes: int
    source_key: str
    etag: str
    created_at: datetime
    expires_at: datetime
    description: str = ""
    tags: tuple[str, ...] = ()
    visibility: str = "public"


@dataclass(frozen=True)
class UploadCompleted:
    event_id: str
    video_id: str
    owner: str
    etag: str
    source_key: str
    size_bytes: int
    content_type: str
    completed_at: datetime


@dataclass(frozen=True)
class UploadSessionExpired:
    event_id: str
    video_id: str
    expired_at: datetime


@dataclass(frozen=True)
class TranscodeJob:
    job_id: str
    video_id: str
    source_key: str
    ladder: tuple[str, ...]
    output_prefix: str
    attempt: int
    not_before: datetime
    created_at: datetime


@dataclass(frozen=True)
class TranscodeProgress:
    event_id: str
    video_id: str
    job_id: str
    attempt: int
    step: str
    percent: float
    ts: datetime
    eta_seconds: float | None = None
    renditions: tuple[RenditionProgress, ...] = ()


@dataclass(frozen=True)
class RenditionReady:
    event_id: str
    video_id: str
    job_id: str
    rendition: Rendition
    manifest_key: str
    ts: datetime


@dataclass(frozen=True)
class TranscodeSucceeded:
    event_id: str
    video_id: str
    job_id: str
    attempt: int
    manifest_key: str
    duration_seconds: float
    renditions: tuple[Rendition, ...]
    wall_seconds: float
    cpu_seconds: float
    ts: datetime
    thumbnail_key: str | None = None


@dataclass(frozen=True)
class TranscodeFailed:
    event_id: str
    video_id: str
    job_id: str
    attempt: int
    reason: str
    message: str
    final: bool
    ts: datetime


@dataclass(frozen=True)
class TranscodeChunk:
    """One part of a chunked job: a range of the video's frames (``kind`` VIDEO) or the
    whole source's audio (``kind`` AUDIO), for whichever worker consumes it."""

    job_id: str
    video_id: str
    attempt: int
    kind: str
    index: int
    chunk_count: int
    chunk_attempt: int
    source_key: str
    output_prefix: str
    probe: Probe
    renditions: tuple[RenditionSpec, ...]
    frame_rate_num: int
    frame_rate_den: int
    segment_seconds: int
    start_frame: int
    frame_count: int | None
    first_segment: int
    segment_count: int | None
    not_before: datetime
    created_at: datetime


@dataclass(frozen=True)
class MediaFile:
    path: str
    size_bytes: int
    sha256: str


@dataclass(frozen=True)
class TranscodeChunked:
    event_id: str
    video_id: str
    job_id: str
    attempt: int
    output_prefix: str
    duration_seconds: float
    chunk_seconds: tuple[float, ...]
    has_audio: bool
    renditions: tuple[str, ...]
    ts: datetime
    thumbnail_key: str | None = None
    dispatched: bool = False


@dataclass(frozen=True)
class ChunkProgress:
    event_id: str
    video_id: str
    job_id: str
    attempt: int
    kind: str
    index: int
    chunk_attempt: int
    encoded_seconds: float
    ts: datetime
    speed: float | None = None


@dataclass(frozen=True)
class ChunkEncoded:
    event_id: str
    video_id: str
    job_id: str
    attempt: int
    kind: str
    index: int
    chunk_attempt: int
    manifest: str
    files: tuple[MediaFile, ...]
    encoded_seconds: float
    wall_seconds: float
    cpu_seconds: float
    ts: datetime
    worker: str = ""


@dataclass(frozen=True)
class ChunkFailed:
    event_id: str
    video_id: str
    job_id: str
    attempt: int
    kind: str
    index: int
    chunk_attempt: int
    reason: str
    message: str
    final: bool
    ts: datetime


@dataclass(frozen=True)
class ChunkPart:
    kind: str
    index: int
    status: str
    seconds: float
    chunk_attempt: int = 1
    encoded_seconds: float = 0.0
    speed: float | None = None
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0


@dataclass(frozen=True)
class ChunkedJob:
    video_id: str
    job_id: str
    attempt: int
    status: str
    output_prefix: str
    duration_seconds: float
    renditions: tuple[str, ...]
    planned_at: datetime
    parts: tuple[ChunkPart, ...]
    thumbnail_key: str | None = None
    encoding_started_at: datetime | None = None
    error_code: str | None = None
    error_message: str | None = None
    dispatched: bool = False


@dataclass(frozen=True)
class WatchEvent:
    event_id: str
    video_id: str
    user_id: str
    kind: str
    position_seconds: float
    occurred_at: datetime
    received_at: datetime


@dataclass(frozen=True)
class VideoStats:
    video_id: str
    version: int
    views: int
    viewers: int
    watch_seconds: float
    average_completion: float
    trending_score: float
    updated_at: datetime


@dataclass(frozen=True)
class DeadLetter:
    source_topic: str
    source_partition: int
    source_offset: int
    error_type: str
    error: str
    failed_at: datetime
    key: bytes | None = None
    value: bytes | None = None


@dataclass(frozen=True)
class RenditionState:
    name: str
    status: str
    percent: float
    width: int = 0
    height: int = 0
    bandwidth_bps: int = 0


@dataclass(frozen=True)
class VideoState:
    video_id: str
    version: int
    status: str
    owner: str
    title: str
    created_at: datetime
    updated_at: datetime
    expires_at: datetime
    description: str = ""
    tags: tuple[str, ...] = ()
    visibility: str = "public"
    file_name: str = ""
    content_type: str = ""
    declared_size_bytes: int = 0
    source_key: str = ""
    upload_etag: str = ""
    job_id: str | None = None
    attempt: int = 0
    step: str | None = None
    percent: float = 0.0
    eta_seconds: float | None = None
    renditions: tuple[RenditionState, ...] = ()
    manifest_key: str | None = None
    thumbnail_key: str | None = None
    duration_seconds: float | None = None
    error_code: str | None = None
    error_message: str | None = None
    recent_event_ids: tuple[str, ...] = field(default=())


VideoEvent = (
    UploadSessionCreated
    | UploadCompleted
    | UploadSessionExpired
    | TranscodeProgress
    | RenditionReady
    | TranscodeSucceeded
    | TranscodeFailed
)
