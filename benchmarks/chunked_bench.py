"""Issue 19: chunked transcoding, and how many workers a 30-minute upload needs for 5 minutes.

    python -m benchmarks.chunked_bench [--quick | --full] [--camera] [--seconds N] [--chunk N]

One 1080p 30 fps source with audio goes through the real pipeline (broker, object store,
workers, ffmpeg) three times, each on a fresh embedded stack whose workers are pinned with
``taskset`` (one core per worker: two machines stood in for on this 2-core box; the broker,
the store and this process share both cores):

1. **one pass, 1 worker** (chunking off): the reference.
2. **chunked, 1 worker**: goal <= 1.05 x the one pass (cutting costs little).
3. **chunked, 2 workers** (cores 0 and 1) against 2.: goal >= 1.8 x faster.

Each figure is the time from the upload's completion event to READY. From the chunked runs
come the distribution of chunk encode times (each part's own wall time, ``ChunkEncoded``)
and the inputs of the model in docs/transcoding.md ("How many workers"): the seconds of
wall time one pinned worker spends per second of source in a chunk, the work per job that
is not chunk encoding, and the two-worker efficiency; from those, the workers a 30-minute
1080p upload needs to be READY within 5 minutes.

Quick mode (the default in ``make bench``): a 16 s source in chunks of 4 s, so that it fits
the quick run's time; its per-chunk overheads (ffmpeg start, probe, seek, upload) weigh four
times more than in 60 s chunks, so its ratios are pessimistic. ``--full``
(``TRITONTUBE_BENCH_FULL=1``): the issue's 5-minute source in chunks of 60 s (the default
``transcode.chunk_seconds``), about 15 minutes on a quiet 2-core machine. ``--camera``: a
camera-like source (noise on every frame, 16 Mb/s) instead of ffmpeg's test pattern.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer

from benchmarks.common import Figure, at_least, at_most, full_mode, make_clip, percentile
from benchmarks.scale_bench import _produce, _query, _settings, _start_pinned, _until
from tritontube.deps import build_deps
from tritontube.devstack.stack import EmbeddedStack
from tritontube.domain.events import (
    ChunkEncoded,
    UploadCompleted,
    UploadSessionCreated,
    VideoState,
)
from tritontube.settings import Settings, TranscodeSettings
from tritontube.storage.s3 import S3ObjectStore
from tritontube.streams import catalogue

MODULE = "chunked"
QUICK = (16.0, 4.0)  # source seconds, chunk seconds
FULL = (300.0, 60.0)
TARGET_SOURCE_SECONDS = 1800.0  # the 30-minute upload
TARGET_WALL_SECONDS = 300.0  # ... READY within 5 minutes
NOW = datetime.now(UTC).replace(microsecond=0)


@dataclass(frozen=True)
class Run:
    """One upload through one stack: wall seconds to READY and the parts' results."""

    wall_seconds: float
    parts: tuple[ChunkEncoded, ...]

    def video_parts(self) -> list[ChunkEncoded]:
        return [p for p in self.parts if p.kind == "VIDEO"]

    def audio_part(self) -> ChunkEncoded | None:
        return next((p for p in self.parts if p.kind == "AUDIO"), None)


def _stack_settings(root: Path, chunked: bool, chunk_seconds: float) -> Settings:
    base = _settings(root)
    transcode = TranscodeSettings(
        scratch_dir=root / "scratch",
        chunk_threshold_seconds=2 * chunk_seconds if chunked else 0.0,
        chunk_seconds=chunk_seconds,
        niceness=0,  # nothing else is meant to run; niced encodes would only blur the figures
    )
    return base.model_copy(update={"transcode": transcode})


async def _parts(settings: Settings, video_id: str) -> tuple[ChunkEncoded, ...]:
    codec = build_deps(settings).codec
    consumer = AIOKafkaConsumer(
        catalogue.TRANSCODE_CHUNK_RESULTS.name,
        bootstrap_servers=settings.kafka.bootstrap_servers,
        auto_offset_reset="earliest",
        group_id=None,
        enable_auto_commit=False,
    )
    await consumer.start()
    found: list[ChunkEncoded] = []
    try:
        quiet = 0
        while quiet < 3:
            batch = await consumer.getmany(timeout_ms=300)
            records = [r for msgs in batch.values() for r in msgs]
            quiet = 0 if records else quiet + 1
            for record in records:
                value = codec.decode(record.value)
                if isinstance(value, ChunkEncoded) and value.video_id == video_id:
                    found.append(value)
    finally:
        await consumer.stop()
    return tuple(found)


