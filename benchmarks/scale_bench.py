"""Scale-out: watch-event and transcode throughput with one worker and with two, in one run.

    python -m benchmarks.scale_bench [--full]

For each of 1 and 2 workers a fresh embedded stack (broker, object store; no archiver, no API)
is started on free loopback ports and the workers are pinned with ``taskset``: one worker to
core 0, or two workers to cores 0 and 1. This machine has 2 cores, so pinning is how "two
machines" are stood in for; the broker and the object store are not pinned and share both
cores, so the figures say how the work splits, not what two machines would do.

* **watch events**: N watch events over 24 videos are published before the workers start;
  the time from the workers being ready to every event being folded (the videos' statistics
  versions add up to N) gives events/s.
* **transcode**: K short 720p uploads are published at once; the time until every video is
  READY gives source seconds encoded per wall second.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from benchmarks.common import Figure, make_clip
from tritontube.deps import build_deps
from tritontube.devstack.process import free_port
from tritontube.devstack.stack import EmbeddedStack
from tritontube.domain.events import UploadCompleted, UploadSessionCreated, WatchEvent
from tritontube.domain.queries import VideoStateBatch
from tritontube.settings import (
    ArchiveSettings,
    AuthSettings,
    HttpSettings,
    KafkaSettings,
    S3Settings,
    SearchSettings,
    Settings,
    WorkerSettings,
)
from tritontube.storage.s3 import S3ObjectStore
from tritontube.streams import catalogue

VIDEOS = 24
PARTITIONS = 4
NOW = datetime.now(UTC).replace(microsecond=0)


def _settings(root: Path) -> Settings:
    return Settings(
        kafka=KafkaSettings(
            bootstrap_servers=f"127.0.0.1:{free_port()}",
            embedded_broker_compat=True,
            partitions=PARTITIONS,
        ),
        s3=S3Settings(endpoint_url=f"http://127.0.0.1:{free_port()}"),
        http=HttpSettings(port=free_port()),
        worker=WorkerSettings(web_port=free_port(), data_dir=root / "worker"),
        search=SearchSettings(path=root / "search"),
        archive=ArchiveSettings(enabled=False, restore_on_start=False),
        auth=AuthSettings(secret=secrets.token_urlsafe(32)),  # the worker refuses the placeholder
        data_dir=root / "data",
    )


def _start_pinned(stack: EmbeddedStack, workers: int) -> None:
    """Start ``workers`` workers, worker i pinned to core i; wait until all are ready."""
    started = []
    for index in range(workers):
        proc = stack.worker_process(index)
        proc.argv = ["taskset", "-c", str(index % (os.cpu_count() or 1)), *proc.argv]
        stack.processes.append(proc)
        proc.start(timeout=60)
        started.append(proc)
    for proc in started:
        stack._wait_http_ok(proc, f"http://{proc.host}:{proc.port}/readyz")


async def _produce(settings: Settings, topic: str, items: list[tuple[str, bytes]]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka.bootstrap_servers, linger_ms=20, max_batch_size=1 << 20
    )
    await producer.start()
    try:
        futures = [await producer.send(topic, v, key=k.encode()) for k, v in items]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def _query(settings: Settings, path: str) -> Any:
    from urllib.request import Request, urlopen

    url = f"{settings.worker_seed_urls()[0]}{path}"
    token = settings.internal_token().get_secret_value()
    request = Request(url, headers={"Authorization": f"Bearer {token}"})  # noqa: S310 - loopback
    with urlopen(request, timeout=10) as resp:  # noqa: S310 - loopback
        return build_deps(settings).codec.decode(resp.read())


async def _until(check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(check):
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark workload did not finish in time")
        await asyncio.sleep(0.2)


# -- watch events ----------------------------------------------------------------------------


def _watch_events(count: int) -> list[WatchEvent]:
    rng = random.Random(11)
    out = []
    for i in range(count):
        moment = NOW - timedelta(seconds=count - i)
        out.append(
            WatchEvent(
                event_id=f"w{i}",
                video_id=f"v{rng.randrange(VIDEOS)}",
                user_id=f"u{rng.randrange(500)}",
                kind="HEARTBEAT",
                position_seconds=float(i % 100),
                occurred_at=moment,
                received_at=moment,
            )
        )
    return out


def _folded(settings: Settings) -> int:
    total = 0
    for v in range(VIDEOS):
        try:
            stats = _query(settings, f"/stats/v{v}")
        except OSError:
            continue  # 404 (no event yet) or a rebalance
        total += stats.version
    return total


async def watch_throughput(workers: int, count: int, root: Path) -> float:
    settings = _settings(root)
    stack = EmbeddedStack(settings=settings, log_dir=root / "logs", with_api=False, workers=workers)
    codec = build_deps(settings).codec
    try:
        await asyncio.to_thread(stack.start_infrastructure)
        events = _watch_events(count)
        await _produce(
            settings, catalogue.WATCH_EVENTS.name, [(e.video_id, codec.encode(e)) for e in events]
        )
        await asyncio.to_thread(_start_pinned, stack, workers)
        started = time.monotonic()
        await _until(lambda: _folded(settings) >= count, 900)
        return count / (time.monotonic() - started)
    finally:
        await asyncio.to_thread(stack.stop)


# -- transcode -------------------------------------------------------------------------------


def _done(settings: Settings, ids: list[str]) -> bool:
    query = "&".join(f"id={v}" for v in ids)
    try:
        batch: VideoStateBatch = _query(settings, f"/video-states?{query}")
    except OSError:
        return False
    ready = [s for s in batch.videos if s.status in ("READY", "FAILED")]
    if any(s.status == "FAILED" for s in ready):
        raise RuntimeError(f"a benchmark upload failed: {[s for s in ready if s.error_code]}")
    return len(ready) == len(ids)


async def transcode_throughput(
    workers: int, uploads: int, source: Path, seconds: float, root: Path
) -> float:
    settings = _settings(root)
    stack = EmbeddedStack(settings=settings, log_dir=root / "logs", with_api=False, workers=workers)
    codec = build_deps(settings).codec
    try:
        await asyncio.to_thread(stack.start_infrastructure)
        await asyncio.to_thread(_start_pinned, stack, workers)
        store = S3ObjectStore.from_settings(settings.s3)
        ids = [f"t{i}" for i in range(uploads)]
        try:
            for v in ids:
                await store.upload_file(source, f"uploads/{v}/source.mp4", "video/mp4")
        finally:
            store.close()
        size = await asyncio.to_thread(lambda: source.stat().st_size)
        items = [(v, codec.encode(e)) for v in ids for e in _upload_events(v, size)]
        started = time.monotonic()
        await _produce(settings, catalogue.UPLOADS.name, items)
        await _until(lambda: _done(settings, ids), 1800)
        return uploads * seconds / (time.monotonic() - started)
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


# -- the figures -----------------------------------------------------------------------------


def run(quick: bool = True) -> list[Figure]:
    events = 10_000 if quick else 50_000
    uploads, seconds = (4, 6.0) if quick else (8, 20.0)
    note = "each worker pinned to its own core (taskset): 2 machines stood in for on 2 cores"
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        source = make_clip(root / "media" / f"scale-{seconds:g}s.mp4", seconds)
        rates = {w: asyncio.run(watch_throughput(w, events, root / f"watch-{w}")) for w in (1, 2)}
        speed = {
            w: asyncio.run(transcode_throughput(w, uploads, source, seconds, root / f"tx-{w}"))
            for w in (1, 2)
        }
    load = os.getloadavg()[0]
    for w in (1, 2):
        figures.append(
            Figure(
                f"watch events, {w} worker(s)",
                rates[w],
                "events/s",
                note=f"{note}; load {load:.1f}",
            )
        )
    figures.append(
        Figure(
            "watch events, 2 workers vs 1", rates[2] / rates[1], "x",
            reference_name="1 worker", reference_value=1.0, note=note,
        )
    )  # fmt: skip
    for w in (1, 2):
        figures.append(
            Figure(
                f"transcode, {w} worker(s) ({uploads} x {seconds:g} s 720p)",
                speed[w],
                "source s/s",
                note=f"{note}; load {load:.1f}",
            )
        )
    figures.append(
        Figure(
            "transcode, 2 workers vs 1", speed[2] / speed[1], "x",
            reference_name="1 worker", reference_value=1.0, note=note,
        )
    )  # fmt: skip
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true")
    args = parser.parse_args()
    for f in run(quick=not args.full):
        print(f"{f.name}: {f.value:.3g} {f.unit}")


if __name__ == "__main__":
    main()
