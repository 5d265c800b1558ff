"""Fault injection on the worker: kill -9 during indexing and during table recovery, and a
search backend that dies while READY videos keep coming.

Every process is started by the fixtures and killed here with SIGKILL
(``ManagedProcess.kill``). Events enter through the topics the way production produces them;
the assertions compare events in with effects out (index documents, table entries, records on
the public topics), so anything lost or doubled shows up as a count or a version.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from aiokafka import AIOKafkaConsumer
from opensearchpy import AsyncOpenSearch
from opensearchpy.exceptions import ConnectionError as OpenSearchConnectionError
from opensearchpy.exceptions import NotFoundError

from helpers import completion, owned_videos, produce, read_all, session, wait_for, worker_get
from tritontube.agents.analytics import policy_from
from tritontube.deps import build_deps
from tritontube.devstack.osmem import osmem_url, running_osmem
from tritontube.devstack.process import ManagedProcess, ProcessFailedError
from tritontube.devstack.stack import EmbeddedStack
from tritontube.domain import analytics as an
from tritontube.domain.events import VideoState, WatchEvent
from tritontube.http.app import create_http_app
from tritontube.http.auth import mint_token
from tritontube.indexer.factory import cursor_secret
from tritontube.indexer.join import SearchSource
from tritontube.indexer.tantivy_index import TantivyIndex
from tritontube.settings import AnalyticsSettings, SearchSettings, Settings, WorkerSettings
from tritontube.streams import catalogue
from tritontube.streams.records import EventCodec
from tritontube.streams.tables import decode_value

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ClientFactory = Callable[..., Any]
NOW = datetime.now(UTC).replace(microsecond=0)

#: Defects these tests detect precisely (see docs/reliability.md).
ENSURE_RACE = "Crashed reason=RuntimeError('TantivyIndex.ensure() was not called"
ENSURE_RACE_REASON = (
    "agents/app.py opens the search index in an @app.service, which Faust starts only after "
    "'Worker ready'; a worker restarted with a backlog runs the indexer agent first, the agent "
    "crashes ('TantivyIndex.ensure() was not called') and is not restarted usefully"
)
#: Fixed defects, kept as the assertion messages should they return.
STALL_REASON = (
    "the restarted worker stopped receiving events part-way through the backlog: Faust "
    "dropped records it had fetched (agents/faust_fixes.py: an emptied active-partition set "
    "fetches every partition; the end of a rebalance resumes streams before seeking)"
)
RECOVERY_KILL_REASON = (
    "after a worker was killed during table recovery, some UploadCompleted events were not "
    "applied by the next worker (their sessions stayed UPLOAD_PENDING): fetched records "
    "dropped at the end of recovery (agents/faust_fixes.py)"
)
TABLE_BEFORE_INDEX_REASON = (
    "agents/indexer.py writes the search_sources join table before the bulk upsert; a kill "
    "between the two leaves the newer version in the table's changelog, so the redelivered "
    "event is 'not newer' and the document is never written"
)


# --------------------------------------------------------------------------- helpers


def no_transcode(settings: Settings, **changes: Any) -> WorkerSettings:
    """The worker group of ``settings`` without the transcode agent (no media here)."""
    return settings.worker.model_copy(update={"transcode_enabled": False, **changes})


def video_state(video_id: str, version: int, status: str, title: str) -> VideoState:
    return VideoState(
        video_id=video_id,
        version=version,
        status=status,
        owner="carol",
        title=title,
        created_at=NOW,
        updated_at=NOW + timedelta(seconds=version),
        expires_at=NOW + timedelta(minutes=15),
        duration_seconds=60.0 if status == "READY" else None,
    )


def lifecycle_states(video_id: str) -> list[VideoState]:
    """Three versions of one video; only the last is READY, with its final title."""
    return [
        video_state(video_id, 1, "UPLOAD_PENDING", f"draft {video_id}"),
        video_state(video_id, 2, "TRANSCODING", f"draft {video_id}"),
        video_state(video_id, 3, "READY", f"final {video_id}"),
    ]


def worker_metric(settings: Settings, name: str, **labels: str) -> float:
    """Sum of one counter's samples on the worker's /metrics matching ``labels``."""
    url = f"{settings.worker_seed_urls()[0]}/metrics"
    with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 - loopback test URL
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


async def join_table_log(
    settings: Settings, video_ids: set[str], codec: EventCodec
) -> dict[str, list[int]]:
    """State versions the indexer's join table logged for ``video_ids`` (diagnostics)."""
    topic = f"{settings.worker.app_id}-search_sources-changelog"
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka.bootstrap_servers,
        auto_offset_reset="earliest",
        group_id=None,
        enable_auto_commit=False,
    )
    await consumer.start()
    out: dict[str, list[int]] = defaultdict(list)
    try:
        quiet = 0
        while quiet < 3:
            batch = await consumer.getmany(timeout_ms=500)
            records = [r for msgs in batch.values() for r in msgs]
            quiet = 0 if records else quiet + 1
            for r in records:
                if r.key is not None and r.key.decode() in video_ids and r.value is not None:
                    source = decode_value(codec, r.value, SearchSource)
                    out[r.key.decode()].append(source.state_version)
    finally:
        await consumer.stop()
    return dict(out)


