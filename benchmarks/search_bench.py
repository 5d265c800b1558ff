"""Indexing, search and recommendations on the embedded stack, through the real pipeline.

    python -m benchmarks.search_bench [--videos 100000] [--queries 300]

Starts a fresh embedded stack (broker, SeaweedFS, archiver, worker, API) on free loopback
ports, then:

1. produces N READY ``VideoState`` records on ``video-state`` and times the pipeline
   (search-join -> search-documents -> search-writer -> tantivy) until all N are in the
   index (documents/s);
2. times the same searches three ways: the raw tantivy query (the query object our adapter
   builds, one ``searcher.search`` for the page and its stored documents: the engine's
   share), our adapter in process (``TantivyIndex.search``: cursor plan, tie groups, hit
   decoding) and the HTTP API (``GET /v1/videos:search`` on the API process: routing, auth,
   validation, JSON); the differences say where the time goes;
3. times recommendations through the HTTP API beside the raw tantivy queries they make
   (the views, recent and two tag pages); the rest is the API's worker reads (history,
   trending fan-out, statistics, co-watchers' histories) and ranking.

Every figure names the machine's load average; ``make bench`` runs two sizes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import tantivy
from aiokafka import AIOKafkaProducer

from benchmarks.common import Figure, Goal, at_least, at_most, percentile
from tritontube.deps import build_deps
from tritontube.devstack.process import free_port
from tritontube.devstack.stack import EmbeddedStack
from tritontube.domain.events import VideoState, WatchEvent
from tritontube.http.auth import mint_token
from tritontube.indexer.factory import cursor_secret
from tritontube.indexer.query import SearchQuery
from tritontube.indexer.tantivy_index import SORT_FIELDS, TantivyIndex
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
# Issue 22's targets: 100k videos, through the HTTP API.
INDEXING_GOAL = at_least(10_000)  # docs/s
P99_GOALS: dict[str, Goal] = {"search": at_most(20), "recommendations": at_most(50)}  # ms


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


def _query(rng: random.Random) -> SearchQuery:
    words = rng.sample(WORDS, rng.choice((1, 2)))
    if rng.random() < 0.3:  # typos
        words = [w[:-1] for w in words]
    return SearchQuery(
        q=" ".join(words),
        tags=(rng.choice(TAGS),) if rng.random() < 0.3 else (),
        sort=rng.choice(("relevance", "relevance", "views", "recent")),
    )


def _raw_page(index: TantivyIndex, query: SearchQuery) -> int:
    """The engine's share of one page: our query object, one search, the stored documents."""
    searcher = index._opened().searcher()
    tq = index._build_query(query)
    field = SORT_FIELDS.get(query.sort)
    want = query.page_size + 1
    if field is not None:
        hits = searcher.search(tq, want, count=False, order_by_field=field).hits
    else:
        hits = searcher.search(tq, want, count=False).hits
    for _, address in hits:
        searcher.doc(address)
    return len(hits)


async def _raw_and_adapter(
    s: Settings, queries: list[SearchQuery]
) -> tuple[list[float], list[float]]:
    index = TantivyIndex(s.search.path, cursor_secret=cursor_secret(s), read_only=True)
    await index.ensure()
    raw, adapter = [], []
    try:
        for q in queries[:20]:  # warm up both paths
            _raw_page(index, q)
            await index.search(q)
        for q in queries:
            started = time.perf_counter()
            _raw_page(index, q)
            raw.append(time.perf_counter() - started)
            started = time.perf_counter()
            await index.search(q)
            adapter.append(time.perf_counter() - started)
    finally:
        await index.close()
    return raw, adapter


def _params(q: SearchQuery) -> dict[str, str]:
    out = {"q": q.q, "sort": q.sort, "pageSize": str(q.page_size)}
    if q.tags:
        out["tags"] = ",".join(q.tags)
    return out


async def _http_latency(
    s: Settings, path: str, requests: list[tuple[str, dict[str, str]]]
) -> list[float]:
    """Sequential GETs (one at a time: latency, not throughput) as the given users."""
    url = f"http://{s.http.host}:{s.http.port}{path}"
    samples = []
    tokens: dict[str, str] = {}
    async with aiohttp.ClientSession() as session:
        for i, (user, params) in enumerate(requests):
            token = tokens.setdefault(user, mint_token(s.auth, user))
            headers = {"Authorization": f"Bearer {token}"}
            started = time.perf_counter()
            async with session.get(url, params=params, headers=headers) as resp:
                await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"{path} answered {resp.status}: {await resp.text()}")
            if i >= 20:  # the first requests warm the API up (connections, caches)
                samples.append(time.perf_counter() - started)
    return samples


async def _watch_some(s: Settings, n_videos: int) -> None:
    """A little viewing history (users u0..u499), so recommendations have signals."""
    codec = build_deps(s).codec
    t0 = datetime.now(UTC) - timedelta(hours=1)
    items = []
    for i in range(5000):
        user, video = f"u{i % 500}", f"v{(i * 7919) % min(n_videos, 2000)}"
        at = t0 + timedelta(seconds=i % 3000)
        e = WatchEvent(f"w{i}", video, user, "HEARTBEAT", float(i % 600), at, at)
        items.append((video.encode(), codec.encode(e)))
    await _produce(s.kafka.bootstrap_servers, catalogue.WATCH_EVENTS.name, items)
    await asyncio.sleep(3.0)  # folded well within this (stream_bench measures that path)


