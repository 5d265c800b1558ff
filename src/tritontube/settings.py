"""Settings: one frozen class, read once at the entry point (``cli.main``) and passed down.

Every field can be set from the environment with the prefix ``TRITONTUBE_``; nested groups use
``__`` (``TRITONTUBE_HTTP__PORT=9000``, ``TRITONTUBE_KAFKA__BOOTSTRAP_SERVERS=host:9092``).
The defaults describe the embedded stack on loopback; production differs by settings only
(see ``docker-compose.kafka.yml`` and the README).
"""

from __future__ import annotations

import hashlib
import hmac
import socket
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

# The placeholder default of ``auth.secret``: public, so never accepted outside dev mode.
SHIPPED_AUTH_SECRET = "dev-only-secret-change-me-0123456789abcdef"  # noqa: S105 - a known placeholder
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 - names them, binds nothing


class _Group(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KafkaSettings(_Group):
    """The event log."""

    bootstrap_servers: str = Field(
        "127.0.0.1:9092", description="Comma-separated host:port list of Kafka brokers."
    )
    embedded_broker_compat: bool = Field(
        False,
        description=(
            "Apply the client-side fixes for the embedded Tansu broker's known defects "
            "(tritontube.streams.broker_compat). Harmless on Apache Kafka; `tritontube dev` "
            "and the tests turn it on."
        ),
    )
    embedded_log_storage: Literal["object-store", "memory"] = Field(
        "object-store",
        description=(
            "Embedded stack only: where its broker (Tansu) keeps the log. `object-store`: in "
            "the embedded SeaweedFS, durable (an acknowledged event survives kill -9 of any "
            "process and a restart); `memory`: lost with the broker, independent of the store "
            "(tests that take the store away while the log stays up)."
        ),
    )
    partitions: int = Field(4, ge=1, description="Partitions for topics this app creates.")
    replication_factor: int = Field(1, ge=1, description="Replication for created topics.")
    session_timeout_ms: int = Field(
        6000,
        ge=1000,
        description=(
            "Consumer group session timeout. The embedded broker holds a JoinGroup for half of "
            "it, so a short value keeps (re)joins fast."
        ),
    )
    heartbeat_interval_ms: int = Field(1000, ge=100, description="Consumer heartbeat interval.")
    publish_timeout_seconds: float = Field(
        3.0,
        gt=0,
        description=(
            "Longest the API waits for the broker to acknowledge an event before answering 503; "
            "after a failure it answers 503 at once for `publish_cooldown_seconds`."
        ),
    )
    publish_cooldown_seconds: float = Field(
        2.0, ge=0, description="How long the API fails fast after a failed publish."
    )
    schema_registry_url: str | None = Field(
        None,
        description=(
            "Confluent-compatible schema registry. Unset: messages use Avro single-object "
            "encoding (schema fingerprint in every message)."
        ),
    )


class S3Settings(_Group):
    """The object store holding uploads, DASH output and the event archive."""

    endpoint_url: str | None = Field(
        "http://127.0.0.1:8333",
        description="S3 endpoint; None means AWS's own endpoints for `region`.",
    )
    public_endpoint_url: str | None = Field(
        None,
        description=(
            "Endpoint as browsers reach it (pre-signed POST and playback URLs). "
            "Defaults to endpoint_url."
        ),
    )
    region: str = Field("us-east-1", description="S3 region.")
    access_key_id: str | None = Field(
        None,
        description=(
            "Access key id. Unset: boto3's default chain (environment, instance role); the "
            "embedded stack (`tritontube dev`) generates keys once per data_dir and keeps them "
            "in <data_dir>/objects/credentials.json (0600), which the CLI also reads."
        ),
    )
    secret_access_key: SecretStr | None = Field(
        None, description="Secret access key (unset: as access_key_id)."
    )
    bucket: str = Field("tritontube", description="Bucket for uploads, media and archive.")
    force_path_style: bool = Field(True, description="Path-style addressing (MinIO, SeaweedFS).")


class SearchSettings(_Group):
    """The search backend behind the indexer port."""

    backend: Literal["tantivy", "opensearch"] = Field(
        "tantivy", description="`tantivy` (embedded, on disk) or `opensearch`."
    )
    path: Path = Field(
        Path(".tritontube/search"), description="Directory of the embedded tantivy index."
    )
    opensearch_url: str = Field("http://127.0.0.1:9200", description="OpenSearch base URL.")
    index_name: str = Field("tritontube-videos", description="Index (or alias) name.")


class HttpSettings(_Group):
    """The REST API and SPA."""

    host: str = Field("127.0.0.1", description="Listen address.")
    port: int = Field(8080, ge=0, le=65535, description="Listen port (0 picks a free one).")
    public_url: str | None = Field(
        None,
        description=(
            "Base URL as users reach it (signed media URLs are built on it, never on a request's "
            "Host header); defaults to http://host:port, which `tritontube api` refuses when the "
            "host is a wildcard address or the port is 0."
        ),
    )
    cors_origins: tuple[str, ...] = Field(
        (), description="Origins allowed by CORS; empty means same-origin only."
    )
    worker_urls: tuple[str, ...] = Field(
        (),
        description=(
            "Base URLs of workers to ask first (any one will do: it routes each read to the "
            "partition's owner and names every other member). Empty: the worker of these "
            "settings (worker.advertised_url, else worker.web_host:worker.web_port)."
        ),
    )
    header_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description=(
            "A connection that has not sent a request's complete headers this long after their "
            "first byte (or after connecting) is closed: slow clients cannot hold connections."
        ),
    )
    body_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description=(
            "A request body (at most 256 KiB of JSON) not received this long after the "
            "handler asked for it is answered 408: a slow body cannot hold a connection either."
        ),
    )

    @property
    def base_url(self) -> str:
        """The URL users reach this API at: ``public_url`` or ``http://host:port``."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url_is_guessed(self) -> bool:
        """True when ``base_url`` cannot be right: no public_url and a wildcard host or port 0."""
        return not self.public_url and (self.host in WILDCARD_HOSTS or self.port == 0)


class GrpcSettings(_Group):
    """The gRPC API (``tritontube grpc``, ``proto/web.proto``): the REST API's calls over
    HTTP/2, the same tokens, rules and answers."""

    enabled: bool = Field(True, description="Run the gRPC server in the embedded stack.")
    host: str = Field("127.0.0.1", description="Listen address.")
    port: int = Field(50051, ge=1, le=65535, description="Listen port.")
    health_interval_seconds: float = Field(
        2.0,
        gt=0,
        description=(
            "How often the standard health service re-checks broker, object store, search "
            "and workers (SERVING only while all answer, as the REST API's /readyz)."
        ),
    )
    grace_seconds: float = Field(
        5.0, ge=0, description="On SIGTERM, how long calls in flight may finish."
    )


class RateLimitSettings(_Group):
    """Per-user token buckets on the write endpoints (enforced by each API process on its own)."""

    enabled: bool = Field(True, description="Enforce the limits below.")
    upload_per_minute: float = Field(
        30.0, gt=0, description="Sustained upload sessions + completions per user per minute."
    )
    upload_burst: int = Field(10, ge=1, description="Upload requests a user may burst.")
    watch_events_per_minute: float = Field(
        600.0, gt=0, description="Sustained watch-event requests (single or batch) per user."
    )
    watch_events_burst: int = Field(60, ge=1, description="Watch-event requests a user may burst.")
    max_tracked_users: int = Field(
        100_000, ge=1, description="Buckets kept in memory; the least recently used go first."
    )


class WorkerSettings(_Group):
    """The Faust worker."""

    app_id: str = Field("tritontube", description="Faust app id (prefix of internal topics).")
    store: str = Field(
        "memory://", description="Table store URL: `memory://` or `rocksdb://` (with rocksdict)."
    )
    data_dir: Path = Field(Path(".tritontube/worker"), description="Faust data directory.")
    web_host: str = Field("127.0.0.1", description="Listen address of the worker web server.")
    web_port: int = Field(6066, ge=1, le=65535, description="Port of the worker web server.")
    advertised_url: str | None = Field(
        None,
        description=(
            "URL other workers and the API reach this worker's web server at (Faust's "
            "canonical URL, shared with the group at every rebalance). None: "
            "http://web_host:web_port, with this machine's host name when web_host is a "
            "wildcard address (0.0.0.0 or ::)."
        ),
    )
    standby_replicas: int = Field(
        1,
        ge=0,
        description=(
            "Standby copies of each table partition kept warm on other workers, so a worker "
            "that takes over a partition need not replay its changelog first (Faust's "
            "table_standby_replicas; no effect with a single worker)."
        ),
    )
    internal_token: SecretStr | None = Field(
        None,
        description=(
            "Bearer token the API and the workers present to the workers' query views. "
            "None: derived from auth.secret, so one secret configures a whole stack."
        ),
    )
    transcode_enabled: bool = Field(
        True,
        description=(
            "Run the transcode agent in this worker. Give every worker of one app id the same "
            "value; tests that drive transcode events by hand turn it off."
        ),
    )
    lag_interval_seconds: float = Field(
        5.0, gt=0, description="How often the worker refreshes its consumer-lag gauges."
    )


class AuthSettings(_Group):
    """Bearer tokens (JWT, HS256)."""

    secret: SecretStr = Field(
        SecretStr(SHIPPED_AUTH_SECRET),
        description=(
            "HS256 signing secret (media URL and page-token keys derive from it); set a long "
            "random value. `tritontube api`/`worker` refuse the shipped default unless dev_mode "
            "is on; `tritontube dev` replaces it with a random secret kept in data_dir."
        ),
    )
    issuer: str = Field("tritontube", description="`iss` claim of minted tokens.")
    token_ttl_seconds: int = Field(86400, ge=60, description="Lifetime of minted tokens.")


class UploadSettings(_Group):
    """Upload sessions."""

    session_ttl_seconds: int = Field(
        900, ge=1, description="Upload session (pre-signed POST) validity."
    )
    expiry_scan_seconds: float = Field(
        30.0, gt=0, description="How often the worker expires abandoned upload sessions."
    )
    max_size_bytes: int = Field(
        2 * 1024**3, ge=1, description="Largest upload in one request (pre-signed POST)."
    )
    multipart_threshold_bytes: int = Field(
        64 * 1024**2,
        ge=1,
        description=(
            "Clients that can upload in parts (`resumable: true`, the SPA) get a multipart "
            "session above this size: parts in parallel, resumable after a reload."
        ),
    )
    multipart_max_size_bytes: int = Field(
        20 * 1024**3, ge=1, description="Largest upload in parts (at most 10,000 parts)."
    )
    part_size_bytes: int = Field(
        16 * 1024**2,
        ge=5 * 1024**2,
        description="Size of each part but the last (S3's minimum is 5 MiB); larger when the "
        "upload would need more than 10,000 parts.",
    )
    multipart_session_ttl_seconds: int = Field(
        24 * 3600,
        ge=1,
        description="Validity of a multipart session: a large upload may be resumed for this "
        "long; then it expires and its parts are aborted.",
    )
    part_url_ttl_seconds: int = Field(
        3600, ge=1, description="Validity of one pre-signed part URL (the client asks again)."
    )
    allowed_content_types: tuple[str, ...] = Field(
        (
            "video/mp4",
            "video/x-m4v",
            "video/quicktime",
            "video/webm",
            "video/x-matroska",
            "video/x-msvideo",
            "video/3gpp",
            "video/3gpp2",
            "video/mpeg",
            "video/mp2t",
            "video/ogg",
            "video/x-flv",
            "video/x-ms-wmv",
            "video/x-ms-asf",
        ),
        description="Content types accepted for upload (all must be video/*); every one is a "
        "container the transcoder demuxes.",
    )


class TranscodeSettings(_Group):
    """The transcoding worker."""

    ladder: tuple[str, ...] = Field(
        ("1080p", "720p", "480p"), description="Rendition names to produce, from the seed."
    )
    max_attempts: int = Field(4, ge=1, description="Attempts before a job is marked FAILED.")
    backoff_base_seconds: float = Field(1.0, gt=0, description="First retry delay.")
    backoff_max_seconds: float = Field(60.0, gt=0, description="Largest retry delay.")
    timeout_seconds: float = Field(
        3600.0,
        gt=0,
        description="Wall-clock limit of one ffmpeg run, before the allowance per second of "
        "source (timeout_per_source_second).",
    )
    timeout_per_source_second: float = Field(
        6.0,
        ge=0,
        description="Wall-clock seconds added to an encode's timeout per second of source "
        "(the probed duration, or what ffmpeg has encoded once past it, at most "
        "max_duration_seconds): a long upload gets the time it needs (2 cores encode 1080p "
        "camera footage at about real time, 10-bit HDR at about half of it), a hung ffmpeg "
        "still ends.",
    )
    max_duration_seconds: float = Field(4 * 3600.0, gt=0, description="Longest accepted source.")
    max_pixels: int = Field(4096 * 2304, gt=0, description="Largest accepted source frame size.")
    memory_limit_bytes: int = Field(4 * 1024**3, gt=0, description="ffmpeg address-space ceiling.")
    scratch_dir: Path | None = Field(None, description="Temporary directory; None = system tmp.")
    stream_source: bool = Field(
        True,
        description="ffmpeg reads the upload straight from the object store (a pre-signed GET "
        "on the store's endpoint); False downloads it into scratch first.",
    )
    niceness: int = Field(
        10,
        ge=0,
        le=19,
        description="CPU niceness of ffmpeg children: encodes yield to event processing.",
    )
    ffmpeg: str = Field("ffmpeg", description="ffmpeg executable.")
    ffprobe: str = Field("ffprobe", description="ffprobe executable.")
    # Chunked transcoding (agents/chunks.py, docs/transcoding.md).
    chunk_threshold_seconds: float = Field(
        180.0,
        ge=0,
        description="Sources whose video is longer than this are cut into chunks that any "
        "worker encodes (MP4/QuickTime and Matroska/WebM sources; others take the one pass); "
        "0 never cuts.",
    )
    chunk_seconds: float = Field(
        60.0,
        ge=2,
        description="Target length of a chunk, in seconds of video (cuts land on segment "
        "boundaries near a source keyframe).",
    )
    max_concurrent_chunks: int = Field(
        1,
        ge=1,
        le=16,
        description="Chunks one worker encodes at once (each ffmpeg uses every core; each "
        "needs up to memory_limit_bytes and the scratch space of one chunk's output).",
    )

    @property
    def longest_run_seconds(self) -> float:
        """The timeout of an encode of the longest source accepted."""
        return self.timeout_seconds + self.timeout_per_source_second * self.max_duration_seconds


class PlaybackSettings(_Group):
    """Signed media URLs (manifest, segments, thumbnails) served under ``/media/``."""

    media_url_ttl_seconds: int = Field(
        6 * 3600,
        ge=1,
        description=(
            "Lifetime of a signed media URL. Every segment of a session reuses the manifest's "
            "token, so this must outlast the longest viewing (pauses included)."
        ),
    )
    media_url_bucket_seconds: int = Field(
        60,
        ge=1,
        description=(
            "Expiries are rounded up to a multiple of this, so viewers of one video within a "
            "bucket share URLs (cache-friendly for a CDN)."
        ),
    )
    media_secret: SecretStr | None = Field(
        None,
        description="HMAC key of media URLs; None derives one from auth.secret.",
    )


class ArchiveSettings(_Group):
    """The event archive: every topic's records as Avro container files in the object store."""

    enabled: bool = Field(
        True, description="Run the archiver (`tritontube archiver`) in the embedded stack."
    )
    web_host: str = Field("127.0.0.1", description="Listen address of the archiver's /metrics.")
    web_port: int = Field(6070, ge=1, le=65535, description="Port of the archiver's /metrics.")
    prefix: str = Field("archive/", description="Object-store key prefix of the archive.")
    flush_records: int = Field(
        5000, ge=1, description="Flush a partition's buffer once it holds this many records."
    )
    flush_bytes: int = Field(
        8 * 1024**2, ge=1024, description="... or once its keys and values reach this many bytes."
    )
    flush_interval_seconds: float = Field(
        5.0,
        gt=0,
        description="... or once its oldest record waited this long.",
    )
    restore_on_start: bool = Field(
        False,
        description=(
            "Embedded stack only: on start, produce the archived records back into empty "
            "partitions of the broker before the worker starts. Off: the embedded broker is "
            "durable (Tansu on the object store); `tritontube archive restore` does it by hand."
        ),
    )


