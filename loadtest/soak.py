"""The soak: mixed load on the embedded stack for a long time, with worker and broker kills.

    make soak                                  # 30 minutes (SOAK_ARGS="--minutes 3" to try it)
    python -m loadtest.soak --minutes 30 --kill-every 180

One command: it starts ``tritontube dev`` (what ``make dev`` runs) on free loopback ports
(``--base-port`` pins them) with a data directory of its own, and for ``--minutes`` drives
a mixed workload against it, as ``make dev``'s users would:

* uploads: a new user every ``--upload-every`` s: uploadURL, the clip to the object store,
  completeUpload (retried on 503, idempotent by the session's etag); each is a transcode;
* watch events: ``--viewers`` viewers send a batch of heartbeats of a READY video every 2 s
  (a batch refused with 503 is sent again with the same event ids);
* reads: searches and recommendations (``--searches`` per second), transcodeStatus polls.

Every ``--kill-every`` s it kills (SIGKILL, from outside, as an operator would) the worker or
the broker, in turn; ``tritontube dev`` brings them back. Every ``--sample-every`` s it
samples the resident memory of every process of the stack (by role), the consumer lag per
topic and the error counts (client side by operation and status; server side the API's
5xx, the dead letters and the transcode failures).

At the end the load stops, the stack drains (``--drain`` s at most) and the books are
checked, **events in = effects out**: every upload the API accepted (completeUpload 200) is
READY; every watch event it accepted (202) is on ``watch-events`` (the broker kept it) and on
``watch-events-by-user`` (the video-stats agent counted it), and the gaps are named with
their distance from the nearest broker kill. ``report.md``, ``soak.png`` (memory, lag and
errors over time, kills marked) and the CSV samples go to ``benchmarks/results/soak-<UTC>/``,
with the stack's own logs. Loopback only; nothing outside the stack it started is touched.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from loadtest import promtext
from loadtest.targets import make_clip

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
ROLES = (  # (role, a fragment of its command line), first match wins
    ("worker", "tritontube.cli worker"),
    ("api", "tritontube.cli api"),
    ("dev", "tritontube.cli dev"),
    ("broker", "tansu"),
    ("archiver", "tritontube.cli archiver"),
    ("object store", "weed"),
    ("ffmpeg", "ffmpeg"),
    ("ffmpeg", "ffprobe"),
)
TERMINAL = ("READY", "FAILED", "EXPIRED")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Stack:
    """A ``tritontube dev`` this soak started: its process, URLs and environment."""

    proc: subprocess.Popen[str]
    api: str
    worker: str
    env: dict[str, str]
    data_dir: Path

    def processes(self) -> list[tuple[str, psutil.Process]]:
        """(role, process) of the dev process and every descendant."""
        try:
            root = psutil.Process(self.proc.pid)
            family = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []
        out = []
        for p in family:
            try:
                cmdline = " ".join(p.cmdline())
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            role = next((r for r, marker in ROLES if marker in cmdline), p.name())
            out.append((role, p))
        return out

    def child(self, role: str) -> psutil.Process | None:
        return next((p for r, p in self.processes() if r == role and p.pid != self.proc.pid), None)


def start_stack(args: argparse.Namespace, outdir: Path) -> Stack:
    ports = (
        [args.base_port + i for i in range(4)]
        if args.base_port
        else [free_port() for _ in range(4)]
    )
    http, worker, broker, s3 = ports
    data = Path(args.data_dir) if args.data_dir else outdir / "stack"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRITONTUBE_")}
    env.update(
        {
            "TRITONTUBE_HTTP__PORT": str(http),
            "TRITONTUBE_HTTP__WORKER_URL": f"http://127.0.0.1:{worker}",
            "TRITONTUBE_WORKER__WEB_PORT": str(worker),
            "TRITONTUBE_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{broker}",
            "TRITONTUBE_S3__ENDPOINT_URL": f"http://127.0.0.1:{s3}",
            "TRITONTUBE_DATA_DIR": str(data / "data"),
            "TRITONTUBE_WORKER__DATA_DIR": str(data / "worker"),
            "TRITONTUBE_SEARCH__PATH": str(data / "search"),
        }
    )
    log = (outdir / "dev.out").open("w", encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tritontube.cli", "dev"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    stack = Stack(proc, f"http://127.0.0.1:{http}", f"http://127.0.0.1:{worker}", env, data)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"tritontube dev exited: see {outdir / 'dev.out'}")
        if "Press Ctrl-C to stop." in (outdir / "dev.out").read_text(errors="replace"):
            return stack
        time.sleep(0.5)
    stop_stack(stack)
    raise SystemExit(f"tritontube dev was not ready in 180 s: see {outdir / 'dev.out'}")


def stop_stack(stack: Stack) -> None:
    if stack.proc.poll() is None:
        stack.proc.send_signal(signal.SIGINT)
        try:
            stack.proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(stack.proc.pid, signal.SIGKILL)
            stack.proc.wait(timeout=10)


def tokens_for(stack: Stack) -> Any:
    """A minting function signed with the stack's own secret (in its data directory)."""
    from tritontube.cli import token_settings
    from tritontube.http.auth import mint_token
    from tritontube.settings import Settings

    auth = token_settings(Settings(data_dir=Path(stack.env["TRITONTUBE_DATA_DIR"]))).auth
    return lambda user: mint_token(auth, user, ttl_seconds=24 * 3600)


