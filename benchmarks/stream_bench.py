"""Watch-event throughput: TritonTube's analytics path beside raw aiokafka, Faust and Quix.

    python -m benchmarks.stream_bench [--events 100000] [--videos 10000] [--users 20000]

For each corpus size, a fresh embedded stack (broker, SeaweedFS, archiver, one worker,
4 partitions) and one set of Avro ``WatchEvent`` records (``--events`` over ``--videos``
videos and ``--users`` viewers; sessions of heartbeats 10 s apart, so table state grows
with videos x viewers). Then, on the same broker and the same ``watch-events`` records:

1. **TritonTube's analytics path**: the records are produced while the worker runs; timed
   until the worker has acknowledged every one of them on ``watch-events`` AND every
   forwarded copy on ``watch-events-by-user`` (``tritontube_stream_batch_events_done_total``:
   outputs and changelogs in the broker, ready for the offset commit). CPU seconds are the
   worker process's (all threads) over the same interval; the archiver's, a process of its
   own, are reported beside them.
2. **References**, each a process of its own reading all records from the start with its
   own consumer group (``benchmarks/reference_consumers.py``): raw aiokafka ``getmany``;
   aiokafka + Avro decode + a per-video dict count; a minimal Faust agent counting per video
   in a Table; Quix Streams counting per video in its state (RocksDB, changelog). Timed from
   their first record to their last (start-up excluded).

Every figure names the machine's load average when it was taken. ``events/CPU-s`` is the
stable number on a shared machine; ``events/s`` is what one worker sustains.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiokafka import AIOKafkaProducer

from benchmarks.common import Figure, at_least
from tritontube.deps import build_deps
from tritontube.devstack.process import free_port
from tritontube.devstack.stack import EmbeddedStack
from tritontube.domain.events import WatchEvent
from tritontube.settings import (
    AuthSettings,
    HttpSettings,
    KafkaSettings,
    S3Settings,
    SearchSettings,
    Settings,
    WorkerSettings,
)
from tritontube.streams import catalogue
from tritontube.streams.codec import schema_dir

HERE = Path(__file__).resolve().parent
QUIX_PYTHON = HERE.parent / ".venv-quix" / "bin" / "python"
PARTITIONS = 4
EVENTS_GOAL = at_least(30_000)  # watch events/s per worker (issue 22)
QUIX_SHARE = 0.4  # of Quix Streams' events per CPU-second, measured in the same run
DONE_TIMEOUT = 900.0
REFERENCE_TIMEOUT = 600.0

# (events, videos, users) per size; the checker reruns with other shapes (--events ...).
SIZES = {True: [(10_000, 1_000, 2_000), (30_000, 3_000, 6_000)],
         False: [(10_000, 1_000, 2_000), (100_000, 10_000, 20_000)]}  # fmt: skip


@dataclass(frozen=True)
class Measured:
    what: str
    events: int
    seconds: float
    cpu_seconds: float
    load: tuple[float, float, float]
    note: str = ""

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    @property
    def per_cpu(self) -> float:
        return self.events / self.cpu_seconds if self.cpu_seconds else 0.0


def load_note() -> tuple[float, float, float]:
    return os.getloadavg()


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
        data_dir=root / "data",
        auth=AuthSettings(secret=secrets.token_urlsafe(32)),  # the worker refuses the placeholder
    )


def corpus(events: int, videos: int, users: int, seed: int = 5) -> list[WatchEvent]:
    """Viewing sessions: a viewer plays a video and sends a heartbeat every 10 s, sometimes
    pauses, seeks or finishes; sessions interleave in time. Every event id is unique."""
    rng = random.Random(seed)
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    out: list[WatchEvent] = []
    while len(out) < events:
        video = f"v{rng.randrange(videos)}"
        user = f"u{rng.randrange(users)}"
        start = t0 + timedelta(seconds=rng.randrange(3600))
        length = rng.randint(1, 30)
        for step in range(length):
            if len(out) >= events:
                break
            kind = "PLAY" if step == 0 else "HEARTBEAT"
            if step == length - 1:
                kind = rng.choice(("PAUSE", "ENDED", "HEARTBEAT", "SEEK"))
            at = start + timedelta(seconds=10 * step)
            out.append(WatchEvent(f"w{len(out)}", video, user, kind, 10.0 * step, at, at))
    out.sort(key=lambda e: e.occurred_at)  # arrival in time order: sessions interleave
    return out


async def produce(bootstrap: str, topic: str, items: list[tuple[bytes, bytes]]) -> float:
    """Seconds to hand every record to the broker (acks=all), batched per partition."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=512 * 1024, acks="all"
    )
    await producer.start()
    started = time.perf_counter()
    try:
        pending = [await producer.send(topic, value, key=key) for key, value in items]
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.perf_counter() - started


