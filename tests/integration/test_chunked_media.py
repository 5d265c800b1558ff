"""The media of a chunked encode, read back by an independent implementation.

Each source is cut into chunks, encoded part by part with the real FfmpegTranscoder
(every rendition from one decode per chunk, the audio once) and joined with
``domain.chunks.join``, as the agents do. ffmpeg's own DASH demuxer then reads the joined
manifest: it must decode without an error, every rendition's frames must follow each
other exactly one frame apart across every chunk boundary, keyframes must sit at the same
instants in every rendition, video and audio must last what the source lasts (within
50 ms), and the package must hold exactly the frames a one-pass encode of the same
source holds, with keyframes at the same frames. Sources: constant 25 fps with audio,
NTSC 29.97 without audio, variable frame rate, 23.976, keyframes 10 s apart, audio that
outlasts the video, and Matroska.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from helpers import Stream, ffmpeg, read_streams, source_seconds
from tritontube.domain import chunks
from tritontube.domain.events import ChunkedJob, ChunkEncoded, MediaFile
from tritontube.domain.media import (
    AUDIO_OVERHANG_TOLERANCE_SECONDS,
    PartOutput,
    RenditionSpec,
    plan_renditions,
)
from tritontube.media.ffmpeg import FfmpegTranscoder

pytestmark = pytest.mark.integration

FFPROBE = shutil.which("ffprobe") or "ffprobe"
#: Three renditions of a 320x240 source, each scaled from the one above it.
LADDER = (
    RenditionSpec("240p", 426, 240, 300, 330, 450, 64),
    RenditionSpec("180p", 320, 180, 200, 220, 300, 64),
    RenditionSpec("120p", 214, 120, 120, 132, 180, 48),
)
SECONDS = 16
CHUNK_SECONDS = 4.0  # 16 s -> 4 chunks
TOLERANCE = 0.050  # the "within 50 ms of the source"


@dataclass(frozen=True)
class Package:
    folder: Path
    manifest: Path
    chunks: int


async def chunked_package(source: Path, out: Path, chunk_seconds: float = CHUNK_SECONDS) -> Package:
    """Encode ``source`` in chunks and join them, the way the agents do, into ``out``."""
    transcoder = FfmpegTranscoder(niceness=10, timeout_seconds=120)
    probe = await transcoder.probe(source)
    renditions = plan_renditions(probe, LADDER)
    plan = await transcoder.plan_chunks(source, probe, chunk_seconds)
    now = datetime.now(UTC)
    results = []
    for span in plan.spans:
        part = await transcoder.encode_chunk(
            source,
            out / f"part-{span.index}",
            probe,
            renditions,
            plan.rate,
            plan.segment_seconds,
            span,
        )
        results.append(_encoded("VIDEO", span.index, part))
    if probe.has_audio:
        audio = await transcoder.encode_audio(
            source, out / "audio", probe, renditions, str(len(renditions))
        )
        results.append(_encoded("AUDIO", 0, audio))
    job = ChunkedJob(
        video_id="v",
        job_id="j",
        attempt=1,
        status="ENCODING",
        output_prefix="",
        duration_seconds=probe.duration_seconds or 0.0,
        renditions=tuple(r.name for r in renditions),
        planned_at=now,
        parts=(),
    )
    joined = chunks.join(job, results)
    folder = await asyncio.to_thread(_assemble, out, joined)
    return Package(folder, folder / "manifest.mpd", len(plan.spans))


def _assemble(out: Path, joined: chunks.Package) -> Path:
    """Every part's files and the joined manifest in one folder, as the store holds them."""
    folder = out / "package"
    folder.mkdir()
    for part_dir in out.iterdir():
        if part_dir.name.startswith(("part-", "audio")):
            for file in part_dir.glob("*.m4s"):
                shutil.copy(file, folder / file.name)
    (folder / "manifest.mpd").write_text(joined.manifest)
    listed = {f.path.as_posix() for f in joined.output.files}
    assert listed == {p.name for p in folder.glob("*.m4s")}
    return folder


def _encoded(kind: str, index: int, part: PartOutput) -> ChunkEncoded:
    return ChunkEncoded(
        event_id=f"{kind}{index}",
        video_id="v",
        job_id="j",
        attempt=1,
        kind=kind,
        index=index,
        chunk_attempt=1,
        manifest=part.manifest,
        files=tuple(MediaFile(f.path.as_posix(), f.size_bytes, f.sha256) for f in part.files),
        encoded_seconds=part.encoded_seconds,
        wall_seconds=part.wall_seconds,
        cpu_seconds=part.cpu_seconds or 0.0,
        ts=datetime.now(UTC),
    )


async def one_pass(source: Path, out: Path) -> Path:
    transcoder = FfmpegTranscoder(niceness=10, timeout_seconds=120)
    probe = await transcoder.probe(source)
    result = await transcoder.transcode(source, out, plan_renditions(probe, LADDER), probe)
    return result.manifest


# --------------------------------------------------------------------------- reading back