class AnalyticsSettings(_Group):
    """Watch analytics, the search indexer and recommendations."""

    min_view_seconds: float = Field(
        10.0, gt=0, description="Watched time after which a play counts as a view."
    )
    view_window_seconds: int = Field(
        86400, ge=1, description="A user counts at most one view of a video per window."
    )
    max_gap_seconds: float = Field(
        30.0,
        gt=0,
        description="Most wall time credited between two events of one viewer (lost heartbeats).",
    )
    trending_window_seconds: int = Field(
        86400, ge=1, description="Trending looks at activity within this sliding window."
    )
    trending_step_seconds: int = Field(
        3600, ge=1, description="Hop (bucket) size of the trending window."
    )
    trending_top_k: int = Field(200, ge=1, description="Trending videos kept per partition.")
    history_size: int = Field(200, ge=1, description="Videos kept in a user's watch history.")
    recent_event_ids: int = Field(
        64, ge=1, description="Watch event ids remembered per viewer and video (dedupe)."
    )
    recent_viewers: int = Field(
        20, ge=0, description="Recent viewers kept per video (co-watching signal)."
    )
    index_batch_size: int = Field(
        2000,
        ge=1,
        description="Most records the search join and the index writer take per batch (a "
        "batch is what one fetch brought: the writer commits once per batch).",
    )