def metric(url: str, name: str, **labels: str) -> float:
    with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 - loopback URL
        text = resp.read().decode()
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"^{name}(?:\{{(.*)\}})? ([0-9.e+-]+)$", line)
        if match is None:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match.group(2))
    return total


def cpu_of(pid: int | None) -> float:
    """CPU seconds (user + system, every thread) a process has used so far (Linux /proc)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def measure_tritontube(stack: EmbeddedStack, events: list[WatchEvent]) -> tuple[Measured, str]:
    s = stack.settings
    codec = build_deps(s).codec
    items = [(e.video_id.encode(), codec.encode(e)) for e in events]
    worker = next(p for p in stack.processes if p.name.startswith("worker"))
    archiver = next((p for p in stack.processes if p.name == "archiver"), None)
    url = f"http://{worker.host}:{worker.port}/metrics"
    done = "tritontube_stream_batch_events_done_total"
    watch, by_user = catalogue.WATCH_EVENTS.name, catalogue.WATCH_EVENTS_BY_USER.name
    base_watch, base_user = metric(url, done, topic=watch), metric(url, done, topic=by_user)
    cpu0, arch0 = cpu_of(worker.pid), cpu_of(archiver.pid if archiver else None)
    started = time.perf_counter()
    produced = asyncio.run(produce(s.kafka.bootstrap_servers, watch, items))
    n = len(items)
    while True:
        got_watch = metric(url, done, topic=watch) - base_watch
        got_user = metric(url, done, topic=by_user) - base_user
        if got_watch >= n and got_user >= n:
            break
        if time.perf_counter() - started > DONE_TIMEOUT:
            raise TimeoutError(f"worker acknowledged {got_watch}/{n} events, {got_user}/{n} copies")
        time.sleep(0.2)  # each poll costs the worker a /metrics rendering
    seconds = time.perf_counter() - started
    cpu = cpu_of(worker.pid) - cpu0
    arch = cpu_of(archiver.pid if archiver else None) - arch0
    note = f"producing took {produced:.2f} s of it; archiver process {arch:.1f} CPU-s"
    return Measured("TritonTube analytics path", n, seconds, cpu, load_note(), note), note


def measure_reference(kind: str, bootstrap: str, events: int) -> Measured | str:
    """One reference consumer in its own process; a reason string when it could not run."""
    python = sys.executable
    if kind == "quix":
        if not QUIX_PYTHON.exists():
            return "quixstreams is not installed (.venv-quix: `make bench` creates it)"
        python = str(QUIX_PYTHON)
    schema = schema_dir() / "tritontube.events.WatchEvent.avsc"
    argv = [
        python, str(HERE / "reference_consumers.py"), kind, bootstrap,
        catalogue.WATCH_EVENTS.name, str(events), str(schema), str(PARTITIONS),
    ]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(HERE.parent / "src"))
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=REFERENCE_TIMEOUT, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        return f"{kind}: no result within {REFERENCE_TIMEOUT:.0f} s"
    for line in (proc.stdout + proc.stderr).splitlines():  # Faust logs what agents print
        if "REFERENCE {" in line:
            data = json.loads(line.split("REFERENCE ", 1)[1])
            return Measured(
                NAMES[kind], int(data["events"]), data["seconds"], data["cpu_seconds"], load_note()
            )
    tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-8:])
    return f"{kind}: exit {proc.returncode}: {tail}"


NAMES = {
    "aiokafka": "raw aiokafka getmany",
    "aiokafka-count": "aiokafka + Avro decode + dict count",
    "faust": "minimal Faust agent, count in a Table",
    "quix": "Quix Streams, count in state",
}


def measure_size(events: int, videos: int, users: int) -> tuple[list[Measured], list[str]]:
    notes: list[str] = []
    out: list[Measured] = []
    watch = corpus(events, videos, users)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        stack = EmbeddedStack(settings=_settings(root), log_dir=root / "logs", with_api=False)
        try:
            stack.start()
            tt, _ = measure_tritontube(stack, watch)
            out.append(tt)
            bootstrap = stack.settings.kafka.bootstrap_servers
            for kind in NAMES:
                got = measure_reference(kind, bootstrap, events)
                if isinstance(got, str):
                    notes.append(got)
                else:
                    out.append(got)
        finally:
            stack.stop()
    return out, notes


def to_figures(size: str, measured: list[Measured]) -> list[Figure]:
    quix = next((m for m in measured if m.what == NAMES["quix"]), None)
    figures = []
    for m in measured:
        load = "load {:.1f}/{:.1f}/{:.1f}".format(*m.load)
        note = f"{size}; {m.events} events in {m.seconds:.2f} s; {load}"
        if m.note:
            note += f"; {m.note}"
        ours = m.what.startswith("TritonTube")
        figures.append(
            Figure(f"{m.what} [{size}]", m.rate, "events/s", goal=EVENTS_GOAL if ours else None,
                   note=note)
        )  # fmt: skip
        per_cpu = Figure(f"{m.what} [{size}] per CPU-s", m.per_cpu, "events/CPU-s", note=note)
        if ours and quix is not None:
            per_cpu = Figure(
                per_cpu.name,
                per_cpu.value,
                per_cpu.unit,
                goal=at_least(QUIX_SHARE * quix.per_cpu),
                reference_name=quix.what,
                reference_value=quix.per_cpu,
                note=note,
            )
        figures.append(per_cpu)
    return figures


def size_label(events: int, videos: int, users: int) -> str:
    return f"{events // 1000}k events, {videos} videos, {users} users"


def run(quick: bool = True) -> list[Figure]:
    """``make bench`` entry: both sizes, every consumer."""
    figures: list[Figure] = []
    for events, videos, users in sizes_from_env(quick):
        measured, notes = measure_size(events, videos, users)
        figures += to_figures(size_label(events, videos, users), measured)
        for note in notes:
            print(f"stream_bench: {note}", file=sys.stderr)
    return figures


def sizes_from_env(quick: bool) -> list[tuple[int, int, int]]:
    """``TRITONTUBE_BENCH_STREAM_SIZES=events:videos:users,...`` overrides the sizes."""
    raw = os.environ.get("TRITONTUBE_BENCH_STREAM_SIZES", "").strip()
    if not raw:
        return SIZES[quick]
    sizes = []
    for part in raw.split(","):
        e, v, u = (int(x) for x in part.split(":"))
        sizes.append((e, v, u))
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--videos", type=int, default=10_000)
    parser.add_argument("--users", type=int, default=20_000)
    args = parser.parse_args()
    measured, notes = measure_size(args.events, args.videos, args.users)
    label = size_label(args.events, args.videos, args.users)
    for f in to_figures(label, measured):
        print(f"{f.name:70s} {f.value:12,.0f} {f.unit}   ({f.note})")
    for note in notes:
        print(f"NOTE {note}")


if __name__ == "__main__":
    main()