def assert_plays_like_the_source(package: Package, source: Path, rate: float) -> list[Stream]:
    decoded = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(package.manifest), "-map", "0", "-f", "null", "-"],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert decoded.returncode == 0 and decoded.stderr == "", decoded.stderr[-2000:]
    streams = read_streams(package.manifest)
    video = [s for s in streams if s.kind == "video"]
    assert len(video) == len(LADDER)
    for stream in video:
        steps = [b - a for a, b in zip(stream.frames, stream.frames[1:], strict=False)]
        # Constant rate: every frame one frame after the previous, across every boundary.
        assert max(steps) <= 1 / rate + 0.001, f"a gap of {max(steps):.4f} s"
        assert min(steps) >= 1 / rate - 0.001, f"a duplicate or overlap ({min(steps):.4f} s)"
        assert stream.frames == video[0].frames
        assert stream.keyframes == video[0].keyframes, "keyframes differ between renditions"
    assert len(video[0].keyframes) >= package.chunks
    expected = source_seconds(source)
    # The last picture is held while audio that outlasts the video plays on (past 0.1 s).
    held = expected.get("audio", 0.0) - expected["video"] > AUDIO_OVERHANG_TOLERANCE_SECONDS
    assert video[0].end - video[0].frames[0] == pytest.approx(
        expected["audio"] if held else expected["video"], abs=TOLERANCE
    )
    audio = [s for s in streams if s.kind == "audio"]
    if "audio" in expected:
        (track,) = audio
        assert track.end - track.frames[0] == pytest.approx(expected["audio"], abs=TOLERANCE)
        steps = [b - a for a, b in zip(track.frames, track.frames[1:], strict=False)]
        assert max(steps) < 1024 / 48000 + 0.001  # no gap in the audio either
    else:
        assert audio == []
    return streams


# --------------------------------------------------------------------------- sources


def make(path: Path, video: str, *extra: str, audio_seconds: float | None = SECONDS) -> Path:
    sound = (
        ["-f", "lavfi", "-i", f"sine=frequency=440:duration={audio_seconds}"]
        if audio_seconds
        else []
    )
    codecs = ["-c:a", "aac"] if audio_seconds else []
    ffmpeg("-f", "lavfi", "-i", video, *sound, "-c:v", "libx264", "-preset", "veryfast",
           "-pix_fmt", "yuv420p", *codecs, *extra, str(path))  # fmt: skip
    return path


#: The sources also compared frame by frame with a one-pass encode of themselves.
COMPARED = {"cfr25", "vfr", "film", "sparse_keyframes"}
SOURCES = {
    # name: (lavfi video, extra output options, audio seconds, frame rate of the output)
    "cfr25": (f"testsrc2=size=320x240:rate=25:duration={SECONDS}", ("-g", "50"), SECONDS, 25.0),
    "ntsc_silent": (
        f"testsrc2=size=320x240:rate=30000/1001:duration={SECONDS}",
        ("-g", "45"),
        None,
        30000 / 1001,
    ),
    # Every seventh frame dropped: timestamps 1/30 s apart with gaps, 25.7 fps on average.
    "vfr": (
        f"testsrc2=size=320x240:rate=30:duration={SECONDS},select='not(eq(mod(n\\,7)\\,3))'",
        ("-fps_mode", "vfr"),
        SECONDS,
        26.0,
    ),
    "film": (
        f"testsrc2=size=320x240:rate=24000/1001:duration={SECONDS}",
        (),
        SECONDS,
        24000 / 1001,
    ),
    # A keyframe every 10 s: cuts cannot be near one; a chunk decodes from the one before.
    "sparse_keyframes": (
        f"testsrc2=size=320x240:rate=25:duration={SECONDS}",
        ("-g", "250", "-sc_threshold", "0"),
        SECONDS,
        25.0,
    ),
    # 15 s of video under 18 s of audio: the last chunk holds the last picture.
    "long_audio": ("testsrc2=size=320x240:rate=25:duration=15", (), SECONDS + 2, 25.0),
}


@pytest.mark.parametrize("name", sorted(SOURCES))
async def test_a_chunked_package_plays_like_its_source(name: str, tmp_path: Path) -> None:
    video, extra, audio_seconds, rate = SOURCES[name]
    source = make(tmp_path / f"{name}.mp4", video, *extra, audio_seconds=audio_seconds)
    package = await chunked_package(source, tmp_path / "chunked")
    assert package.chunks == 4
    streams = assert_plays_like_the_source(package, source, rate)
    if name not in COMPARED:
        return

    # The same frames and keyframes as one pass over the whole source.
    reference = read_streams(await one_pass(source, tmp_path / "one-pass"))
    ours = [s for s in streams if s.kind == "video"]
    theirs = [s for s in reference if s.kind == "video"]
    assert len(ours[0].frames) == len(theirs[0].frames)
    assert ours[0].keyframes == pytest.approx(theirs[0].keyframes, abs=1e-3)


async def test_a_matroska_source_is_cut_at_its_cues(tmp_path: Path) -> None:
    source = make(
        tmp_path / "camera.mkv", f"testsrc2=size=320x240:rate=25:duration={SECONDS}", "-g", "25"
    )
    package = await chunked_package(source, tmp_path / "chunked")
    assert package.chunks == 4
    assert_plays_like_the_source(package, source, 25.0)
