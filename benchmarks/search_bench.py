"""Search, recommendations and watch analytics on the embedded stack, through the real pipeline.

    python -m benchmarks.search_bench [--videos 100000] [--watch-events 20000] [--queries 300]

Starts a fresh embedded stack (broker, SeaweedFS, worker) on free loopback ports, then:

1. produces N READY ``VideoState`` records on ``video-state`` and times the indexer agent
   until all N are in the tantivy index (indexing rate, documents/s);
2. produces watch events on ``watch-events`` and times the analytics agent until it has
   emitted one ``VideoStats`` per event (events/s), next to a raw aiokafka consumer reading
   the same topic in the same run (the broker/client ceiling);
3. times searches against the index (read-only, as the API holds it) and recommendation
   requests through the HTTP app (in process), reporting p50/p99.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import tantivy
from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from benchmarks.common import Figure, Goal, at_least, at_most
from tritontube.deps import build_deps
from tritontube.devstack.process import free_port
from tritontube.devstack.stack import EmbeddedStack
from tritontube.domain.events import VideoState, WatchEvent
from tritontube.http.app import create_http_app
from tritontube.http.auth import mint_token
from tritontube.indexer.factory import cursor_secret
from tritontube.indexer.query import SearchQuery
from tritontube.indexer.tantivy_index import TantivyIndex
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

_WORDS_TEXT = (
    "zebra crossing night city street food cooking pasta travel tokyo osaka music guitar "
    "piano lesson cat dog garden tour review unboxing game speedrun river mountain bike "
    "train coffee bread winter summer beach drone timelapse lecture physics history"
)
WORDS = tuple(_WORDS_TEXT.split())
INDEX_TIMEOUT = 1800.0
TAGS = ("music", "travel", "food", "pets", "gaming", "science", "sports", "diy")
# Issue 6's targets on this 2-core box (docs/search.md, "Benchmark").
INDEXING_GOAL = at_least(3_000)  # docs/s
ANALYTICS_GOAL = at_least(1_500)  # watch events/s
P99_GOALS: dict[str, Goal] = {"search": at_most(50), "recommendations": at_most(150)}  # ms


@dataclass
class Row:
    what: str
    value: str


def _settings(root: Path) -> Settings:
    worker_port = free_port()
    return Settings(
        kafka=KafkaSettings(
            bootstrap_servers=f"127.0.0.1:{free_port()}", embedded_broker_compat=True, partitions=4
        ),
        s3=S3Settings(endpoint_url=f"http://127.0.0.1:{free_port()}"),
        http=HttpSettings(port=free_port()),
        worker=WorkerSettings(web_port=worker_port, data_dir=root / "worker"),
        search=SearchSettings(path=root / "search"),
        data_dir=root / "data",
        auth=AuthSettings(secret=secrets.token_urlsafe(32)),  # the worker refuses the placeholder
    )


def _video(i: int, now: datetime, rng: random.Random) -> VideoState:
    title = " ".join(rng.sample(WORDS, 4))
    return VideoState(
        video_id=f"v{i}",
        version=4,
        status="READY",
        owner=f"owner{i % 997}",
        title=title.capitalize(),
        description=" ".join(rng.sample(WORDS, 8)),
        tags=tuple(rng.sample(TAGS, 2)),
        created_at=now,
        updated_at=now,
        expires_at=now + timedelta(minutes=15),
        duration_seconds=60.0 + i % 600,
    )


async def _produce(bootstrap: str, topic: str, items: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=256_000)
    await producer.start()
    try:
        pending = [await producer.send(topic, value, key=key) for key, value in items]
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


def _num_docs(path: Path) -> int:
    try:
        index = tantivy.Index.open(str(path))
        index.reload()
        return int(index.searcher().num_docs)
    except ValueError:
        return 0


async def _index_videos(s: Settings, n: int) -> float:
    rng = random.Random(7)
    now = datetime.now(UTC)
    codec = build_deps(s).codec
    items = [(f"v{i}".encode(), codec.encode(_video(i, now, rng))) for i in range(n)]
    started = time.perf_counter()
    await _produce(s.kafka.bootstrap_servers, catalogue.VIDEO_STATE.name, items)
    while await asyncio.to_thread(_num_docs, s.search.path) < n:
        if time.perf_counter() - started > INDEX_TIMEOUT:
            raise TimeoutError(f"fewer than {n} documents indexed after {INDEX_TIMEOUT}s")
        await asyncio.sleep(0.25)
    return n / (time.perf_counter() - started)


async def _count(bootstrap: str, topic: str, expect: int, timeout: float) -> float:
    """Seconds until ``expect`` records were read from ``topic`` (from the beginning)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    started = time.perf_counter()
    seen = 0
    try:
        while seen < expect:
            if time.perf_counter() - started > timeout:
                raise TimeoutError(f"{topic}: {seen}/{expect} records after {timeout}s")
            batch = await consumer.getmany(timeout_ms=500, max_records=10_000)
            seen += sum(len(v) for v in batch.values())
    finally:
        await consumer.stop()
    return time.perf_counter() - started