@dataclass
class Books:
    """What the API accepted, and everything measured along the way."""

    started: float = field(default_factory=time.monotonic)
    uploads: dict[str, float] = field(default_factory=dict)  # video id -> accepted at
    owners: dict[str, str] = field(default_factory=dict)  # video id -> user
    status: dict[str, str] = field(default_factory=dict)  # video id -> last status seen
    events: dict[str, tuple[str, float]] = field(default_factory=dict)  # id -> (video, at)
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)  # (op, status class)
    kills: list[tuple[float, str]] = field(default_factory=list)
    memory: list[tuple[float, str, int, int]] = field(default_factory=list)  # at, role, pid, rss
    lag: list[tuple[float, str, float]] = field(default_factory=list)
    errors: list[tuple[float, str, float]] = field(default_factory=list)  # at, what, total
    surprises: list[tuple[float, str, int, str]] = field(default_factory=list)  # first few

    def now(self) -> float:
        return time.monotonic() - self.started

    def ready(self) -> list[str]:
        return [v for v, s in self.status.items() if s == "READY"]


def outcome_class(status: int) -> str:
    """``2xx`` for successes, the exact status otherwise (``connection error`` for none)."""
    if status == 0:
        return "connection error"
    return "2xx" if 200 <= status < 300 else str(status)


# Answers a fault explains (the broker or the worker being restarted): retried, not errors.
EXPECTED_DURING_FAULTS = ("503", "connection error")


