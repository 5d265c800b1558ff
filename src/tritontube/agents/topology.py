"""Faust topics and tables, declared in one place from the topic catalogue.

Every topic carries raw bytes: our Avro codec (not Faust's serializers) decodes values inside
the agents so that an undecodable message can go to its dead-letter topic instead of
crashing the stream. Keys are the video id as UTF-8 bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import faust
from faust.types import TableT, TopicT

from tritontube.settings import Settings
from tritontube.streams import catalogue
from tritontube.streams.catalogue import TopicSpec

#: Faust applies a standby replica's changelog records in batches of this many; its default
#: (the recovery buffer, 1000) leaves a standby of a quiet partition stale for good, and a
#: worker taking the partition over would then replay it. 1: a standby is always current.
STANDBY_BUFFER_SIZE = 1
VIDEO_STATE_TABLE = "video_state"
# Watch analytics, owner listings and search indexing; values are Avro (streams/tables.py).
WATCH_SESSIONS_TABLE = "watch_sessions"
VIDEO_ANALYTICS_TABLE = "video_analytics"
TRENDING_TABLE = "trending_top"
WATCH_HISTORY_TABLE = "watch_history"
SEARCH_SOURCES_TABLE = "search_sources"
OWNER_VIDEOS_TABLE = "owner_videos"
_ANALYTICS_TABLES = {
    WATCH_SESSIONS_TABLE: ("Watch session (one viewer on one video) by video_id/user_id.", False),
    VIDEO_ANALYTICS_TABLE: ("Watch totals and trending buckets by video id.", False),
    TRENDING_TABLE: ("Top trending videos of one watch-events partition.", False),
    WATCH_HISTORY_TABLE: ("Recently watched videos by user id.", False),
    # The indexer writes from batches (no current event): partition by key like its topics.
    SEARCH_SOURCES_TABLE: ("Latest VideoState + VideoStats by video id (index input).", True),
    OWNER_VIDEOS_TABLE: ("Every video of one owner, newest first, by owner.", True),
}


# Chunked transcoding (agents/chunks.py): the state of each chunked job by video id
# (ChunkedJob) and each finished part's result by "<video id>/<kind>/<index>" (ChunkEncoded),
# both Avro. Written while folding transcode-chunk-results (keyed by video id), so every
# entry of a video lives in its partition, with its owner.
TRANSCODE_CHUNKS_TABLE = "transcode_chunks"
# The transcode queue (agents/queue.py): every video waiting to be encoded (WaitingVideo).
TRANSCODE_WAITING_TABLE = "transcode_waiting"
_TRANSCODE_TABLES = {
    TRANSCODE_CHUNKS_TABLE: ("Chunked transcode jobs and their finished parts by video id.", False),
    TRANSCODE_WAITING_TABLE: ("Videos waiting to be encoded, since when, by video id.", False),
}


def _topic(app: faust.App, settings: Settings, spec: TopicSpec, name: str | None = None) -> TopicT:
    retention = None
    if spec.retention_ms is not None and spec.retention_ms > 0:
        retention = timedelta(milliseconds=spec.retention_ms)
    return app.topic(
        name or spec.name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=spec.partitions or settings.kafka.partitions,
        replicas=settings.kafka.replication_factor,
        compacting=spec.compacted,
        retention=retention,
    )


@dataclass(frozen=True)
class Topology:
    """The app's Faust topics (one per catalogue entry, plus its DLQ) and tables."""

    topics: dict[str, TopicT]
    dlqs: dict[str, TopicT]
    video_state_input: TopicT
    video_state: TableT[Any, Any]
    tables: dict[str, TableT[Any, Any]] = field(default_factory=dict)
    # Typed views of ``tables`` (agents.tables.shared), one per table: agents that read a
    # table another agent writes share its remembered decoded values.
    typed: dict[str, Any] = field(default_factory=dict)

    def topic(self, spec: TopicSpec) -> TopicT:
        return self.topics[spec.name]

    def dlq(self, topic_name: str) -> TopicT:
        return self.dlqs[topic_name]


def build_topology(app: faust.App, settings: Settings) -> Topology:
    topics = {spec.name: _topic(app, settings, spec) for spec in catalogue.TOPICS}
    dlqs = {spec.name: _topic(app, settings, spec, spec.dlq) for spec in catalogue.TOPICS}
    video_state_input = app.topic(
        catalogue.UPLOADS.name,
        catalogue.TRANSCODE_PROGRESS.name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )
    table = app.Table(
        VIDEO_STATE_TABLE,
        # bytes key/value types make Faust use the raw codec for the changelog as well.
        key_type=bytes,
        value_type=bytes,
        schema=faust.Schema(
            key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
        ),
        partitions=settings.kafka.partitions,
        standby_buffer_size=STANDBY_BUFFER_SIZE,
        help="VideoState (Avro single-object bytes) by video id.",
    )
    tables = {
        name: _bytes_table(app, settings, name, help_text, use_partitioner=by_key)
        for name, (help_text, by_key) in (_ANALYTICS_TABLES | _TRANSCODE_TABLES).items()
    }
    return Topology(
        topics=topics,
        dlqs=dlqs,
        video_state_input=video_state_input,
        video_state=table,
        tables=tables,
    )


def _bytes_table(
    app: faust.App, settings: Settings, name: str, help_text: str, *, use_partitioner: bool
) -> TableT[Any, Any]:
    return app.Table(
        name,
        key_type=bytes,
        value_type=bytes,
        schema=faust.Schema(
            key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
        ),
        partitions=settings.kafka.partitions,
        standby_buffer_size=STANDBY_BUFFER_SIZE,
        use_partitioner=use_partitioner,
        help=help_text,
    )
