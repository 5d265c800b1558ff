"""Every Prometheus metric, defined in one module. Names: tritontube_<subsystem>_<what>_<unit>."""

from __future__ import annotations

import time

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUEST_SECONDS = Histogram(
    "tritontube_http_request_duration_seconds",
    "HTTP request latency by route and status.",
    ("method", "route", "status"),
)
HTTP_RATE_LIMITED = Counter(
    "tritontube_http_rate_limited_total", "Requests refused with 429 by scope.", ("scope",)
)
UPLOAD_PRESIGN_SECONDS = Histogram(
    "tritontube_upload_presign_duration_seconds",
    "Time to create an upload session's pre-signed POST.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
UPLOADS_STARTED = Counter("tritontube_uploads_started_total", "Upload sessions created.")
UPLOADS_COMPLETED = Counter("tritontube_uploads_completed_total", "Uploads verified and queued.")
UPLOADS_REJECTED = Counter(
    "tritontube_uploads_rejected_total", "Upload requests refused, by reason.", ("reason",)
)
EVENTS_CONSUMED = Counter(
    "tritontube_stream_events_consumed_total", "Events consumed by agents.", ("agent", "topic")
)
BATCH_EVENTS_DONE = Counter(
    "tritontube_stream_batch_events_done_total",
    "Records of batch-consumed topics whose outputs and table changes the broker holds "
    "(acknowledged for the next offset commit).",
    ("topic",),
)
EVENTS_DEAD_LETTERED = Counter(
    "tritontube_stream_events_dead_lettered_total",
    "Events sent to a dead-letter topic.",
    ("topic",),
)
QUEUE_LATENCY_SECONDS = Histogram(
    "tritontube_stream_queue_latency_seconds",
    "Record timestamp to agent consumption.",
    ("agent",),
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
TRANSCODE_DURATION_SECONDS = Histogram(
    "tritontube_transcode_duration_seconds",
    "Wall time of a transcode job (probe to manifest upload).",
    buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 3600),
)
TRANSCODE_CPU_SECONDS = Histogram(
    "tritontube_transcode_cpu_seconds",
    "CPU seconds used by the ffmpeg child of a job.",
    buckets=(1, 2, 5, 10, 20, 60, 120, 300, 600, 1800, 3600, 7200),
)
TRANSCODE_RETRIES = Counter(
    "tritontube_transcode_retry_count_total", "Transcode retries scheduled."
)
TRANSCODE_FAILURES = Counter(
    "tritontube_transcode_failures_total", "Jobs that ended FAILED, by reason.", ("reason",)
)
TRANSCODE_IN_FLIGHT = Gauge("tritontube_transcode_jobs_in_flight", "Jobs being processed now.")
TRANSCODE_CHUNKS_IN_FLIGHT = Gauge(
    "tritontube_transcode_chunks_in_flight", "Parts of chunked jobs being encoded now."
)
TRANSCODE_CHUNK_SECONDS = Histogram(
    "tritontube_transcode_chunk_seconds",
    "Wall time of one part of a chunked job (encode and upload), by kind (video, audio).",
    ("kind",),
    buckets=(1, 2, 5, 10, 20, 30, 60, 120, 240, 480, 960),
)
TRANSCODE_CHUNK_RETRIES = Counter(
    "tritontube_transcode_chunk_retries_total", "Parts of chunked jobs scheduled for another try."
)
TRANSCODE_SPEED = Histogram(
    "tritontube_transcode_speed_ratio",
    "Encode speed as multiples of real time.",
    buckets=(0.25, 0.5, 1, 2, 4, 8, 16, 32),
)
INDEX_FRESHNESS_SECONDS = Histogram(
    "tritontube_index_freshness_seconds",
    "State change (record timestamp) to searchable.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0),
)
PLAYBACK_INFO_ISSUED = Counter(
    "tritontube_playback_info_issued_total", "playbackInfo answers carrying signed media URLs."
)
PLAYBACK_MEDIA_BYTES = Counter(
    "tritontube_playback_media_bytes_total", "Media bytes streamed under signed URLs."
)
PLAYBACK_MEDIA_REFUSED = Counter(
    "tritontube_playback_media_refused_total", "Media requests refused, by reason.", ("reason",)
)
CONSUMER_LAG_RECORDS = Gauge(
    "tritontube_stream_consumer_lag_records",
    "Records in a partition assigned to this worker not yet processed and committed "
    "(high watermark - committed offset); the autoscaling signal.",
    ("topic", "partition"),
)
CONSUMER_ASSIGNED_PARTITIONS = Gauge(
    "tritontube_stream_consumer_assigned_partitions",
    "Partitions of agent input topics assigned to this worker.",
)
ARCHIVE_LAG_RECORDS = Gauge(
    "tritontube_archive_lag_records",
    "Records in a partition not yet in the archive (high watermark - archived end - 1).",
    ("topic", "partition"),
)
ARCHIVE_RECORDS_WRITTEN = Counter(
    "tritontube_archive_records_written_total", "Records written to the archive.", ("topic",)
)
ARCHIVE_FILES_WRITTEN = Counter(
    "tritontube_archive_files_written_total", "Archive files written.", ("topic",)
)
WATCH_EVENTS_ACCEPTED = Counter(
    "tritontube_watch_events_accepted_total", "Watch events accepted by the API and published."
)
WATCH_EVENTS_DUPLICATE = Counter(
    "tritontube_analytics_duplicate_events_total", "Watch events ignored as duplicates (event id)."
)
VIEWS_COUNTED = Counter("tritontube_analytics_views_total", "Views counted by the analytics agent.")
INDEX_DOCUMENTS_APPLIED = Counter(
    "tritontube_index_documents_applied_total", "Documents the indexer wrote (newer versions)."
)
INDEX_BATCH_SECONDS = Histogram(
    "tritontube_index_batch_duration_seconds",
    "Time to fold and bulk-upsert one indexer batch.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
RECOMMENDATION_SECONDS = Histogram(
    "tritontube_recommendation_duration_seconds",
    "Time to answer one recommendations request.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)


def observe_consumed_batch(agent: str, topic: str, count: int, oldest_ms: int | None) -> None:
    """Count a batch of consumed events and the queue latency of its oldest record."""
    EVENTS_CONSUMED.labels(agent, topic).inc(count)
    if oldest_ms:
        QUEUE_LATENCY_SECONDS.labels(agent).observe(max(0.0, time.time() - oldest_ms / 1000))


def observe_consumed(agent: str, topic: str, record_timestamp: float | None) -> None:
    """Count a consumed event and its queue latency (record timestamp to now, in seconds)."""
    EVENTS_CONSUMED.labels(agent, topic).inc()
    if record_timestamp:
        QUEUE_LATENCY_SECONDS.labels(agent).observe(max(0.0, time.time() - record_timestamp))
