"""DASH manifests as data: read a SegmentTimeline MPD, and join the MPDs of chunks into one.

Pure and synchronous; the only XML parsed here is what our own ffmpeg wrote (small,
trusted documents). ``read_tracks`` turns an MPD into one ``Track`` per Representation
with every segment's number, start, duration and file name: what the join checks, what
the checksums list, and what a playlist writer needs (an HLS media playlist over the same
CMAF segments is the init segment as ``EXT-X-MAP`` plus each segment's name and duration:
``Track.init`` and ``Track.segments``).

``join_chunks`` builds the manifest of a chunked encode: the video AdaptationSet of the
first chunk with every chunk's segments in one SegmentTimeline per Representation (each
chunk's MPD numbers its segments from where the previous chunk stopped), and the audio
AdaptationSet of the separate audio encode. It refuses timelines that do not meet exactly:
a gap or an overlap at a chunk boundary is a bug, never something to paper over.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction

__all__ = [
    "ManifestError",
    "Segment",
    "Track",
    "join_chunks",
    "read_tracks",
    "renumber",
]

_MPD_URI = "urn:mpeg:dash:schema:mpd:2011"
_NS = f"{{{_MPD_URI}}}"
# Keep the prefixes ffmpeg writes when a manifest is rewritten (no "ns0:" in the output).
ET.register_namespace("", _MPD_URI)
ET.register_namespace("xsi", "http://www.w3.org/2001/XMLSchema-instance")
ET.register_namespace("xlink", "http://www.w3.org/1999/xlink")

_NUMBER = re.compile(r"\$Number(?:%0(\d+)d)?\$")


class ManifestError(ValueError):
    """A manifest is not what our encoder writes, or chunk manifests do not fit together."""


@dataclass(frozen=True)
class Segment:
    """One media segment: ``start`` and ``duration`` in its track's timescale."""

    number: int
    start: int
    duration: int
    name: str

    @property
    def end(self) -> int:
        return self.start + self.duration


@dataclass(frozen=True)
class Track:
    """One Representation of a SegmentTimeline manifest."""

    representation_id: str
    content_type: str  # "video" | "audio"
    bandwidth: int
    codecs: str
    width: int
    height: int
    timescale: int
    init: str
    segments: tuple[Segment, ...]

    @property
    def start_seconds(self) -> Fraction:
        return Fraction(self.segments[0].start if self.segments else 0, self.timescale)

    @property
    def end_seconds(self) -> Fraction:
        return Fraction(self.segments[-1].end if self.segments else 0, self.timescale)


def _parse(mpd: str) -> ET.Element:
    try:
        return ET.fromstring(mpd)  # noqa: S314 - written by our own ffmpeg, or refused
    except ET.ParseError as exc:
        raise ManifestError(f"not a manifest: {exc}") from exc


def _content_type(adaptation: ET.Element, rep: ET.Element | None = None) -> str:
    explicit = adaptation.get("contentType")
    if explicit:
        return explicit
    mime = adaptation.get("mimeType") or (rep.get("mimeType") if rep is not None else "") or ""
    return mime.partition("/")[0]


def _int(element: ET.Element, name: str, default: int = 0) -> int:
    try:
        return int(element.get(name, default))
    except ValueError as exc:
        raise ManifestError(f"{name}={element.get(name)!r} is not an integer") from exc


def _entries(template: ET.Element) -> list[tuple[int, int]]:
    """(start, duration) of every segment of a SegmentTimeline, in order."""
    timeline = template.find(f"{_NS}SegmentTimeline")
    if timeline is None:
        raise ManifestError("a SegmentTemplate without a SegmentTimeline")
    out: list[tuple[int, int]] = []
    clock = 0
    for s in timeline.findall(f"{_NS}S"):
        clock = _int(s, "t", clock)
        duration = _int(s, "d")
        if duration <= 0:
            raise ManifestError("a segment without a duration")
        for _ in range(1 + max(0, _int(s, "r"))):
            out.append((clock, duration))
            clock += duration
    return out


def _name(pattern: str, rep_id: str, number: int | None = None) -> str:
    name = pattern.replace("$RepresentationID$", rep_id)
    if number is None:
        return name
    return _NUMBER.sub(_number_formatter(number), name)