def _raw_recommendation(index: TantivyIndex, tags: tuple[str, ...]) -> None:
    """The tantivy pages one recommendation reads: views, recent and one page per tag."""
    _raw_page(index, SearchQuery(q="", sort="views", page_size=20))
    _raw_page(index, SearchQuery(q="", sort="recent", page_size=10))
    for tag in tags:
        _raw_page(index, SearchQuery(q="", tags=(tag,), sort="views", page_size=20))


async def _raw_recommendations(s: Settings, n: int) -> list[float]:
    index = TantivyIndex(s.search.path, cursor_secret=cursor_secret(s), read_only=True)
    await index.ensure()
    rng = random.Random(13)
    samples = []
    try:
        for _ in range(n):
            tags = tuple(rng.sample(TAGS, 2))
            started = time.perf_counter()
            _raw_recommendation(index, tags)
            samples.append(time.perf_counter() - started)
    finally:
        await index.close()
    return samples


@dataclass(frozen=True)
class SizeResult:
    videos: int
    indexing_rate: float
    load: dict[str, tuple[float, float, float]]
    samples: dict[str, list[float]]


async def run_size(s: Settings, videos: int, queries: int) -> SizeResult:
    load: dict[str, tuple[float, float, float]] = {}
    rate = await _index_videos(s, videos)
    load["indexing"] = os.getloadavg()
    await _watch_some(s, videos)
    rng = random.Random(11)
    qs = [_query(rng) for _ in range(queries)]
    raw, adapter = await _raw_and_adapter(s, qs)
    load["search raw"] = load["search adapter"] = os.getloadavg()
    users = [f"u{rng.randrange(500)}" for _ in qs]
    http = await _http_latency(
        s,
        "/v1/videos:search",
        [(u, _params(q)) for u, q in zip(users, [*qs[:20], *qs], strict=False)],
    )
    load["search HTTP"] = os.getloadavg()
    recs = []
    for i in range(queries + 20):
        user = f"u{rng.randrange(500)}" if i % 4 else f"new{i}"
        params = {"videoId": f"v{rng.randrange(min(videos, 2000))}"} if i % 2 else {}
        recs.append((user, params))
    rec_http = await _http_latency(s, "/v1/videos:recommendations", recs)
    load["recommendations HTTP"] = os.getloadavg()
    rec_raw = await _raw_recommendations(s, queries)
    load["recommendations raw"] = os.getloadavg()
    samples = {
        "search raw": raw,
        "search adapter": adapter,
        "search HTTP": http,
        "recommendations HTTP": rec_http,
        "recommendations raw": rec_raw,
    }
    return SizeResult(videos, rate, load, samples)


def _measure(videos: int, queries: int) -> SizeResult:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        s = _settings(root)
        stack = EmbeddedStack(settings=s, log_dir=root / "logs", with_api=True)
        try:
            stack.start()
            return asyncio.run(run_size(stack.settings, videos, queries))
        finally:
            stack.stop()


def to_figures(r: SizeResult) -> list[Figure]:
    size = f"{r.videos // 1000}k videos" if r.videos >= 1000 else f"{r.videos} videos"

    def note(what: str) -> str:
        return "load {:.1f}/{:.1f}/{:.1f}".format(*r.load[what])

    out = [
        Figure(f"indexing rate [{size}]", r.indexing_rate, "docs/s", goal=INDEXING_GOAL,
               note=note("indexing")),
    ]  # fmt: skip
    for what, values in r.samples.items():
        kind = what.split()[0]
        goal = P99_GOALS[kind] if what.endswith("HTTP") else None
        out.append(Figure(f"{what} p50 [{size}]", percentile(values, 50) * 1000, "ms",
                          note=note(what)))  # fmt: skip
        out.append(Figure(f"{what} p99 [{size}]", percentile(values, 99) * 1000, "ms",
                          goal=goal, note=note(what)))  # fmt: skip
    return out


SIZES = {True: (2_000, 10_000), False: (10_000, 100_000)}


def figures(quick: bool) -> list[Figure]:
    """``make bench`` entry (benchmarks/common.py): two index sizes
    (``TRITONTUBE_BENCH_SEARCH_SIZES=videos,videos`` overrides them)."""
    queries = 200 if quick else 300
    raw = os.environ.get("TRITONTUBE_BENCH_SEARCH_SIZES", "").strip()
    sizes = [int(v) for v in raw.split(",")] if raw else SIZES[quick]
    out: list[Figure] = []
    for videos in sizes:
        out += to_figures(_measure(videos, queries))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    for f in to_figures(_measure(args.videos, args.queries)):
        print(f"{f.name:45s} {f.value:10.1f} {f.unit:7s} goal {f.goal or '-'}  ({f.note})")


if __name__ == "__main__":
    main()