async def _watch(s: Settings, n_events: int, n_videos: int) -> tuple[float, float]:
    codec = build_deps(s).codec
    t0 = datetime.now(UTC) - timedelta(hours=1)
    items = []
    for i in range(n_events):
        user = f"u{i % 500}"
        video = f"v{(i * 7919) % min(n_videos, 2000)}"
        at = t0 + timedelta(seconds=i % 3000)
        e = WatchEvent(f"w{i}", video, user, "HEARTBEAT", float(i % 600), at, at)
        items.append((video.encode(), codec.encode(e)))
    bootstrap = s.kafka.bootstrap_servers
    started = time.perf_counter()
    await _produce(bootstrap, catalogue.WATCH_EVENTS.name, items)
    # The analytics agent emits one VideoStats per (non-duplicate) event.
    await _count(bootstrap, catalogue.VIDEO_STATS.name, n_events, timeout=600)
    agent_rate = n_events / (time.perf_counter() - started)
    raw = await _count(bootstrap, catalogue.WATCH_EVENTS.name, n_events, timeout=120)
    return agent_rate, n_events / raw


def _pcts(samples: list[float]) -> str:
    q = statistics.quantiles(samples, n=100)
    return f"{q[49] * 1000:.1f} / {q[98] * 1000:.1f}"


async def _search_latency(s: Settings, queries: int) -> str:
    index = TantivyIndex(s.search.path, cursor_secret=cursor_secret(s), read_only=True)
    await index.ensure()
    rng = random.Random(11)
    samples = []
    try:
        for _ in range(queries):
            words = rng.sample(WORDS, rng.choice((1, 2)))
            if rng.random() < 0.3:  # typos
                words = [w[:-1] for w in words]
            q = SearchQuery(
                q=" ".join(words),
                tags=(rng.choice(TAGS),) if rng.random() < 0.3 else (),
                sort=rng.choice(("relevance", "relevance", "views", "recent")),
            )
            started = time.perf_counter()
            await index.search(q)
            samples.append(time.perf_counter() - started)
    finally:
        await index.close()
    return _pcts(samples)


async def _recommend_latency(s: Settings, requests: int) -> str:
    app = create_http_app(s, build_deps(s))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", s.http.port)
    await site.start()
    rng = random.Random(13)
    samples = []
    try:
        async with aiohttp.ClientSession() as session:
            for i in range(requests):
                user = f"u{rng.randrange(500)}" if i % 4 else f"new{i}"
                params = {"videoId": f"v{rng.randrange(2000)}"} if i % 2 else {}
                headers = {"Authorization": f"Bearer {mint_token(s.auth, user)}"}
                url = f"http://127.0.0.1:{s.http.port}/v1/videos:recommendations"
                started = time.perf_counter()
                async with session.get(url, params=params, headers=headers) as resp:
                    await resp.read()
                    if resp.status != 200:
                        raise RuntimeError(f"recommendations answered {resp.status}")
                samples.append(time.perf_counter() - started)
    finally:
        await runner.cleanup()
    return _pcts(samples)


async def run(args: argparse.Namespace, s: Settings) -> list[Row]:
    rows = [Row("videos indexed", f"{args.videos}")]
    rate = await _index_videos(s, args.videos)
    rows.append(Row("indexing rate (docs/s, events -> indexer agent -> tantivy)", f"{rate:,.0f}"))
    agent_rate, raw_rate = await _watch(s, args.watch_events, args.videos)
    rows.append(Row("watch events/s through the analytics agents", f"{agent_rate:,.0f}"))
    rows.append(Row("raw aiokafka consume rate (msg/s, same topic)", f"{raw_rate:,.0f}"))
    rows.append(Row("search p50 / p99 (ms)", await _search_latency(s, args.queries)))
    rows.append(
        Row("recommendations p50 / p99 (ms, HTTP)", await _recommend_latency(s, args.queries))
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=100_000)
    parser.add_argument("--watch-events", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        s = _settings(root)
        stack = EmbeddedStack(settings=s, log_dir=root / "logs", with_api=False)
        try:
            stack.start()
            rows = asyncio.run(run(args, stack.settings))
        finally:
            stack.stop()
    width = max(len(r.what) for r in rows)
    print(f"{'metric'.ljust(width)}  value")
    print(f"{'-' * width}  {'-' * 12}")
    for r in rows:
        print(f"{r.what.ljust(width)}  {r.value}")


def figures(quick: bool) -> list[Figure]:
    """``make bench`` entry (benchmarks/common.py): this module's rows as figures."""
    args = argparse.Namespace(
        videos=5_000 if quick else 100_000,
        watch_events=5_000 if quick else 20_000,
        queries=200 if quick else 300,
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        s = _settings(root)
        stack = EmbeddedStack(settings=s, log_dir=root / "logs", with_api=False)
        try:
            stack.start()
            rows = {r.what: r.value for r in asyncio.run(run(args, stack.settings))}
        finally:
            stack.stop()

    def num(text: str) -> float:
        return float(text.replace(",", ""))

    out = []
    for what, value in rows.items():
        if what.startswith("videos indexed"):
            continue
        if "/ p99" in what:
            p50, p99 = (num(v) for v in value.split("/"))
            base = what.split(" p50")[0]
            goal = P99_GOALS.get(base.split()[0])
            out += [Figure(f"{base} p50", p50, "ms"), Figure(f"{base} p99", p99, "ms", goal=goal)]
        elif what.startswith("watch events/s"):
            out.append(
                Figure(
                    what,
                    num(value),
                    "events/s",
                    goal=ANALYTICS_GOAL,
                    reference="aiokafka_consume",
                )
            )
        elif what.startswith("indexing rate"):
            out.append(Figure(what.split(" (")[0], num(value), "docs/s", goal=INDEXING_GOAL))
        else:
            out.append(Figure(what.split(" (")[0], num(value), "events/s"))
    return out


if __name__ == "__main__":
    main()