class Load:
    """The mixed workload; every request's outcome is counted in ``books.outcomes``."""

    def __init__(self, stack: Stack, books: Books, clip: bytes, args: argparse.Namespace) -> None:
        self.stack = stack
        self.books = books
        self.clip = clip
        self.args = args
        self.mint = tokens_for(stack)
        self.tokens: dict[str, str] = {}
        self.stop = asyncio.Event()

    def auth(self, user: str) -> dict[str, str]:
        if user not in self.tokens:
            self.tokens[user] = self.mint(user)
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    async def call(
        self, session: aiohttp.ClientSession, op: str, method: str, url: str, **kw: Any
    ) -> tuple[int, Any]:
        try:
            async with session.request(method, url, **kw) as resp:
                body = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError):
            status, body = 0, b""
        cls = outcome_class(status)
        self.books.outcomes[(op, cls)] += 1
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        if cls != "2xx" and cls not in EXPECTED_DURING_FAULTS and len(self.books.surprises) < 20:
            code = parsed.get("code") if isinstance(parsed, dict) else None
            detail = parsed.get("detail") if isinstance(parsed, dict) else None
            self.books.surprises.append((self.books.now(), op, status, f"{code}: {detail}"))
        return status, parsed

    async def pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)

    async def uploader(self, session: aiohttp.ClientSession) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            user = f"soak-up-{n}"
            await self.upload_one(session, user, n)
            await self.pause(self.args.upload_every)

    async def upload_one(self, session: aiohttp.ClientSession, user: str, n: int) -> None:
        api = self.stack.api
        body = {
            "title": f"soak clip {n}",
            "tags": ["soak"],
            "fileName": "clip.mp4",
            "contentType": "video/mp4",
            "sizeBytes": len(self.clip),
        }
        status, created = await self.call(
            session, "uploadURL", "POST", f"{api}/v1/videos:uploadURL",
            json=body, headers=self.auth(user),
        )  # fmt: skip
        if status != 200:
            return
        form = aiohttp.FormData()
        for key, value in created["upload"]["fields"].items():
            form.add_field(key, value)
        form.add_field("file", self.clip, filename="clip.mp4", content_type="video/mp4")
        status, _ = await self.call(
            session, "objectStorePOST", "POST", created["upload"]["url"], data=form
        )
        if not 200 <= status < 300:
            return
        for _ in range(10):  # a broker or worker outage: the same completion again
            status, _ = await self.call(
                session, "completeUpload", "POST", f"{api}/v1/videos:completeUpload",
                json={"videoId": created["videoId"]},
                headers={**self.auth(user), "If-Match": f'"{created["etag"]}"'},
            )  # fmt: skip
            if status == 200:
                self.books.uploads[created["videoId"]] = self.books.now()
                self.books.owners[created["videoId"]] = user
                return
            if status not in (0, 503):
                return
            await self.pause(3)

    async def poller(self, session: aiohttp.ClientSession) -> None:
        """transcodeStatus of every upload not terminal yet (what the SPA polls)."""
        while not self.stop.is_set() or self.args.draining:
            for video, user in list(self.books.owners.items()):
                if self.books.status.get(video) in TERMINAL:
                    continue
                status, body = await self.call(
                    session, "transcodeStatus", "GET",
                    f"{self.stack.api}/v1/videos/{video}/transcodeStatus", headers=self.auth(user),
                )  # fmt: skip
                if status == 200 and body:
                    self.books.status[video] = body["status"]
            if self.stop.is_set() and all(
                self.books.status.get(v) in TERMINAL for v in self.books.owners
            ):
                return
            await asyncio.sleep(2)

    async def viewer(self, session: aiohttp.ClientSession, index: int) -> None:
        user = f"soak-viewer-{index}"
        position = 0.0
        pending: tuple[str, list[dict[str, Any]]] | None = None
        while not self.stop.is_set():
            ready = self.books.ready()
            if not ready and pending is None:
                await self.pause(2)
                continue
            if pending is None:
                video = ready[(index + int(self.books.now() // 30)) % len(ready)]
                events = []
                for _ in range(self.args.batch):
                    position += 1.0
                    events.append(
                        {
                            "eventId": uuid.uuid4().hex,
                            "kind": "HEARTBEAT",
                            "positionSeconds": position,
                            "occurredAt": datetime.now(UTC).isoformat(),
                        }
                    )
                pending = (video, events)
            video, events = pending
            status, _ = await self.call(
                session, "watchEvents", "POST",
                f"{self.stack.api}/v1/videos/{video}/watchEvents",
                json={"events": events}, headers=self.auth(user),
            )  # fmt: skip
            if status == 202:
                at = self.books.now()
                for e in events:
                    self.books.events[e["eventId"]] = (video, at)
                pending = None
            elif status not in (0, 503):
                pending = None  # refused for good: counted, not retried
            await self.pause(2)

    async def searcher(self, session: aiohttp.ClientSession) -> None:
        words = ["soak", "clip", "nothing-matches", "zebra"]
        n = 0
        while not self.stop.is_set():
            n += 1
            user = f"soak-reader-{n % 10}"
            if n % 5:
                await self.call(
                    session, "search", "GET", f"{self.stack.api}/v1/videos:search",
                    params={"q": words[n % len(words)]}, headers=self.auth(user),
                )  # fmt: skip
            else:
                ready = self.books.ready()
                params = {"videoId": ready[n % len(ready)]} if ready else {}
                await self.call(
                    session, "recommendations", "GET",
                    f"{self.stack.api}/v1/videos:recommendations", params=params,
                    headers=self.auth(user),
                )  # fmt: skip
            await self.pause(1 / self.args.searches)


async def killer(stack: Stack, books: Books, args: argparse.Namespace, stop: asyncio.Event) -> None:
    """SIGKILL the worker, then the broker, then the worker... every ``--kill-every`` s."""
    victims = ["worker", "broker"]
    n = 0
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), args.kill_every)
        if stop.is_set():
            return
        role = victims[n % len(victims)]
        n += 1
        victim = stack.child(role)
        if victim is None:
            continue
        with contextlib.suppress(psutil.NoSuchProcess):
            victim.send_signal(signal.SIGKILL)
            books.kills.append((books.now(), role))
            print(f"  {books.now():7.1f} s: killed the {role} (pid {victim.pid})", flush=True)


async def sampler(
    stack: Stack, books: Books, args: argparse.Namespace, stop: asyncio.Event
) -> None:
    while True:
        at = books.now()
        for role, proc in stack.processes():
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                books.memory.append((at, role, proc.pid, proc.memory_info().rss))
        for url, name in ((f"{stack.worker}/metrics", "worker"), (f"{stack.api}/metrics", "api")):
            try:
                scrape = await asyncio.to_thread(promtext.scrape, url, 5.0)
            except OSError:
                continue
            if name == "worker":
                by_topic: dict[str, float] = defaultdict(float)
                for labels, value in scrape.get(
                    "tritontube_stream_consumer_lag_records", {}
                ).items():
                    by_topic[dict(labels)["topic"]] += value
                books.lag += [(at, topic, value) for topic, value in sorted(by_topic.items())]
                books.errors.append(
                    (at, "dead letters", sum(
                        scrape.get("tritontube_stream_events_dead_lettered_total", {}).values()
                    ))
                )  # fmt: skip
                books.errors.append(
                    (at, "transcode failures", sum(
                        scrape.get("tritontube_transcode_failures_total", {}).values()
                    ))
                )  # fmt: skip
            else:
                fives = sum(
                    v for labels, v in scrape.get(
                        "tritontube_http_request_duration_seconds_count", {}
                    ).items() if dict(labels).get("status", "").startswith("5")
                    and dict(labels).get("status") != "503"
                )  # fmt: skip
                books.errors.append((at, "API 5xx but 503", fives))
        expected = sum(n for (_, c), n in books.outcomes.items() if c in EXPECTED_DURING_FAULTS)
        other = sum(
            n for (_, c), n in books.outcomes.items() if c not in ("2xx", *EXPECTED_DURING_FAULTS)
        )
        books.errors.append((at, "client: 503 / no connection (faults)", float(expected)))
        books.errors.append((at, "client: other non-2xx", float(other)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), args.sample_every)
        if stop.is_set() and not args.draining:
            return


async def read_event_ids(bootstrap: str, topic: str) -> Counter[str]:
    """Event ids of every WatchEvent on ``topic``, read until the topic is idle (the embedded
    broker's end offsets cannot be trusted by an outside consumer)."""
    from aiokafka import AIOKafkaConsumer

    from tritontube.deps import build_deps
    from tritontube.settings import Settings

    codec = build_deps(Settings()).codec
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    seen: Counter[str] = Counter()
    try:
        idle = 0
        while idle < 3:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            records = [r for rs in batch.values() for r in rs]
            idle = 0 if records else idle + 1
            for record in records:
                with contextlib.suppress(Exception):  # a record of another type: not ours
                    event = codec.decode(record.value, expect=("WatchEvent",))
                    seen[event.event_id] += 1
    finally:
        await consumer.stop()
    return seen


async def drive(stack: Stack, books: Books, clip: bytes, args: argparse.Namespace) -> None:
    load = Load(stack, books, clip, args)
    args.draining = False
    stop_sampling = asyncio.Event()
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        sampling = asyncio.create_task(sampler(stack, books, args, stop_sampling))
        killing = asyncio.create_task(killer(stack, books, args, load.stop))
        poll = asyncio.create_task(load.poller(session))
        workers = [
            asyncio.create_task(load.uploader(session)),
            asyncio.create_task(load.searcher(session)),
            *(asyncio.create_task(load.viewer(session, i)) for i in range(args.viewers)),
        ]
        await asyncio.sleep(args.minutes * 60)
        print(
            f"  {books.now():7.1f} s: load stopped; draining (at most {args.drain:g} s)", flush=True
        )
        args.draining = True
        load.stop.set()
        await asyncio.gather(*workers, killing)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(poll, args.drain)
        await wait_for_lag(books, args.drain / 2)
        args.draining = False
        stop_sampling.set()
        await sampling


async def wait_for_lag(books: Books, seconds: float) -> None:
    """Until the last sample shows no lag on any topic (or ``seconds`` pass)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        last = max((at for at, _, _ in books.lag), default=None)
        if last is not None and all(v == 0 for at, _, v in books.lag if at == last):
            return
        await asyncio.sleep(2)


def nearest_kill(books: Books, at: float, role: str) -> float:
    """Seconds from the nearest ``role`` kill to ``at`` (negative: ``at`` came before it)."""
    return min((at - k for k, r in books.kills if r == role), key=abs, default=math.inf)


def check(books: Books, inputs: Counter[str], outputs: Counter[str]) -> dict[str, Any]:
    accepted = set(books.events)
    lost_at_broker = sorted(accepted - set(inputs))
    lost_in_processing = sorted((accepted & set(inputs)) - set(outputs))
    not_ready = {
        v: books.status.get(v, "?") for v in books.uploads if books.status.get(v) != "READY"
    }
    return {
        "uploads accepted (completeUpload 200)": len(books.uploads),
        "uploads READY": sum(1 for v in books.uploads if books.status.get(v) == "READY"),
        "uploads not READY": not_ready,
        "watch events accepted (202)": len(accepted),
        "accepted events on watch-events": len(accepted & set(inputs)),
        "accepted events counted by video-stats (on watch-events-by-user)": len(
            accepted & set(outputs)
        ),
        "lost at the broker (accepted, not on watch-events)": len(lost_at_broker),
        "their time relative to the nearest broker kill (s, negative: before it)": sorted(
            {round(nearest_kill(books, books.events[e][1], "broker"), 1) for e in lost_at_broker}
        )[:20],
        "lost in processing (on watch-events, never counted)": len(lost_in_processing),
        "counted more than once on watch-events-by-user": sum(
            1 for e in accepted if outputs.get(e, 0) > 1
        ),
    }


def memory_summary(books: Books) -> list[dict[str, Any]]:
    """Per role and process: first, peak and last RSS, and the slope over its lifetime."""
    by_pid: dict[tuple[str, int], list[tuple[float, int]]] = defaultdict(list)
    for at, role, pid, rss in books.memory:
        by_pid[(role, pid)].append((at, rss))
    rows = []
    for (role, pid), series in sorted(by_pid.items(), key=lambda kv: (kv[0][0], kv[1][0][0])):
        if len(series) < 2 or role == "ffmpeg":
            continue
        span = series[-1][0] - series[0][0]
        rows.append(
            {
                "role": role,
                "pid": pid,
                "from s": round(series[0][0]),
                "to s": round(series[-1][0]),
                "first MiB": series[0][1] / 2**20,
                "peak MiB": max(r for _, r in series) / 2**20,
                "last MiB": series[-1][1] / 2**20,
                "slope MiB/min": _slope(series) * 60 / 2**20 if span > 0 else math.nan,
            }
        )
    return rows


def _slope(series: list[tuple[float, int]]) -> float:
    n = len(series)
    mx = sum(t for t, _ in series) / n
    my = sum(v for _, v in series) / n
    den = sum((t - mx) ** 2 for t, _ in series)
    return sum((t - mx) * (v - my) for t, v in series) / den if den else 0.0


def plot(books: Books, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (mem, lag, err) = plt.subplots(3, 1, figsize=(11, 10), sharex=True)
    per_role: dict[str, dict[float, int]] = defaultdict(lambda: defaultdict(int))
    for at, role, _, rss in books.memory:
        per_role[role][at] += rss
    for role, series in sorted(per_role.items()):
        xs = sorted(series)
        mem.plot([x / 60 for x in xs], [series[x] / 2**20 for x in xs], label=role, lw=1)
    mem.set_ylabel("resident memory (MiB)")
    mem.set_title("memory of every process of the stack (summed per role)")
    per_topic: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for at, topic, value in books.lag:
        per_topic[topic].append((at, value))
    for topic, series in sorted(per_topic.items()):
        lag.plot([a / 60 for a, _ in series], [v for _, v in series], label=topic, lw=1)
    lag.set_ylabel("consumer lag (records)")
    lag.set_title("consumer lag per topic (the worker's /metrics)")
    per_error: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for at, what, total in books.errors:
        per_error[what].append((at, total))
    for what, series in sorted(per_error.items()):
        err.step([a / 60 for a, _ in series], [v for _, v in series], where="post", label=what)
    err.set_ylabel("count (cumulative)")
    err.set_title("errors")
    err.set_xlabel("minutes since the load started")
    for ax in (mem, lag, err):
        for at, role in books.kills:
            ax.axvline(at / 60, color="red" if role == "broker" else "grey", lw=0.8, ls="--")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper left", fontsize="small")
    fig.text(0.99, 0.005, "dashed: kills (red broker, grey worker)", ha="right", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_csv(path: Path, header: list[str], rows: list[tuple[Any, ...]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(header)
        out.writerows(rows)


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:,.1f}"
    return str(value)


def write_report(
    outdir: Path, args: argparse.Namespace, books: Books, books_check: dict[str, Any]
) -> Path:
    write_csv(outdir / "memory.csv", ["at_s", "role", "pid", "rss_bytes"], books.memory)
    write_csv(outdir / "lag.csv", ["at_s", "topic", "lag_records"], books.lag)
    write_csv(outdir / "errors.csv", ["at_s", "what", "total"], books.errors)
    plot(books, outdir / "soak.png")
    ok = (
        not books_check["uploads not READY"]
        and books_check["lost at the broker (accepted, not on watch-events)"] == 0
        and books_check["lost in processing (on watch-events, never counted)"] == 0
    )
    lines = [
        f"# Soak {outdir.name}",
        "",
        f"{args.minutes:g} min of mixed load on `tritontube dev` (an upload every "
        f"{args.upload_every:g} s, {args.viewers} viewers sending {args.batch} heartbeats every "
        f"2 s, {args.searches:g} searches/s), a kill every {args.kill_every:g} s (worker and "
        f"broker in turn: {len(books.kills)} kills), samples every {args.sample_every:g} s. "
        f"Machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the end.",
        "",
        f"## Events in = effects out: **{'yes' if ok else 'NO'}**",
        "",
        "| check | value |",
        "|---|---:|",
        *(f"| {k} | {fmt(v)} |" for k, v in books_check.items()),
        "",
        "## Requests (client side)",
        "",
        "| operation | answer | count |",
        "|---|---|---:|",
        *(f"| {op} | {cls} | {n} |" for (op, cls), n in sorted(books.outcomes.items())),
        "",
        "503 and connection errors are expected while the broker or the worker is down; the",
        "uploads and watch batches refused with them are sent again. Other refusals (first 20):",
        "",
        *(f"- {at:.1f} s: {op} {status} {what}" for at, op, status, what in books.surprises),
        *([] if books.surprises else ["- none"]),
        "",
        "## Memory per process (resident)",
        "",
        "| role | pid | from s | to s | first MiB | peak MiB | last MiB | slope MiB/min |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        *("| " + " | ".join(fmt(r[k]) for k in r) + " |" for r in memory_summary(books)),
        "",
        "## Kills",
        "",
        *(f"- {at:.1f} s: {role}" for at, role in books.kills),
        "",
        "![memory, lag and errors over time](soak.png)",
        "",
    ]
    report = outdir / "report.md"
    report.write_text("\n".join(lines), encoding="utf-8")
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m loadtest.soak", description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=30.0, help="how long the load runs")
    p.add_argument("--kill-every", type=float, default=180.0, help="seconds between kills")
    p.add_argument("--upload-every", type=float, default=10.0)
    p.add_argument("--viewers", type=int, default=4)
    p.add_argument("--batch", type=int, default=5, help="heartbeats per watch batch")
    p.add_argument("--searches", type=float, default=4.0, help="search requests per second")
    p.add_argument("--sample-every", type=float, default=5.0)
    p.add_argument("--drain", type=float, default=300.0, help="longest wait for the backlog")
    p.add_argument("--base-port", type=int, default=0, help="ports base..base+3 (0: free ones)")
    p.add_argument("--data-dir", default="", help="the stack's data (default: in the results)")
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)
    args.minutes = max(0.5, min(args.minutes, 24 * 60))
    args.kill_every = max(20.0, args.kill_every)
    args.searches = max(0.1, args.searches)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    outdir = Path(args.out) / f"soak-{stamp}"
    outdir.mkdir(parents=True, exist_ok=True)
    clip = make_clip(outdir / "clip.mp4", 2.0, "320x180").read_bytes()
    print(f"starting tritontube dev (log: {outdir / 'dev.out'}) ...", flush=True)
    stack = start_stack(args, outdir)
    books = Books()
    try:
        print(f"soak: {args.minutes:g} min against {stack.api}, a kill every "
              f"{args.kill_every:g} s", flush=True)  # fmt: skip
        asyncio.run(drive(stack, books, clip, args))
        bootstrap = stack.env["TRITONTUBE_KAFKA__BOOTSTRAP_SERVERS"]
        inputs = asyncio.run(read_event_ids(bootstrap, "watch-events"))
        outputs = asyncio.run(read_event_ids(bootstrap, "watch-events-by-user"))
    finally:
        stop_stack(stack)
    report = write_report(outdir, args, books, check(books, inputs, outputs))
    print(report.read_text(encoding="utf-8"))
    print(f"report: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