@dataclass
class LogWatch:
    """New lines of an appended log file since the watch began."""

    path: Path
    start: int = 0

    def __post_init__(self) -> None:
        self.start = self.path.stat().st_size if self.path.exists() else 0

    def text(self) -> str:
        with self.path.open("rb") as f:
            f.seek(self.start)
            return f.read().decode(errors="replace")


def the_worker(stack: EmbeddedStack) -> ManagedProcess:
    return next(p for p in stack.processes if p.name == "worker")


def kill_worker(stack: EmbeddedStack) -> None:
    worker = the_worker(stack)
    worker.kill()
    stack.processes.remove(worker)


async def search_all(client: TestClient, settings: Settings, page_size: int = 37) -> list[str]:  # type: ignore[type-arg]
    """Every video id the public search API returns for an empty query, page by page."""
    headers = {"Authorization": f"Bearer {mint_token(settings.auth, 'reader')}"}
    ids: list[str] = []
    token: str | None = None
    for _ in range(1000):
        params = {"q": "", "pageSize": str(page_size)}
        if token is not None:
            params["pageToken"] = token
        resp = await client.get("/v1/videos:search", params=params, headers=headers)
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        ids += [hit["videoId"] for hit in body["results"]]
        token = body["nextPageToken"]
        if token is None:
            return ids
    raise AssertionError("pagination did not end")


# --------------------------------------------------------------------------- 1. indexing


