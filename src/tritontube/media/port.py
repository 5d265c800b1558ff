"""The Transcoder port: what the transcode agent needs from a media toolkit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Protocol

from tritontube.domain.media import (
    AudioOutput,
    DashOutput,
    EncodeProgress,
    OutputFile,
    Probe,
    RenditionOutput,
    RenditionSpec,
)

__all__ = [
    "AudioOutput",
    "DashOutput",
    "OutputFile",
    "ProgressCallback",
    "RenditionOutput",
    "Transcoder",
]

ProgressCallback = Callable[[EncodeProgress], Awaitable[None]]


class Transcoder(Protocol):
    """Probe, package and poster-frame a local source file.

    Every method raises ``tritontube.domain.media.MediaError`` for a failure with a known
    reason; anything else is a bug.
    """

    async def probe(self, source: Path) -> Probe:
        """Inspect ``source``. Raises MediaError for empty, unreadable, or video-less input."""
        ...

    async def transcode(
        self,
        source: Path,
        out_dir: Path,
        plan: Sequence[RenditionSpec],
        probe: Probe,
        on_progress: ProgressCallback | None = None,
    ) -> DashOutput:
        """Encode every rendition of ``plan`` into one MPEG-DASH package in ``out_dir``
        (created if missing, must be empty) with ``out_dir / "manifest.mpd"``."""
        ...

    async def thumbnail(self, source: Path, out_path: Path, probe: Probe) -> None:
        """Write one JPEG poster frame, at most 640 pixels wide, to ``out_path``."""
        ...