class Settings(BaseSettings):
    """All of TritonTube's configuration. Build once with ``Settings()`` in ``cli.main``."""

    model_config = SettingsConfigDict(
        env_prefix="TRITONTUBE_",
        env_nested_delimiter="__",
        frozen=True,
        extra="forbid",
    )

    kafka: KafkaSettings = Field(default_factory=KafkaSettings, description="Event log.")
    s3: S3Settings = Field(default_factory=S3Settings, description="Object store.")
    search: SearchSettings = Field(default_factory=SearchSettings, description="Search backend.")
    http: HttpSettings = Field(default_factory=HttpSettings, description="REST API and SPA.")
    grpc: GrpcSettings = Field(default_factory=GrpcSettings, description="gRPC API.")
    worker: WorkerSettings = Field(default_factory=WorkerSettings, description="Faust worker.")
    auth: AuthSettings = Field(default_factory=AuthSettings, description="Bearer tokens.")
    upload: UploadSettings = Field(default_factory=UploadSettings, description="Uploads.")
    analytics: AnalyticsSettings = Field(
        default_factory=AnalyticsSettings, description="Watch analytics and search indexing."
    )
    rate_limit: RateLimitSettings = Field(
        default_factory=RateLimitSettings, description="Per-user rate limits of the API."
    )
    playback: PlaybackSettings = Field(
        default_factory=PlaybackSettings, description="Signed media URLs."
    )
    transcode: TranscodeSettings = Field(
        default_factory=TranscodeSettings, description="Transcoding."
    )
    archive: ArchiveSettings = Field(default_factory=ArchiveSettings, description="Event archive.")
    data_dir: Path = Field(
        Path(".tritontube"),
        description="Root of the embedded stack's on-disk state (object store, search index).",
    )
    log_level: str = Field("INFO", description="Python logging level.")
    log_format: Literal["json", "console"] = Field(
        "json",
        description=(
            "`json`: one JSON object per line with bound fields (video_id, job_id, topic, "
            "partition, offset, request_id); `console`: the same for a terminal."
        ),
    )
    dev_mode: bool = Field(
        False,
        description=(
            "Development mode: `tritontube api`/`worker` accept the shipped default auth secret. "
            "Never in production; `tritontube dev` does not need it (it makes its own secret)."
        ),
    )

    @property
    def uses_shipped_secret(self) -> bool:
        """True when ``auth.secret`` is the public placeholder."""
        return self.auth.secret.get_secret_value() == SHIPPED_AUTH_SECRET

    def worker_advertised_url(self) -> str:
        """Where this worker's web server is reached (see ``worker.advertised_url``)."""
        w = self.worker
        if w.advertised_url:
            return w.advertised_url.rstrip("/")
        host = w.web_host
        if host in WILDCARD_HOSTS:
            # Bound to every address: advertise this machine's own (a container's IP).
            host = socket.gethostbyname(socket.gethostname())
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{w.web_port}"

    def worker_seed_urls(self) -> tuple[str, ...]:
        """The workers the API asks first (see ``http.worker_urls``)."""
        urls = self.http.worker_urls or (self.worker_advertised_url(),)
        return tuple(u.rstrip("/") for u in urls)

    def internal_token(self) -> SecretStr:
        """The bearer token of the workers' query views (see ``worker.internal_token``)."""
        if self.worker.internal_token is not None:
            return self.worker.internal_token
        key = self.auth.secret.get_secret_value().encode()
        return SecretStr(hmac.new(key, b"tritontube worker queries", hashlib.sha256).hexdigest())