async def test_worker_killed_mid_indexing_leaves_each_ready_video_searchable_once(
    make_settings: Callable[..., Settings],
    stack_factory: Callable[..., EmbeddedStack],
    aiohttp_client: ClientFactory,
    codec: EventCodec,
) -> None:
    """600 VideoState events (3 versions of 200 videos); SIGKILL while the indexer is part
    way; a new worker resumes from the last committed offset and the index converges."""
    count = 200
    base = make_settings()
    settings = make_settings(
        worker=no_transcode(base),
        http=base.http,
        # Small bulks: indexing takes long enough to be killed in the middle of it.
        analytics=AnalyticsSettings(index_batch_size=5),
    )
    stack = stack_factory(settings)
    ids = [f"ix{i:03d}" for i in range(count)]
    events = [(v, codec.encode(s)) for v in ids for s in lifecycle_states(v)]

    reader = TantivyIndex(
        settings.search.path, cursor_secret=cursor_secret(settings), read_only=True
    )
    await reader.ensure()
    try:

        async def ready_in_index() -> dict[str, Any]:
            await reader.refresh()
            docs = await reader.get_many(ids)
            return {v: d for v, d in docs.items() if d.status == "READY"}

        await produce(settings, catalogue.VIDEO_STATE.name, events)
        deadline = time.monotonic() + 60
        while len(indexed := await ready_in_index()) < count // 5:
            assert time.monotonic() < deadline, "the indexer never started"
            await asyncio.sleep(0.02)
        consumed_before = worker_metric(
            settings, "tritontube_stream_events_consumed_total", agent="search-join"
        )
        kill_worker(stack)
        at_kill = len(await ready_in_index())
        assert at_kill < count, "the indexer finished before the kill: nothing was tested"

        log = LogWatch(stack.log_dir / "worker.log")
        restarted = time.monotonic()
        await asyncio.to_thread(stack.start_worker)
        while len(indexed := await ready_in_index()) < count:
            assert ENSURE_RACE not in log.text(), f"{ENSURE_RACE_REASON} ({len(indexed)}/{count})"
            if time.monotonic() - restarted > 60:
                docs = await reader.get_many(ids)
                missing = {v: docs[v].version if v in docs else 0 for v in ids if v not in indexed}
                joined = await join_table_log(settings, set(missing), codec)
                ahead = {
                    v: (missing[v], joined[v])
                    for v in missing
                    if max(joined.get(v, [0])) > missing[v]
                }
                assert not ahead, f"{TABLE_BEFORE_INDEX_REASON}: (index, table log) {ahead}"
                consumed = worker_metric(
                    settings, "tritontube_stream_events_consumed_total", agent="search-join"
                )
                assert consumed >= len(events), (
                    f"{STALL_REASON}: consumed {consumed:.0f}/{len(events)} events, "
                    f"{len(indexed)}/{count} indexed"
                )
                raise AssertionError(
                    f"{len(indexed)}/{count} after restart; index versions of the missing: "
                    f"{missing}; their search_sources changelog: {joined}; the new worker's "
                    f"indexer consumed {consumed:.0f} events"
                )
            await asyncio.sleep(0.05)
        recovered = time.monotonic() - restarted
        docs = await reader.get_many(ids)
    finally:
        await reader.close()

    # The index holds the final version of every document, nothing older, nothing else.
    assert sorted(docs) == ids
    wrong = [
        (v, d.version, d.status, d.title)
        for v, d in docs.items()
        if (d.version, d.status, d.title) != (3, "READY", f"final {v}")
    ]
    assert wrong == []

    # Searchable exactly once: no duplicate hit across pages, and every one of them.
    client = await aiohttp_client(create_http_app(settings, build_deps(settings)))
    hits = await search_all(client, settings)
    assert [v for v, n in Counter(hits).items() if n > 1] == []
    assert sorted(hits) == ids

    consumed_after = worker_metric(
        settings, "tritontube_stream_events_consumed_total", agent="search-join"
    )
    applied_after = worker_metric(settings, "tritontube_index_documents_applied_total")
    # At-least-once: the new worker re-reads from the last commit, so events in <= consumed.
    assert consumed_before + consumed_after >= len(events)
    print(
        f"\nkill -9 mid-indexing: {len(events)} events in, {count} documents out "
        f"(all version 3, {len(hits)} distinct hits); {at_kill}/{count} READY indexed at the "
        f"kill; new worker: {consumed_after:.0f} events consumed, {applied_after:.0f} documents "
        f"applied; all searchable {recovered:.1f}s after the restart began"
    )


# --------------------------------------------------------------------------- 1b. watch events


def watch_stream(videos: int, viewers: int, count: int) -> list[WatchEvent]:
    """Viewers playing videos in time order, with client retries (an event id sent twice)."""
    rng = random.Random(3)
    clocks: dict[tuple[str, str], float] = {}
    out: list[WatchEvent] = []
    while len(out) < count:
        video, user = f"wv{rng.randrange(videos)}", f"viewer{rng.randrange(viewers)}"
        at = clocks.get((video, user), rng.uniform(0, 600)) + rng.uniform(1, 20)
        clocks[(video, user)] = at
        moment = NOW - timedelta(hours=1) + timedelta(seconds=at)
        kind = rng.choice(["HEARTBEAT"] * 6 + ["PLAY", "PAUSE", "SEEK", "ENDED"])
        event = WatchEvent(f"k{len(out)}", video, user, kind, at / 10, moment, moment)
        out.append(event)
        if rng.random() < 0.02:
            out.append(event)
    return out


def folded(
    events: list[WatchEvent], policy: an.AnalyticsPolicy
) -> tuple[dict[str, an.VideoAnalytics], dict[str, an.UserHistory]]:
    """The domain folds applied here, one event at a time, in order (what the agents must
    end with, however they batch and however often they are killed)."""
    sessions: dict[str, an.WatchSession] = {}
    stats: dict[str, an.VideoAnalytics] = {}
    histories: dict[str, an.UserHistory] = {}
    for e in events:
        key = an.session_key(e.video_id, e.user_id)
        result = an.fold_session(sessions.get(key), e, None, policy)
        if result is None:
            continue
        sessions[key], delta = result
        before = stats.get(e.video_id) or an.VideoAnalytics(video_id=e.video_id)
        stats[e.video_id] = an.fold_stats(before, e.user_id, delta, policy)
        histories[e.user_id] = an.fold_history(histories.get(e.user_id), e, policy)
    return stats, histories


