"""The dependencies the worker and the HTTP app share, built once from settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from tritontube.settings import Settings
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
    """Long-lived collaborators; adapters with connections are built by the process that owns
    their lifecycle (see ``agents.app`` and ``http.app``)."""

    codec: EventCodec
    clock: Clock


def build_deps(settings: Settings) -> Deps:
    del settings  # nothing here depends on settings yet; the signature is the composition seam
    return Deps(codec=EventCodec(AvroCodec(SchemaRegistry())), clock=SystemClock())
