"""The embedded event log on durable storage (Tansu ``s3://`` on SeaweedFS) against memory.

``python -m benchmarks.durable_log_bench [--sessions N] [--calls N]`` (also part of
``make bench``). For each broker storage, on a fresh embedded stack (object store, broker,
worker, API as child processes on free loopback ports):

1. **publish latency**: ``calls`` sequential ``POST /v1/videos:uploadURL`` (one acknowledged
   ``UploadSessionCreated`` each), then ``calls // 4`` ``completeUpload`` of uploaded clips
   (an acknowledged ``UploadCompleted`` plus the wait for the worker's fold);
2. **Faust changelog recovery**: ``sessions`` upload sessions produced to ``uploads``, folded
   by the worker (one VideoState changelog record each), then the worker stopped and a new one
   started: seconds until its ``/readyz`` answers 200 (tables recovered) and the table holds
   every session.

The memory broker (``kafka.embedded_log_storage=memory``) is the former embedded default, for
comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import subprocess
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from aiokafka import AIOKafkaProducer

from benchmarks.common import FFMPEG, Figure, full_mode, percentile
from tritontube.deps import build_deps
from tritontube.devstack.process import free_port
from tritontube.devstack.seaweedfs import Credentials
from tritontube.devstack.stack import EmbeddedStack
from tritontube.domain.events import UploadSessionCreated
from tritontube.http.auth import mint_token
from tritontube.http.worker_client import WorkerClient, WorkerUnavailableError
from tritontube.settings import (
    AuthSettings,
    HttpSettings,
    KafkaSettings,
    RateLimitSettings,
    S3Settings,
    SearchSettings,
    Settings,
    WorkerSettings,
)
from tritontube.streams import catalogue


def _settings(root: Path, storage: str) -> Settings:
    keys = Credentials.generate()
    worker_port = free_port()
    return Settings(
        kafka=KafkaSettings(
            bootstrap_servers=f"127.0.0.1:{free_port()}",
            embedded_broker_compat=True,
            partitions=4,
            embedded_log_storage="memory" if storage == "memory" else "object-store",
        ),
        s3=S3Settings(
            endpoint_url=f"http://127.0.0.1:{free_port()}",
            access_key_id=keys.access_key_id,
            secret_access_key=keys.secret_access_key,  # type: ignore[arg-type]
        ),
        http=HttpSettings(port=free_port()),
        worker=WorkerSettings(web_port=worker_port, data_dir=root / "worker"),
        search=SearchSettings(path=root / "search"),
        rate_limit=RateLimitSettings(enabled=False),
        auth=AuthSettings(secret=secrets.token_urlsafe(32)),  # the worker refuses the placeholder
        data_dir=root / "data",
    )


def _clip(path: Path) -> bytes:
    subprocess.run(
        [FFMPEG, "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10:duration=1",
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-y", str(path)],
        check=True, timeout=60,
    )  # fmt: skip
    return path.read_bytes()


async def _publish_latency(settings: Settings, calls: int, clip: bytes) -> dict[str, list[float]]:
    api = f"http://{settings.http.host}:{settings.http.port}"
    auth = {"Authorization": f"Bearer {mint_token(settings.auth, 'bench')}"}
    body = {"title": "t", "fileName": "c.mp4", "contentType": "video/mp4", "sizeBytes": len(clip)}
    upload_url: list[float] = []
    complete: list[float] = []
    sessions = []
    async with aiohttp.ClientSession() as http:
        for i in range(calls):
            started = time.perf_counter()
            async with http.post(f"{api}/v1/videos:uploadURL", json=body, headers=auth) as resp:
                assert resp.status == 200, await resp.text()
                data = await resp.json()
            upload_url.append(time.perf_counter() - started)
            if i % 4 == 0:
                sessions.append(data)
        for session in sessions:
            form = aiohttp.FormData()
            for key, value in session["upload"]["fields"].items():
                form.add_field(key, value)
            form.add_field("file", clip, filename="c.mp4", content_type="video/mp4")
            async with http.post(session["upload"]["url"], data=form) as resp:
                assert resp.status == 204, await resp.text()
            started = time.perf_counter()
            async with http.post(
                f"{api}/v1/videos:completeUpload",
                json={"videoId": session["videoId"]},
                headers={**auth, "If-Match": f'"{session["etag"]}"'},
            ) as resp:
                assert resp.status == 200, await resp.text()
            complete.append(time.perf_counter() - started)
    return {"uploadURL": upload_url, "completeUpload": complete}


async def _produce_sessions(settings: Settings, count: int) -> None:
    codec = build_deps(settings).codec
    now = datetime.now(UTC).replace(microsecond=0)
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka.bootstrap_servers, linger_ms=5, acks="all"
    )
    await producer.start()
    try:
        futures = []
        for i in range(count):
            vid = f"r{i:06d}"
            event = UploadSessionCreated(
                event_id=uuid.uuid4().hex,
                video_id=vid,
                owner="recovery",
                title=f"Video {i}",
                file_name="c.mp4",
                content_type="video/mp4",
                declared_size_bytes=100,
                source_key=f"uploads/{vid}/source.mp4",
                etag=f"e{i}",
                created_at=now,
                expires_at=now + timedelta(days=1),
            )
            futures.append(
                await producer.send(catalogue.UPLOADS.name, codec.encode(event), key=vid.encode())
            )
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def _held(settings: Settings) -> int:
    """Sessions of the owner ``recovery`` the worker's owner listing answers (-1: not ready)."""
    async with aiohttp.ClientSession() as http:
        client = WorkerClient(http, settings, build_deps(settings).codec)
        held = 0
        token: str | None = None
        try:
            while True:
                page = await client.owned("recovery", 100, token)
                held += len(page.videos)
                token = page.next_page_token
                if token is None:
                    return held
        except WorkerUnavailableError:
            return -1