async def test_worker_killed_mid_watch_batches_counts_every_event_once(
    make_settings: Callable[..., Settings],
    stack_factory: Callable[..., EmbeddedStack],
    codec: EventCodec,
) -> None:
    """30,000 watch events (2 % re-sent by clients); SIGKILL while the batched analytics
    agents are part way; the next worker resumes from the last commit and every video's
    totals and every viewer's history equal the one-event-at-a-time folds: nothing lost,
    nothing counted twice (batches redelivered after the kill change nothing again)."""
    base = make_settings()
    settings = make_settings(worker=no_transcode(base), http=base.http)
    stack = stack_factory(settings)
    events = watch_stream(videos=60, viewers=400, count=30_000)
    await produce(
        settings, catalogue.WATCH_EVENTS.name, [(e.video_id, codec.encode(e)) for e in events]
    )
    done = "tritontube_stream_batch_events_done_total"
    deadline = time.monotonic() + 60
    while (at_kill := worker_metric(settings, done, topic=catalogue.WATCH_EVENTS.name)) < 2000:
        assert time.monotonic() < deadline, "the analytics agents never started"
        await asyncio.sleep(0.02)
    kill_worker(stack)
    assert at_kill < len(events), "every event was processed before the kill: nothing was tested"
    await asyncio.to_thread(stack.start_worker)

    want, histories = folded(events, policy_from(settings))

    def totals_reached() -> bool:
        for video_id, s in want.items():
            status, got = worker_get(settings, f"/stats/{video_id}")
            if status != 200 or got.version < s.version:
                return False
        return True

    await wait_for(totals_reached, timeout=120, what="every watch event folded after the restart")
    for video_id, s in want.items():
        _, got = worker_get(settings, f"/stats/{video_id}")
        assert (got.version, got.views, got.viewers) == (s.version, s.views, s.viewers), video_id
        assert got.watch_seconds == pytest.approx(round(s.watch_seconds, 3), abs=1e-3), video_id
    for user_id in sorted(histories)[:40]:
        expect = [(h.video_id, h.last_watched_ms) for h in histories[user_id].entries]

        def history_of(user: str = user_id, expect: list[Any] = expect) -> bool:
            status, got = worker_get(settings, f"/users/{user}/history")
            return (
                status == 200 and [(h.video_id, h.last_watched_ms) for h in got.entries] == expect
            )

        await wait_for(history_of, timeout=30, what=f"{user_id}'s history")
    print(
        f"\nkill -9 mid-watch: {len(events)} events in, {at_kill:.0f} acknowledged at the kill; "
        f"{len(want)} videos' totals and {len(histories)} histories exact after the restart"
    )


# --------------------------------------------------------------------------- 2. recovery


def start_unready_worker(stack: EmbeddedStack) -> ManagedProcess:
    """A worker process started without waiting for /readyz (it is about to recover)."""
    worker = stack.worker_process(0)
    stack.processes.append(worker)
    worker.start(timeout=60)
    return worker


