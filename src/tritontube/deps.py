"""The dependencies the worker and the HTTP app share, built once from settings.

Adapters here open no connection when built; the process that uses them owns their
lifecycle (``Deps.close``). The search index is not here: the worker opens it for writing
and the API for reading, each in its own lifecycle hook.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from tritontube.media.ffmpeg import FfmpegTranscoder
from tritontube.media.port import Transcoder
from tritontube.settings import Settings
from tritontube.storage.port import ObjectStore
from tritontube.storage.s3 import S3ObjectStore
from tritontube.streams.codec import AvroCodec, SchemaRegistry
from tritontube.streams.records import EventCodec


class Clock(Protocol):
    """Where "now" comes from (tests pin it)."""

    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True)
class Deps:
    """Long-lived collaborators of one process."""

    codec: EventCodec
    clock: Clock
    object_store: ObjectStore
    transcoder: Transcoder
    _s3: S3ObjectStore | None = None

    def close(self) -> None:
        if self._s3 is not None:
            self._s3.close()


def build_deps(settings: Settings) -> Deps:
    t = settings.transcode
    s3 = S3ObjectStore.from_settings(settings.s3)
    return Deps(
        codec=EventCodec(AvroCodec(SchemaRegistry())),
        clock=SystemClock(),
        object_store=s3,
        transcoder=FfmpegTranscoder(
            ffmpeg_path=t.ffmpeg,
            ffprobe_path=t.ffprobe,
            timeout_seconds=t.timeout_seconds,
            timeout_per_source_second=t.timeout_per_source_second,
            max_source_seconds=t.max_duration_seconds,
            memory_limit_bytes=t.memory_limit_bytes,
            niceness=t.niceness,
        ),
        _s3=s3,
    )