def _ready(settings: Settings, video_id: str) -> bool:
    try:
        state: VideoState = _query(settings, f"/videos/{video_id}")
    except OSError:
        return False
    if state.status == "FAILED":
        raise RuntimeError(f"the benchmark upload failed: {state.error_code} {state.error_message}")
    return state.status == "READY"


async def one_upload(
    root: Path, source: Path, workers: int, *, chunked: bool, chunk_seconds: float
) -> Run:
    settings = _stack_settings(root, chunked, chunk_seconds)
    stack = EmbeddedStack(settings=settings, log_dir=root / "logs", with_api=False, workers=workers)
    codec = build_deps(settings).codec
    video_id = "bench"
    try:
        await asyncio.to_thread(stack.start_infrastructure)
        await asyncio.to_thread(_start_pinned, stack, workers)
        store = S3ObjectStore.from_settings(settings.s3)
        try:
            await store.upload_file(source, f"uploads/{video_id}/source.mp4", "video/mp4")
        finally:
            store.close()
        size = await asyncio.to_thread(lambda: source.stat().st_size)
        events = _upload_events(video_id, size)
        started = time.monotonic()
        await _produce(
            settings, catalogue.UPLOADS.name, [(video_id, codec.encode(e)) for e in events]
        )
        await _until(lambda: _ready(settings, video_id), 3600)
        wall = time.monotonic() - started
        return Run(wall, await _parts(settings, video_id))
    finally:
        await asyncio.to_thread(stack.stop)


def _upload_events(video_id: str, size: int) -> tuple[Any, ...]:
    return (
        UploadSessionCreated(
            event_id=f"c-{video_id}", video_id=video_id, owner="bench", title=video_id,
            file_name="source.mp4", content_type="video/mp4", declared_size_bytes=size,
            source_key=f"uploads/{video_id}/source.mp4", etag=f"e-{video_id}",
            created_at=NOW, expires_at=NOW + timedelta(hours=1),
        ),
        UploadCompleted(
            event_id=f"d-{video_id}", video_id=video_id, owner="bench", etag=f"e-{video_id}",
            source_key=f"uploads/{video_id}/source.mp4", size_bytes=size,
            content_type="video/mp4", completed_at=NOW,
        ),
    )  # fmt: skip


# --------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class Model:
    """docs/transcoding.md, "How many workers": T(W) = F + ceil(n' / W) * c / e."""

    chunk_cost: float  # wall seconds per source second of a video chunk, one pinned worker
    audio_cost: float  # ... of the audio part, per source second
    fixed_seconds: float  # per job, not spent encoding parts (probe, cut, join, hand-offs)
    efficiency: float  # two workers' speed-up over one, halved (1.0: perfect)
    chunk_seconds: float  # the chunk length of the 30-minute upload

    def wall(self, workers: int, source_seconds: float = TARGET_SOURCE_SECONDS) -> float:
        chunks = max(1, round(source_seconds / self.chunk_seconds))
        chunk = self.chunk_seconds * self.chunk_cost
        parts = chunks + (source_seconds * self.audio_cost) / chunk  # the audio, in chunks
        return self.fixed_seconds + math.ceil(parts / workers) * chunk / self.efficiency

    def workers_needed(self, limit: float = TARGET_WALL_SECONDS, most: int = 1000) -> int | None:
        for workers in range(1, most + 1):
            if self.wall(workers) <= limit:
                return workers
        return None


def model_from(one: Run, two_speedup: float, chunk_seconds: float) -> Model:
    video = one.video_parts()
    audio = one.audio_part()
    costs = [p.wall_seconds / p.encoded_seconds for p in video if p.encoded_seconds > 0]
    busy = sum(p.wall_seconds for p in one.parts)
    return Model(
        chunk_cost=percentile(costs, 90),
        audio_cost=(audio.wall_seconds / audio.encoded_seconds) if audio else 0.0,
        fixed_seconds=max(0.0, one.wall_seconds - busy),
        efficiency=min(1.0, two_speedup / 2),
        chunk_seconds=chunk_seconds,
    )


# --------------------------------------------------------------------------- the figures