@pytest.mark.timeout(240)
async def test_worker_killed_during_table_recovery_applies_nothing_twice(
    make_settings: Callable[..., Settings],
    stack_factory: Callable[..., EmbeddedStack],
    codec: EventCodec,
) -> None:
    """A table of 3000 sessions; UploadCompleted for each is waiting on the topic; a worker
    is SIGKILLed while it restores the table from its changelog, the next one recovers and
    folds every completion exactly once (one version 2, one TranscodeJob per video)."""
    count = 3000
    base = make_settings()
    settings = make_settings(worker=no_transcode(base), http=base.http)
    stack = stack_factory(settings)
    ids = [f"rc{i:04d}" for i in range(count)]
    await produce(
        settings,
        catalogue.UPLOADS.name,
        [(v, codec.encode(session(v, ttl=timedelta(hours=1)))) for v in ids],
    )
    await wait_for(
        lambda: len(owned_videos(settings) or ()) == count,
        timeout=120,
        what=f"{count} sessions in the table",
    )
    the_worker(stack).stop()  # graceful: offsets committed, changelog complete
    stack.processes.remove(the_worker(stack))
    await produce(settings, catalogue.UPLOADS.name, [(v, codec.encode(completion(v))) for v in ids])

    # Worker 2: killed as soon as it restores tables (before /readyz says 200).
    watch = LogWatch(stack.log_dir / "worker.log")
    doomed = await asyncio.to_thread(start_unready_worker, stack)
    deadline = time.monotonic() + 60
    while "Restoring state from changelog topics" not in watch.text():
        if not doomed.running():
            raise ProcessFailedError(f"worker exited: {doomed.tail_log()}")
        assert time.monotonic() < deadline, watch.text()[-3000:]
        await asyncio.sleep(0.01)
    status, _ = await asyncio.to_thread(worker_get, settings, "/readyz")
    kill_worker(stack)
    log = watch.text()
    assert status == 503, "the worker was ready before the kill"
    assert "Recovery complete" not in log, "recovery finished before the kill"

    # Worker 3 recovers the table and folds the completions.
    restarted = time.monotonic()
    await asyncio.to_thread(stack.start_worker)
    ready_after = time.monotonic() - restarted

    last: list[Any] = []

    def all_completed() -> dict[str, Any] | None:
        videos = owned_videos(settings)
        if videos is None:
            last[:] = ["unavailable"]
            return None
        statuses = Counter((v.status, v.version) for v in videos)
        last[:] = [200, len(videos), statuses]
        return videos if statuses == Counter({("PENDING_TRANSCODE", 2): count}) else None

    try:
        listing = await wait_for(all_completed, timeout=150, what="every completion folded")
    except AssertionError as exc:
        if len(last) == 3 and set(last[2]) == {("PENDING_TRANSCODE", 2), ("UPLOAD_PENDING", 1)}:
            raise AssertionError(f"{RECOVERY_KILL_REASON}: {last[2]}") from None
        raise AssertionError(f"{exc}; last listing: {last}") from None
    folded_after = time.monotonic() - restarted
    assert sorted(v.video_id for v in listing) == ids
    assert {v.version for v in listing} == {2}

    # Effects out: per video, versions 1 then 2 on the public topic, and one job.
    public = await read_all(settings, catalogue.VIDEO_STATE.name, codec)
    versions: dict[str, list[int]] = defaultdict(list)
    for key, state in public:
        versions[key].append(state.version)
    bad = {v: got for v, got in versions.items() if got != [1, 2]}
    assert sorted(versions) == ids
    assert bad == {}
    jobs = Counter(key for key, _ in await read_all(settings, catalogue.TRANSCODE_JOBS.name, codec))
    assert sorted(jobs) == ids
    assert {v: n for v, n in jobs.items() if n != 1} == {}
    print(
        f"\nkill -9 during recovery: {count} sessions + {count} completions in; table {count} "
        f"entries (all version 2), {len(public)} video-state records (= 2 x {count}), "
        f"{sum(jobs.values())} TranscodeJobs; next worker ready {ready_after:.1f}s after start, "
        f"all completions folded at {folded_after:.1f}s"
    )


# --------------------------------------------------------------------------- 3. search down


async def search_status(client: TestClient, settings: Settings) -> tuple[int, str | None]:  # type: ignore[type-arg]
    headers = {"Authorization": f"Bearer {mint_token(settings.auth, 'reader')}"}
    resp = await client.get("/v1/videos:search", params={"q": ""}, headers=headers)
    await resp.read()
    return resp.status, resp.headers.get("Retry-After")


async def searchable(client: TestClient, settings: Settings) -> tuple[int, set[str]]:  # type: ignore[type-arg]
    """The search API's status and the ids it returns (empty unless 200)."""
    headers = {"Authorization": f"Bearer {mint_token(settings.auth, 'reader')}"}
    resp = await client.get(
        "/v1/videos:search", params={"q": "", "pageSize": "100"}, headers=headers
    )
    if resp.status != 200:
        await resp.read()
        return resp.status, set()
    return 200, {hit["videoId"] for hit in (await resp.json())["results"]}


async def stored_versions(settings: Settings, video_ids: list[str]) -> dict[str, int]:
    """Versions of the documents the backend holds (straight from OpenSearch)."""
    client = AsyncOpenSearch(hosts=[settings.search.opensearch_url])
    try:
        body = await client.mget(index=settings.search.index_name, body={"ids": video_ids})
    except NotFoundError:
        return {}
    except OpenSearchConnectionError:
        return {}
    finally:
        await client.close()
    return {d["_id"]: int(d["_source"]["version"]) for d in body["docs"] if d.get("found")}