async def _until_held(settings: Settings, count: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while (held := await _held(settings)) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the worker holds {held} of {count} sessions")
        await asyncio.sleep(0.5)


def _one(storage: str, sessions: int, calls: int, root: Path) -> list[Figure]:
    settings = _settings(root, storage)
    stack = EmbeddedStack(settings=settings, log_dir=root / "logs")
    clip = _clip(root / "clip.mp4")
    try:
        stack.start()
        stack.wait_ready()
        latency = asyncio.run(_publish_latency(stack.settings, calls, clip))
        asyncio.run(_produce_sessions(stack.settings, sessions))
        asyncio.run(_until_held(stack.settings, sessions))
        worker = next(p for p in stack.processes if p.name == "worker")
        worker.stop()
        stack.processes.remove(worker)
        started = time.monotonic()
        stack.start_worker()  # returns once /readyz answers 200: tables recovered
        ready = time.monotonic() - started
        asyncio.run(_until_held(stack.settings, sessions, timeout=60))
        complete = time.monotonic() - started
    finally:
        stack.stop()
    figures = []
    for name, values in latency.items():
        for q in (50, 95, 99):
            figures.append(
                Figure(
                    f"{storage}: {name} p{q} ({len(values)} calls)",
                    percentile(values, q) * 1000,
                    "ms",
                )
            )
    figures.append(
        Figure(f"{storage}: worker ready after restart ({sessions} sessions)", ready, "s")
    )
    figures.append(Figure(f"{storage}: all {sessions} sessions readable", complete, "s"))
    return figures


def run(quick: bool, sessions: int | None = None, calls: int | None = None) -> list[Figure]:
    sessions = sessions or (1000 if quick else 5000)
    calls = calls or (100 if quick else 400)
    figures: list[Figure] = []
    for storage in ("s3", "memory"):
        with tempfile.TemporaryDirectory() as tmp:
            figures += _one(storage, sessions, calls, Path(tmp))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=None)
    parser.add_argument("--calls", type=int, default=None)
    args = parser.parse_args()
    for figure in run(not full_mode(), args.sessions, args.calls):
        print(f"{figure.name:60s} {figure.value:10.1f} {figure.unit}")


if __name__ == "__main__":
    main()