def _number_formatter(number: int) -> Callable[[re.Match[str]], str]:
    def format_number(match: re.Match[str]) -> str:
        width = match.group(1)
        return str(number).zfill(int(width)) if width else str(number)

    return format_number


def read_tracks(mpd: str) -> tuple[Track, ...]:
    """Every Representation of ``mpd`` with its segments (ManifestError if the manifest is
    not a SegmentTimeline manifest with ``$Number$`` templates, as our encoder writes)."""
    root = _parse(mpd)
    tracks: list[Track] = []
    for adaptation in root.iter(f"{_NS}AdaptationSet"):
        shared = adaptation.find(f"{_NS}SegmentTemplate")
        for rep in adaptation.findall(f"{_NS}Representation"):
            own = rep.find(f"{_NS}SegmentTemplate")
            template = own if own is not None else shared
            if template is None:
                raise ManifestError("a Representation without a SegmentTemplate")
            rep_id = rep.get("id", "")
            media = template.get("media") or ""
            if not _NUMBER.search(media):
                raise ManifestError(f"media template {media!r} is not numbered")
            first = _int(template, "startNumber", 1)
            segments = tuple(
                Segment(first + i, start, duration, _name(media, rep_id, first + i))
                for i, (start, duration) in enumerate(_entries(template))
            )
            tracks.append(
                Track(
                    representation_id=rep_id,
                    content_type=_content_type(adaptation, rep),
                    bandwidth=_int(rep, "bandwidth"),
                    codecs=rep.get("codecs") or adaptation.get("codecs") or "",
                    width=_int(rep, "width"),
                    height=_int(rep, "height"),
                    timescale=_int(template, "timescale", 1),
                    init=_name(template.get("initialization") or "", rep_id),
                    segments=segments,
                )
            )
    return tuple(tracks)


def renumber(mpd: str, first_number: int) -> str:
    """``mpd`` with every SegmentTemplate numbering its segments from ``first_number``."""
    root = _parse(mpd)
    for template in root.iter(f"{_NS}SegmentTemplate"):
        template.set("startNumber", str(first_number))
    return _serialise(root)


def _serialise(root: ET.Element) -> str:
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def _timeline(entries: Iterable[tuple[int, int]]) -> ET.Element:
    """A SegmentTimeline for contiguous ``(start, duration)`` entries: ``t`` once, runs of
    equal durations as ``r``."""
    timeline = ET.Element(f"{_NS}SegmentTimeline")
    last: ET.Element | None = None
    last_duration = -1
    for index, (start, duration) in enumerate(entries):
        if last is not None and duration == last_duration:
            last.set("r", str(int(last.get("r", "0")) + 1))
            continue
        attrs = {"t": str(start)} if index == 0 else {}
        attrs["d"] = str(duration)
        last = ET.SubElement(timeline, f"{_NS}S", attrs)
        last_duration = duration
    return timeline


def _video_representations(root: ET.Element) -> list[ET.Element]:
    return [
        rep
        for adaptation in root.iter(f"{_NS}AdaptationSet")
        if _content_type(adaptation) == "video"
        for rep in adaptation.findall(f"{_NS}Representation")
    ]


