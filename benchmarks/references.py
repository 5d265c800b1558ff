"""Side-by-side references, measured in the same run as the figures compared with them.

* ``ffmpeg``: bare ffmpeg encoding the standard clip to a two-rung DASH ladder (720p + 480p,
  libx264 ``veryfast``, 4 s segments, AAC), one process, no Python around it (seconds).
* ``aiokafka_consume``: a plain ``AIOKafkaConsumer`` reading 200-byte records from a fresh
  embedded broker as fast as ``getmany`` returns them (events/s).
* ``aiohttp_hello``: an aiohttp "hello world" server in its own process, driven by the same
  bounded client as our API figures (requests/s).

    python -m benchmarks.references            # measure all three and print them
    python -m benchmarks.references hello PORT # (internal) serve the hello-world app
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from benchmarks.common import FFMPEG, Figure, make_clip, render_table
from tritontube.devstack.broker import tansu_process
from tritontube.devstack.process import ManagedProcess, free_port

NAMES = {
    "ffmpeg": "bare ffmpeg DASH encode",
    "aiokafka_consume": "raw aiokafka consume",
    "aiohttp_hello": "aiohttp hello-world",
}
CLIP_SECONDS = {True: 4.0, False: 20.0}


def standard_clip(workdir: Path, quick: bool) -> Path:
    """The clip every encode figure uses: 1280x720 30 fps H.264 + AAC, 4 s quick / 20 s full."""
    seconds = CLIP_SECONDS[quick]
    return make_clip(workdir / f"standard-{seconds:g}s.mp4", seconds)


# --------------------------------------------------------------------------- ffmpeg


def bare_ffmpeg_seconds(clip: Path, outdir: Path) -> float:
    """Wall seconds of one bare ffmpeg DASH encode of ``clip`` (720p + 480p)."""
    shutil.rmtree(outdir, ignore_errors=True)
    outdir.mkdir(parents=True)
    argv = [
        FFMPEG, "-v", "error", "-nostdin", "-i", str(clip),
        "-filter_complex", "[0:v]split=2[a][b];[a]scale=-2:720[v0];[b]scale=-2:480[v1]",
        "-map", "[v0]", "-map", "[v1]", "-map", "0:a",
        "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high",
        "-force_key_frames", "expr:gte(t,n_forced*4)", "-sc_threshold", "0",
        "-b:v:0", "2800k", "-b:v:1", "1200k", "-c:a", "aac", "-b:a", "128k",
        "-f", "dash", "-seg_duration", "4", "-use_template", "1", "-use_timeline", "1",
        "-y", str(outdir / "manifest.mpd"),
    ]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(argv, check=True, timeout=600)
    return time.perf_counter() - started


# --------------------------------------------------------------------------- aiokafka


async def _aiokafka_consume_eps(bootstrap: str, events: int) -> float:
    topic = "bench-reference"
    payload = b"x" * 200
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=10)
    await producer.start()
    try:
        pending = [producer.send(topic, payload, key=str(i % 64).encode()) for i in range(events)]
        await asyncio.gather(*[await p for p in pending])
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    try:
        seen = 0
        started = time.perf_counter()
        deadline = started + 120
        while seen < events and time.perf_counter() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=10_000)
            seen += sum(len(records) for records in batch.values())
        return seen / (time.perf_counter() - started)
    finally:
        await consumer.stop()


def aiokafka_consume_eps(workdir: Path, events: int) -> float:
    """Events/s of a raw aiokafka consumer on a fresh embedded broker."""
    broker = tansu_process("127.0.0.1", free_port(), workdir / "logs")
    broker.start()
    try:
        return asyncio.run(_aiokafka_consume_eps(f"127.0.0.1:{broker.port}", events))
    finally:
        broker.stop()


# --------------------------------------------------------------------------- HTTP


async def drive_get(
    url: str,
    *,
    concurrency: int,
    max_requests: int,
    max_seconds: float,
    headers: dict[str, str] | None = None,
) -> tuple[int, float, list[float]]:
    """GET ``url`` from ``concurrency`` tasks until either bound; (ok count, seconds, latencies)."""
    latencies: list[float] = []
    issued = 0
    ok = 0
    started = time.perf_counter()
    deadline = started + max_seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def worker() -> None:
            nonlocal issued, ok
            while issued < max_requests and time.perf_counter() < deadline:
                issued += 1
                t0 = time.perf_counter()
                async with session.get(url) as resp:
                    await resp.read()
                    if resp.status == 200:
                        ok += 1
                latencies.append(time.perf_counter() - t0)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ok, time.perf_counter() - started, latencies


def serve_in_child(name: str, argv: list[str], port: int, log_dir: Path) -> ManagedProcess:
    proc = ManagedProcess(
        name=name, argv=argv, host="127.0.0.1", port=port, log_path=log_dir / f"{name}.log"
    )
    proc.start(timeout=30)
    return proc


def http_rps(
    argv: Callable[[int], list[str]],
    path: str,
    log_dir: Path,
    *,
    requests: int,
    seconds: float,
    name: str,
) -> float:
    """Requests/s of a server started by ``argv(port)`` in a child process (loopback)."""
    port = free_port()
    proc = serve_in_child(name, argv(port), port, log_dir)
    try:
        url = f"http://127.0.0.1:{port}{path}"
        # Warm up (imports, first connections), then measure.
        asyncio.run(drive_get(url, concurrency=8, max_requests=200, max_seconds=5))
        ok, elapsed, _ = asyncio.run(
            drive_get(url, concurrency=32, max_requests=requests, max_seconds=seconds)
        )
        return ok / elapsed
    finally:
        proc.stop()


def aiohttp_hello_rps(log_dir: Path, *, requests: int, seconds: float) -> float:
    return http_rps(
        lambda port: [sys.executable, "-m", "benchmarks.references", "hello", str(port)],
        "/",
        log_dir,
        requests=requests,
        seconds=seconds,
        name="hello",
    )


def _serve_hello(port: int) -> None:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="Hello, world")

    app = web.Application()
    app.router.add_get("/", hello)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


# --------------------------------------------------------------------------- all


def measure(quick: bool, workdir: Path) -> dict[str, Figure]:
    """Every reference, as figures keyed by ``NAMES``."""
    clip = standard_clip(workdir, quick)
    events = 50_000 if quick else 500_000
    requests, seconds = (5_000, 8.0) if quick else (50_000, 30.0)
    return {
        "ffmpeg": Figure(
            NAMES["ffmpeg"],
            bare_ffmpeg_seconds(clip, workdir / "ffmpeg-out"),
            "s",
            note=f"{CLIP_SECONDS[quick]:g} s 720p clip",
            module="references",
        ),
        "aiokafka_consume": Figure(
            NAMES["aiokafka_consume"],
            aiokafka_consume_eps(workdir, events),
            "events/s",
            note=f"{events} x 200 B",
            module="references",
        ),
        "aiohttp_hello": Figure(
            NAMES["aiohttp_hello"],
            aiohttp_hello_rps(workdir / "logs", requests=requests, seconds=seconds),
            "req/s",
            note="32 connections",
            module="references",
        ),
    }


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "hello":
        _serve_hello(int(sys.argv[2]))
        return
    with tempfile.TemporaryDirectory() as tmp:
        figures = measure(quick=True, workdir=Path(tmp))
    print(render_table(list(figures.values())))


if __name__ == "__main__":
    main()