def run(
    quick: bool = True,
    *,
    seconds: float | None = None,
    chunk: float | None = None,
    camera: bool = False,
) -> list[Figure]:
    default_seconds, default_chunk = QUICK if quick else FULL
    length = seconds or default_seconds
    chunk_seconds = chunk or default_chunk
    work = Path(tempfile.gettempdir()) / "tritontube-bench"
    kind = "camera" if camera else "pattern"
    source = make_clip(
        work / f"chunked-1080p-{kind}-{length:g}s.mp4", length, "1920x1080", 30, camera=camera
    )
    with tempfile.TemporaryDirectory(prefix="chunked-bench-") as tmp:
        root = Path(tmp)
        one_pass = asyncio.run(
            one_upload(root / "one-pass", source, 1, chunked=False, chunk_seconds=chunk_seconds)
        )
        chunked_1 = asyncio.run(
            one_upload(root / "chunked-1", source, 1, chunked=True, chunk_seconds=chunk_seconds)
        )
        chunked_2 = asyncio.run(
            one_upload(root / "chunked-2", source, 2, chunked=True, chunk_seconds=chunk_seconds)
        )
    load = os.getloadavg()[0]
    speedup = chunked_1.wall_seconds / chunked_2.wall_seconds
    model = model_from(chunked_1, speedup, FULL[1])
    needed = model.workers_needed()
    walls = [p.wall_seconds for p in chunked_1.video_parts()]
    workers_2 = {p.worker for p in chunked_2.parts}
    note = (
        f"{length:g} s 1920x1080 30 fps {kind} source, chunks of {chunk_seconds:g} s "
        f"({len(chunked_1.video_parts())} chunks + audio); workers pinned with taskset; "
        f"load {load:.1f}"
    )
    figures = [
        Figure("one pass, 1 worker", one_pass.wall_seconds, "s", module=MODULE, note=note),
        Figure(
            "chunked, 1 worker, vs one pass",
            chunked_1.wall_seconds,
            "s",
            goal=at_most(1.05 * one_pass.wall_seconds),
            reference_name="one pass, 1 worker",
            reference_value=one_pass.wall_seconds,
            module=MODULE,
            note=note,
        ),
        Figure(
            "chunked, 2 workers (cores 0+1) vs 1 (core 0)",
            speedup,
            "x",
            goal=at_least(1.8),
            reference_name="1 worker",
            reference_value=1.0,
            module=MODULE,
            note=f"{note}; parts encoded by {len(workers_2)} workers; "
            f"{chunked_2.wall_seconds:.1f} s against {chunked_1.wall_seconds:.1f} s",
        ),
        Figure("chunk encode time p50", percentile(walls, 50), "s", module=MODULE, note=note),
        Figure("chunk encode time p90", percentile(walls, 90), "s", module=MODULE, note=note),
        Figure("chunk encode time max", max(walls), "s", module=MODULE, note=note),
        Figure(
            "chunk wall per source second p90 (1 pinned worker)",
            model.chunk_cost,
            "s/s",
            module=MODULE,
            note=note,
        ),
        Figure(
            "per-job time not encoding parts (probe, cut, join)",
            model.fixed_seconds,
            "s",
            module=MODULE,
            note=note,
        ),
        Figure(
            f"workers for a 30-min 1080p upload READY in 5 min ({FULL[1]:g} s chunks)",
            float(needed) if needed is not None else math.inf,
            "workers",
            module=MODULE,
            note=f"model T(W) = F + ceil(n'/W) * c / e (docs/transcoding.md) with c = "
            f"{model.chunk_cost:.2f} s/s x {model.chunk_seconds:g} s, F = "
            f"{model.fixed_seconds:.1f} s, e = {model.efficiency:.2f}; "
            f"T = {model.wall(needed) if needed else math.inf:.0f} s; "
            + ("measured on the quick source" if quick else "measured on the 5-min source"),
        ),
    ]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="a 16 s source (the default)")
    mode.add_argument("--full", action="store_true", help="the issue's 5-minute source")
    parser.add_argument("--camera", action="store_true", help="a camera-like source")
    parser.add_argument("--seconds", type=float, default=None, help="source length")
    parser.add_argument("--chunk", type=float, default=None, help="chunk length")
    args = parser.parse_args()
    figures = run(
        quick=not (args.full or full_mode()),
        seconds=args.seconds,
        chunk=args.chunk,
        camera=args.camera,
    )
    for f in figures:
        goal = f" (goal {f.goal} {f.unit}: {'met' if f.met else 'NOT met'})" if f.goal else ""
        print(f"{f.name}: {f.value:.3g} {f.unit}{goal}")
    print(figures[0].note)


if __name__ == "__main__":
    main()