async def index_mapping(settings: Settings) -> dict[str, Any]:
    client = AsyncOpenSearch(hosts=[settings.search.opensearch_url])
    try:
        body = await client.indices.get_mapping(index=settings.search.index_name)
    finally:
        await client.close()
    mapping: dict[str, Any] = body[settings.search.index_name]["mappings"]
    return mapping


BACKEND_RESTART_REASON = (
    "after osmem (memory-only) restarts, the indexer's next bulk write auto-creates the index "
    "with dynamic mappings (video_id becomes text), so browse searches fail with 400 -> 500; "
    "ensure() runs only when the worker starts, and nothing re-indexes the documents the "
    "backend lost"
)


@pytest.mark.timeout(240)
async def test_search_backend_down_503_then_the_indexer_catches_up(
    make_settings: Callable[..., Settings],
    stack_factory: Callable[..., EmbeddedStack],
    aiohttp_client: ClientFactory,
    codec: EventCodec,
    tmp_path: Path,
) -> None:
    """osmem dies while READY videos flow: search answers 503; osmem comes back on the same
    port (empty: it keeps everything in memory) and the worker's indexer must bring every
    READY video back without anyone recreating the index by hand."""
    with running_osmem(tmp_path / "logs" / "osmem.log") as osmem:
        base = make_settings()
        settings = make_settings(
            worker=no_transcode(base),
            http=base.http,
            search=SearchSettings(backend="opensearch", opensearch_url=osmem_url(osmem)),
        )
        stack_factory(settings)
        client = await aiohttp_client(create_http_app(settings, build_deps(settings)))
        before = [f"sa{i:02d}" for i in range(20)]
        during = [f"sb{i:02d}" for i in range(20)]

        def states(ids: list[str]) -> list[tuple[str, bytes]]:
            return [(v, codec.encode(s)) for v in ids for s in lifecycle_states(v)]

        await produce(settings, catalogue.VIDEO_STATE.name, states(before))
        deadline = time.monotonic() + 60
        while (await searchable(client, settings)) != (200, set(before)):
            assert time.monotonic() < deadline, "first batch never searchable"
            await asyncio.sleep(0.1)
        strict_mapping = await index_mapping(settings)

        osmem.kill()
        down_at = time.monotonic()
        await produce(settings, catalogue.VIDEO_STATE.name, states(during))
        status, retry_after = await search_status(client, settings)
        assert status == 503 and retry_after is not None and retry_after.isdigit()
        await asyncio.sleep(3)  # the indexer meets the dead backend and keeps retrying
        assert (await search_status(client, settings))[0] == 503
        outage = time.monotonic() - down_at

        # Same port, empty backend. The batch that met the outage must not have been dropped.
        osmem.start()
        back_at = time.monotonic()
        deadline = back_at + 30
        while (got := await stored_versions(settings, during)) != dict.fromkeys(during, 3):
            assert time.monotonic() < deadline, f"outage batch not re-delivered: {got}"
            await asyncio.sleep(0.2)
        delivered = time.monotonic() - back_at

        statuses: Counter[int] = Counter()
        seen: set[str] = set()
        while time.monotonic() - back_at < 30:
            status, seen = await searchable(client, settings)
            statuses[status] += 1
            if seen == set(before) | set(during):
                break
            await asyncio.sleep(0.2)
        mapping_after = await index_mapping(settings)
        lost = sorted(set(before) - set(await stored_versions(settings, before)))
        print(
            f"\nsearch backend fault: outage {outage:.1f}s, 503 throughout; after the restart "
            f"the {len(during)} outage documents were in the backend at {delivered:.1f}s; "
            f"search statuses {dict(statuses)}; {len(lost)}/{len(before)} earlier documents "
            f"gone; mapping dynamic={mapping_after.get('dynamic')!r} "
            f"(was {strict_mapping.get('dynamic')!r})"
        )
        assert mapping_after == strict_mapping and not lost, (
            f"{BACKEND_RESTART_REASON}: statuses {dict(statuses)}, lost {len(lost)}, "
            f"video_id mapped as {mapping_after['properties'].get('video_id')}"
        )
        assert seen == set(before) | set(during)
