"""What an encode left in its output directory: files, checksums, manifests.

``collect_outputs`` reads a one-pass DASH package (the manifest ffmpeg wrote, every file
with its size and SHA-256) into a ``DashOutput``; ``collect_part`` does the same for one
part of a chunked encode after ``renumber_part`` / ``rename_representation`` gave its
files the names they have in the joined package.
"""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from tritontube.domain.manifest import read_tracks, renumber
from tritontube.domain.media import (
    AudioOutput,
    FailureReason,
    MediaError,
    OutputFile,
    RenditionOutput,
    RenditionSpec,
)
from tritontube.domain.transcode import exact_duration, presentation_seconds
from tritontube.media.arguments import MANIFEST_NAME
from tritontube.media.probe import as_int

__all__ = [
    "collect_outputs",
    "collect_part",
    "rename_representation",
    "renumber_part",
    "sha256_of",
    "write_exact_duration",
]

MPD_NS = "{urn:mpeg:dash:schema:mpd:2011}"


def sha256_of(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _files_of(representation_id: str, files: Sequence[OutputFile]) -> tuple[Path, ...]:
    init, chunk = f"init-{representation_id}.", f"chunk-{representation_id}-"
    mine = [f.path for f in files if f.path.name.startswith((init, chunk))]
    return tuple(sorted(mine, key=lambda p: (not p.name.startswith(init), p.name)))


def write_exact_duration(manifest: Path) -> float | None:
    """Rewrite the manifest's duration (``exact_duration``) and return it in seconds."""
    text = exact_duration(manifest.read_text(encoding="utf-8"))
    manifest.write_text(text, encoding="utf-8")
    return presentation_seconds(text)


def _representations(manifest: Path) -> list[tuple[str, ET.Element]]:
    """(content type, Representation element) for every Representation in the MPD."""
    root = ET.parse(manifest).getroot()  # noqa: S314 - our own ffmpeg wrote this file
    found: list[tuple[str, ET.Element]] = []
    for adaptation in root.iter(f"{MPD_NS}AdaptationSet"):
        for rep in adaptation.iter(f"{MPD_NS}Representation"):
            mime = rep.get("mimeType") or adaptation.get("mimeType") or ""
            kind = adaptation.get("contentType") or mime.partition("/")[0]
            found.append((kind, rep))
    return found


def collect_outputs(
    out_dir: Path, plan: Sequence[RenditionSpec]
) -> tuple[tuple[OutputFile, ...], tuple[RenditionOutput, ...], AudioOutput | None]:
    files = tuple(
        OutputFile(path.relative_to(out_dir), path.stat().st_size, sha256_of(path))
        for path in sorted(out_dir.rglob("*"))
        if path.is_file()
    )
    reps = _representations(out_dir / MANIFEST_NAME)
    video_reps = [rep for kind, rep in reps if kind != "audio"]
    audio_reps = [rep for kind, rep in reps if kind == "audio"]
    if len(video_reps) != len(plan):
        raise MediaError(
            FailureReason.TRANSCODE_FAILED,
            detail=f"manifest has {len(video_reps)} video representations, planned {len(plan)}",
        )
    # Video representations are numbered in output-stream order, which is plan order.
    videos = tuple(
        _rendition_output(spec, rep, files) for spec, rep in zip(plan, video_reps, strict=True)
    )
    audio = None
    if audio_reps:
        rep_id = audio_reps[0].get("id", "")
        audio = AudioOutput(
            rep_id, as_int(audio_reps[0].get("bandwidth")), _files_of(rep_id, files)
        )
    return files, videos, audio


def _rendition_output(
    spec: RenditionSpec, rep: ET.Element, files: Sequence[OutputFile]
) -> RenditionOutput:
    rep_id = rep.get("id", "")
    width, height = as_int(rep.get("width")), as_int(rep.get("height"))
    if (width, height) != (spec.width, spec.height):
        raise MediaError(
            FailureReason.TRANSCODE_FAILED,
            detail=f"representation {rep_id} is {width}x{height}, planned {spec.width}x"
            f"{spec.height}",
        )
    bandwidth = as_int(rep.get("bandwidth"))
    return RenditionOutput(spec.name, width, height, bandwidth, rep_id, _files_of(rep_id, files))


# --------------------------------------------------------------------------- chunk parts

_MEDIA_NAME = re.compile(r"^chunk-(?P<rep>[^-]+)-(?P<number>\d+)\.m4s$")


def renumber_part(out_dir: Path, first_segment: int, expected_segments: int | None) -> str:
    """Rename a chunk's media segments to their numbers in the whole video (its first is
    ``first_segment``) and rewrite its manifest to say so; the manifest's text.

    A chunk that did not produce ``expected_segments`` segments in every representation
    (its keyframes were not where the plan put them: a source whose timestamps jump) is a
    TRANSCODE_FAILED: its neighbours' segment numbers would no longer fit."""
    manifest = out_dir / MANIFEST_NAME
    text = manifest.read_text(encoding="utf-8")
    tracks = read_tracks(text)
    for track in tracks:
        numbers = [s.number for s in track.segments]
        if numbers != list(range(1, len(numbers) + 1)):
            raise MediaError(FailureReason.TRANSCODE_FAILED, detail="unexpected segment numbers")
        if expected_segments is not None and len(numbers) != expected_segments:
            raise MediaError(
                FailureReason.TRANSCODE_FAILED,
                detail=f"representation {track.representation_id}: {len(numbers)} segments, "
                f"planned {expected_segments}",
            )
        if not numbers:
            raise MediaError(FailureReason.CORRUPT_MEDIA, detail="the chunk has no frames")
    shift = first_segment - 1
    if shift:
        for track in tracks:
            # Highest first: a new name is never an old name still to be moved.
            for segment in sorted(track.segments, key=lambda s: -s.number):
                renamed = _MEDIA_NAME.sub(
                    lambda m: (
                        f"chunk-{m['rep']}-{int(m['number']) + shift:0{len(m['number'])}d}.m4s"
                    ),
                    segment.name,
                )
                (out_dir / segment.name).rename(out_dir / renamed)
    text = renumber(text, first_segment)
    manifest.write_text(text, encoding="utf-8")
    return text


def rename_representation(out_dir: Path, old: str, new: str) -> str:
    """Give representation ``old`` (its files and its manifest entry) the id ``new``; the
    manifest's text. The audio of a chunked job is encoded alone (representation 0) and
    joins the video ladder as the representation after the last rendition."""
    manifest = out_dir / MANIFEST_NAME
    root = ET.fromstring(manifest.read_text(encoding="utf-8"))  # noqa: S314 - our own ffmpeg's
    for rep in root.iter(f"{MPD_NS}Representation"):
        if rep.get("id") == old:
            rep.set("id", new)
    for path in out_dir.iterdir():
        name = path.name
        if name == f"init-{old}.m4s":
            path.rename(out_dir / f"init-{new}.m4s")
        elif (match := _MEDIA_NAME.match(name)) and match["rep"] == old:
            path.rename(out_dir / f"chunk-{new}-{match['number']}.m4s")
    text = ET.tostring(root, encoding="unicode", xml_declaration=True)
    manifest.write_text(text, encoding="utf-8")
    return text


def collect_part(out_dir: Path, manifest: str) -> tuple[OutputFile, ...]:
    """Every file ``manifest`` references, with size and SHA-256, init segments first."""
    names: list[str] = []
    for track in read_tracks(manifest):
        names += [track.init, *(s.name for s in track.segments)]
    missing = [n for n in names if not (out_dir / n).is_file()]
    if missing:
        raise MediaError(
            FailureReason.TRANSCODE_FAILED,
            detail=f"the chunk manifest references {len(missing)} missing file(s): {missing[:3]}",
        )
    return tuple(
        OutputFile(Path(name), (out_dir / name).stat().st_size, sha256_of(out_dir / name))
        for name in names
    )