def _seconds_text(value: Fraction) -> str:
    millis = -(-value.numerator * 1000 // value.denominator)  # rounded up
    return f"PT{millis // 1000}.{millis % 1000:03d}S"


def join_chunks(chunks: Sequence[str], audio: str | None = None, audio_id: str = "") -> str:
    """One manifest from the manifests of consecutive video chunks and of the audio.

    Each chunk's manifest lists the same video Representations (same ids, timescales and
    codecs) and numbers its segments from where the previous one stopped (``renumber``),
    starting exactly where the previous one ended. The result is the first chunk's
    manifest with every chunk's segments, each Representation's ``bandwidth`` the
    largest any chunk measured, and the audio AdaptationSet of ``audio`` (a manifest of
    the whole source's audio) appended with its Representation's id set to ``audio_id``.
    mediaPresentationDuration and maxSegmentDuration follow the joined media.
    """
    if not chunks:
        raise ManifestError("no chunks to join")
    parts = [read_tracks(text) for text in chunks]
    _check_chunks(parts)
    root = _parse(chunks[0])
    longest = Fraction(0)
    end = Fraction(0)
    for rep in _video_representations(root):
        rep_id = rep.get("id", "")
        tracks = [next(t for t in part if t.representation_id == rep_id) for part in parts]
        template = rep.find(f"{_NS}SegmentTemplate")
        if template is None:  # _check_chunks read it, so it is there
            raise ManifestError(f"representation {rep_id} has no SegmentTemplate")
        old = template.find(f"{_NS}SegmentTimeline")
        if old is not None:
            template.remove(old)
        entries = [(s.start, s.duration) for track in tracks for s in track.segments]
        template.append(_timeline(entries))
        template.set("startNumber", str(tracks[0].segments[0].number))
        rep.set("bandwidth", str(max(t.bandwidth for t in tracks)))
        longest = max(longest, *(Fraction(d, tracks[0].timescale) for _, d in entries))
        end = max(end, tracks[-1].end_seconds)
    if audio is not None:
        audio_end, audio_longest = _append_audio(root, audio, audio_id)
        end, longest = max(end, audio_end), max(longest, audio_longest)
    root.set("mediaPresentationDuration", _seconds_text(end))
    root.set("maxSegmentDuration", _seconds_text(longest))
    root.set("minBufferTime", _seconds_text(2 * longest))
    return _serialise(root)


def _check_chunks(parts: Sequence[Sequence[Track]]) -> None:
    first = {t.representation_id: t for t in parts[0] if t.content_type == "video"}
    if not first:
        raise ManifestError("the first chunk has no video representation")
    for index, part in enumerate(parts):
        mine = {t.representation_id: t for t in part if t.content_type == "video"}
        if mine.keys() != first.keys():
            raise ManifestError(f"chunk {index} lists representations {sorted(mine)}")
        for rep_id, track in mine.items():
            ref = first[rep_id]
            same = (track.timescale, track.codecs, track.width, track.height, track.init)
            if same != (ref.timescale, ref.codecs, ref.width, ref.height, ref.init):
                raise ManifestError(f"chunk {index}: representation {rep_id} differs")
            if not track.segments:
                raise ManifestError(f"chunk {index}: representation {rep_id} has no segments")
    for index in range(1, len(parts)):
        before = {t.representation_id: t for t in parts[index - 1]}
        for track in parts[index]:
            if track.content_type != "video":
                continue
            previous = before[track.representation_id]
            last, head = previous.segments[-1], track.segments[0]
            if head.start != last.end:
                gap = Fraction(head.start - last.end, track.timescale)
                raise ManifestError(
                    f"chunk {index} starts {float(gap) * 1000:+.3f} ms from where chunk "
                    f"{index - 1} ends (representation {track.representation_id})"
                )
            if head.number != last.number + 1:
                raise ManifestError(
                    f"chunk {index} numbers its first segment {head.number}, "
                    f"expected {last.number + 1}"
                )


def _append_audio(root: ET.Element, audio: str, audio_id: str) -> tuple[Fraction, Fraction]:
    source = _parse(audio)
    sets = [a for a in source.iter(f"{_NS}AdaptationSet") if _content_type(a) == "audio"]
    if len(sets) != 1:
        raise ManifestError(f"the audio manifest has {len(sets)} audio adaptation sets")
    adaptation = sets[0]
    reps = adaptation.findall(f"{_NS}Representation")
    if len(reps) != 1:
        raise ManifestError(f"the audio manifest has {len(reps)} representations")
    reps[0].set("id", audio_id)
    period = root.find(f"{_NS}Period")
    if period is None:
        raise ManifestError("the chunk manifest has no Period")
    ids = [int(a.get("id", "0")) for a in period.findall(f"{_NS}AdaptationSet")]
    adaptation.set("id", str(max(ids, default=-1) + 1))
    period.append(adaptation)
    (track,) = read_tracks(_serialise(source))
    if not track.segments:
        raise ManifestError("the audio manifest has no segments")
    longest = max(Fraction(s.duration, track.timescale) for s in track.segments)
    return track.end_seconds, longest
