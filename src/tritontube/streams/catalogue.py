"""The topic catalogue: every topic this system uses, in one table.

Nothing else names a topic. Faust topics, admin creation, replay and the docs all read this.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DAY_MS = 24 * 3600 * 1000
# Record header naming the API request that published a record (its log ``request_id``).
REQUEST_ID_HEADER = "x-request-id"


@dataclass(frozen=True)
class TopicSpec:
    """One topic: its name, message key, record types and storage policy."""

    name: str
    key: str
    records: tuple[str, ...]
    compacted: bool = False
    retention_ms: int | None = None  # None: the broker default; -1: keep forever
    partitions: int | None = None  # None: settings.kafka.partitions
    producers: str = ""
    consumers: str = ""

    @property
    def dlq(self) -> str:
        return f"{self.name}.dlq"

    def config(self) -> dict[str, str]:
        """Topic configs for creation."""
        cfg = {"cleanup.policy": "compact" if self.compacted else "delete"}
        if self.retention_ms is not None:
            cfg["retention.ms"] = str(self.retention_ms)
        return cfg


UPLOADS = TopicSpec(
    name="uploads",
    key="video_id",
    records=(
        "UploadSessionCreated",
        "UploadCompleted",
        "UploadSessionExpired",
        "VideoMetadataUpdated",
        "VideoDeleted",
        "VideoPurged",
        "TranscodeRetryRequested",
    ),
    retention_ms=-1,
    producers=(
        "API (uploadURL, completeUpload, PATCH/DELETE a video, retryTranscode), "
        "video-state agent (expiry, purge)"
    ),
    consumers="video-state agent, archiver",
)
TRANSCODE_JOBS = TopicSpec(
    name="transcode-jobs",
    key="video_id",
    records=("TranscodeJob",),
    retention_ms=7 * DAY_MS,
    producers="video-state agent (first attempt), transcode agent (retries)",
    consumers="transcode agent, archiver",
)
TRANSCODE_PROGRESS = TopicSpec(
    name="transcode-progress",
    key="video_id",
    records=("TranscodeProgress", "RenditionReady", "TranscodeSucceeded", "TranscodeFailed"),
    retention_ms=-1,
    producers="transcode agent",
    consumers="video-state agent, archiver",
)
TRANSCODE_CHUNKS = TopicSpec(
    name="transcode-chunks",
    key="video_id/part (e.g. abc/video/3): the parts of one job spread over partitions",
    records=("TranscodeChunk",),
    retention_ms=7 * DAY_MS,
    producers="transcode agent (the owner cuts a long source into chunks), chunk agent (retries)",
    consumers="chunk agent (any worker), archiver",
)
TRANSCODE_CHUNK_RESULTS = TopicSpec(
    name="transcode-chunk-results",
    key="video_id",
    records=("TranscodeChunked", "ChunkProgress", "ChunkEncoded", "ChunkFailed"),
    retention_ms=7 * DAY_MS,
    producers="transcode agent (the plan), chunk agent (progress, results)",
    consumers="chunk-join agent (the job's owner: folds them, joins), archiver",
)
WATCH_EVENTS = TopicSpec(
    name="watch-events",
    key="video_id",
    records=("WatchEvent",),
    retention_ms=-1,
    producers="http (watchEvents)",
    consumers="analytics agents, archiver, analytics consumers",
)
VIDEO_STATE = TopicSpec(
    name="video-state",
    key="video_id",
    records=("VideoState",),
    compacted=True,
    producers="video-state agent (every change; a tombstone once a deleted video is purged)",
    consumers="search-join agent, video-stats agent, analytics consumers",
)
WATCH_EVENTS_BY_USER = TopicSpec(
    name="watch-events-by-user",
    key="user_id",
    records=("WatchEvent",),
    retention_ms=7 * DAY_MS,
    producers="video-stats agent (accepted watch events, re-keyed by viewer)",
    consumers="watch-history agent",
)
VIDEO_STATS = TopicSpec(
    name="video-stats",
    key="video_id",
    records=("VideoStats",),
    compacted=True,
    producers="video-stats agent (every change)",
    consumers="indexer agent, analytics consumers",
)
VIDEO_STATE_BY_OWNER = TopicSpec(
    name="video-state-by-owner",
    key="owner",
    records=("VideoState", "VideoDeleted"),
    retention_ms=7 * DAY_MS,
    producers="video-state agent (a video's first state, and its deletion), re-keyed by owner",
    consumers="owner-index agent",
)
SEARCH_DOCUMENTS = TopicSpec(
    name="search-documents",
    key="video_id",
    records=("VideoDocument",),
    compacted=True,
    # One partition: its owner is the index's single writer (the embedded index allows one).
    partitions=1,
    producers="search-join agent (every changed document)",
    consumers="search-writer agent",
)

TOPICS: tuple[TopicSpec, ...] = (
    UPLOADS,
    TRANSCODE_JOBS,
    TRANSCODE_PROGRESS,
    TRANSCODE_CHUNKS,
    TRANSCODE_CHUNK_RESULTS,
    WATCH_EVENTS,
    VIDEO_STATE,
    WATCH_EVENTS_BY_USER,
    VIDEO_STATS,
    VIDEO_STATE_BY_OWNER,
    SEARCH_DOCUMENTS,
)
DEAD_LETTER_RECORD = "DeadLetter"


def by_name(name: str) -> TopicSpec:
    for spec in TOPICS:
        if spec.name == name:
            return spec
    raise KeyError(name)


def partitions_of(spec: TopicSpec, default: int) -> int:
    """How many partitions ``spec`` has (``default``: the settings' ``kafka.partitions``)."""
    return spec.partitions or default


def all_topic_names() -> tuple[str, ...]:
    """Every topic including the dead-letter topics."""
    return tuple(n for spec in TOPICS for n in (spec.name, spec.dlq))


def changelog_pattern(app_id: str) -> str:
    """A regex of the worker's table changelogs: Faust names them ``<app_id>-<table>-changelog``."""
    return rf"{re.escape(app_id)}-.+-changelog"


def is_changelog(app_id: str, topic: str) -> bool:
    return re.fullmatch(changelog_pattern(app_id), topic) is not None
