"""The Transcoder port: what the transcode agent needs from a media toolkit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from tritontube.domain.media import (
    AudioOutput,
    DashOutput,
    EncodeProgress,
    OutputFile,
    PartOutput,
    Probe,
    RenditionOutput,
    RenditionSpec,
)

if TYPE_CHECKING:
    from tritontube.domain.chunks import ChunkPlan, ChunkSpan

__all__ = [
    "AudioOutput",
    "DashOutput",
    "OutputFile",
    "ProgressCallback",
    "RemoteSource",
    "RenditionOutput",
    "Source",
    "Transcoder",
]

ProgressCallback = Callable[[EncodeProgress], Awaitable[None]]


@dataclass(frozen=True)
class RemoteSource:
    """A source read straight from the object store over HTTP(S): ``url`` is a pre-signed GET
    (a secret while it is valid: never log it), ``size_bytes`` what the store reported."""

    url: str = field(repr=False)
    size_bytes: int

    def __str__(self) -> str:
        return self.url.partition("?")[0]


#: What the transcoder reads: a local file, or an object streamed from the store.
Source = Path | RemoteSource


class Transcoder(Protocol):
    """Probe, package and poster-frame a source: a local file or an object in the store.

    Every method raises ``tritontube.domain.media.MediaError`` for a failure with a known
    reason; anything else is a bug.
    """

    async def probe(self, source: Source) -> Probe:
        """Inspect ``source``. Raises MediaError for empty, unreadable, or video-less input."""
        ...

    async def transcode(
        self,
        source: Source,
        out_dir: Path,
        plan: Sequence[RenditionSpec],
        probe: Probe,
        on_progress: ProgressCallback | None = None,
    ) -> DashOutput:
        """Encode every rendition of ``plan`` into one MPEG-DASH package in ``out_dir``
        (created if missing, must be empty) with ``out_dir / "manifest.mpd"``."""
        ...

    async def thumbnail(self, source: Source, out_path: Path, probe: Probe) -> None:
        """Write one JPEG poster frame, at most 640 pixels wide, to ``out_path``."""
        ...

    async def plan_chunks(self, source: Source, probe: Probe, chunk_seconds: float) -> ChunkPlan:
        """Cut ``source`` into chunks of about ``chunk_seconds`` at segment boundaries, where
        its keyframes make the cuts cheap (``tritontube.domain.chunks``)."""
        ...

    async def encode_chunk(
        self,
        source: Source,
        out_dir: Path,
        probe: Probe,
        renditions: Sequence[RenditionSpec],
        rate: Fraction,
        segment_seconds: int,
        span: ChunkSpan,
        on_progress: ProgressCallback | None = None,
    ) -> PartOutput:
        """Encode one chunk's frames into every rendition (no audio) in ``out_dir``
        (created if missing, must be empty), segments numbered as in the whole video."""
        ...

    async def encode_audio(
        self,
        source: Source,
        out_dir: Path,
        probe: Probe,
        renditions: Sequence[RenditionSpec],
        representation_id: str,
        on_progress: ProgressCallback | None = None,
    ) -> PartOutput:
        """Encode the whole source's audio once, as representation ``representation_id``."""
        ...
