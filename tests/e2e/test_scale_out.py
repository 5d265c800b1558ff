"""Scale-out: several workers in one group, one correct platform.

One embedded stack (broker, object store, archiver, API) with 3 workers over 4 partitions,
driven end to end through the public API and the topics, with faults injected by SIGKILL:

1. 12 uploads by two users through the API, spread over every partition; the worker that
   owns a video being encoded is killed mid-transcode: every video still ends READY (the
   others take over its partitions), each with exactly one TranscodeSucceeded.
2. 100 more videos flow onto ``video-state`` while the worker that owns the index's writer
   partition is killed mid-indexing: every READY video is searchable exactly once.
3. 5,000 watch events are published while a 4th worker joins: every video's statistics are
   exactly the fold of those events (computed here with the same domain folds), nothing lost
   or applied twice.
4. Every read (owner listings, search, trending, recommendations, statistics, history) is
   recorded with 4 workers, then 3 of them are stopped and the same reads with ONE worker
   must give the same answers; while the group rebalances, each answer is either complete or
   a 503 with Retry-After, never partial.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from helpers import clip, produce, read_all
from tritontube.devstack.process import ManagedProcess
from tritontube.devstack.stack import EmbeddedStack
from tritontube.domain import analytics as an
from tritontube.domain.events import TranscodeSucceeded, VideoState, WatchEvent
from tritontube.domain.queries import WorkerCluster
from tritontube.http.auth import mint_token
from tritontube.settings import AnalyticsSettings, KafkaSettings, RateLimitSettings, Settings
from tritontube.streams import catalogue
from tritontube.streams.partitioning import partition_of
from tritontube.streams.records import EventCodec

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(600)]

PARTITIONS = 4
USERS = {"alice": 8, "bob": 4}
WATCH_EVENTS = 5000
VIEWERS = 40
SYNTHETIC = 100
NOW = datetime.now(UTC).replace(microsecond=0)


# --------------------------------------------------------------------------- the API


@dataclass
class Api:
    base: str
    settings: Settings
    session: aiohttp.ClientSession
    answers: Counter[int] = field(default_factory=Counter)

    def headers(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_token(self.settings.auth, user)}"}

    async def get(self, user: str, path: str, **params: str) -> tuple[int, Any, str | None]:
        async with self.session.get(
            self.base + path, params=params, headers=self.headers(user)
        ) as resp:
            body = await resp.json(content_type=None)
            self.answers[resp.status] += 1
            return resp.status, body, resp.headers.get("Retry-After")

    async def ok(self, user: str, path: str, **params: str) -> Any:
        """The 200 answer, waiting through 503s (the group rebalancing)."""
        deadline = time.monotonic() + 60
        while True:
            status, body, retry_after = await self.get(user, path, **params)
            if status == 200:
                return body
            assert status == 503 and retry_after, (status, body)
            assert time.monotonic() < deadline, f"{path} still 503 after 60 s: {body}"
            await asyncio.sleep(0.2)

    async def upload(self, user: str, data: bytes, title: str, tags: list[str]) -> str:
        body = {
            "title": title,
            "tags": tags,
            "fileName": "clip.mp4",
            "contentType": "video/mp4",
            "sizeBytes": len(data),
        }
        async with self.session.post(
            f"{self.base}/v1/videos:uploadURL", json=body, headers=self.headers(user)
        ) as resp:
            assert resp.status == 200, await resp.text()
            created = await resp.json()
        form = aiohttp.FormData()
        for key, value in created["upload"]["fields"].items():
            form.add_field(key, value)
        form.add_field("file", data, filename="clip.mp4", content_type="video/mp4")
        async with self.session.post(created["upload"]["url"], data=form) as resp:
            assert resp.status in (200, 201, 204), await resp.text()
        async with self.session.post(
            f"{self.base}/v1/videos:completeUpload",
            json={"videoId": created["videoId"]},
            headers={**self.headers(user), "If-Match": f'"{created["etag"]}"'},
        ) as resp:
            assert resp.status == 200, await resp.text()
        return str(created["videoId"])

    async def owned(self, user: str) -> list[tuple[str, str]]:
        """(createdAt, id) of the user's listing, page by page (pages of 5 cross the cursor)."""
        ids: list[tuple[str, str]] = []
        token: str | None = None
        while True:
            params = {"owner": "me", "pageSize": "5"} | ({"pageToken": token} if token else {})
            page = await self.ok(user, "/v1/videos", **params)
            ids += [(v["createdAt"], v["videoId"]) for v in page["videos"]]
            token = page["nextPageToken"]
            if token is None:
                return ids

    async def searched(self, q: str = "") -> list[str]:
        ids: list[str] = []
        token: str | None = None
        while True:
            params = {"q": q, "pageSize": "40"} | ({"pageToken": token} if token else {})
            page = await self.ok("reader", "/v1/videos:search", **params)
            ids += [hit["videoId"] for hit in page["results"]]
            token = page["nextPageToken"]
            if token is None:
                return ids


# --------------------------------------------------------------------------- the workers


def cluster(stack: EmbeddedStack) -> WorkerCluster:
    """The group as any live worker's assignor sees it."""
    from helpers import worker_get

    for url in stack.settings.worker_seed_urls():
        s = stack.settings.model_copy(
            update={"http": stack.settings.http.model_copy(update={"worker_urls": (url,)})}
        )
        status, answer = worker_get(s, "/cluster", timeout=3)
        if status == 200 and answer.members:
            return answer  # type: ignore[no-any-return]
    raise AssertionError("no worker answers /cluster")


def owner_process(stack: EmbeddedStack, partition: int) -> ManagedProcess:
    """The running worker process that owns ``partition`` of the transcode jobs."""
    for member in cluster(stack).members:
        if member.owns(catalogue.TRANSCODE_JOBS.name, partition):
            port = int(member.url.rsplit(":", 1)[1])
            return next(p for p in stack.worker_processes() if p.port == port)
    raise AssertionError(f"nobody owns partition {partition}")


def writer_process(stack: EmbeddedStack) -> ManagedProcess:
    """The worker that owns the one search-documents partition (the index's writer)."""
    for member in cluster(stack).members:
        if member.owns(catalogue.SEARCH_DOCUMENTS.name, 0):
            port = int(member.url.rsplit(":", 1)[1])
            return next(p for p in stack.worker_processes() if p.port == port)
    raise AssertionError("nobody owns the search-documents partition")


def kill(stack: EmbeddedStack, proc: ManagedProcess) -> None:
    proc.kill()
    stack.processes.remove(proc)


# --------------------------------------------------------------------------- events


def watch_events(video_ids: list[str], count: int, seed: int = 7) -> list[WatchEvent]:
    """Viewers playing videos: PLAY then heartbeats, some PAUSE/ENDED, and re-sent ids."""
    rng = random.Random(seed)
    events: list[WatchEvent] = []
    clocks: dict[tuple[str, str], float] = {}
    while len(events) < count:
        video, user = rng.choice(video_ids), f"viewer{rng.randrange(VIEWERS)}"
        at = clocks.get((video, user), rng.uniform(0, 600)) + rng.uniform(1, 20)
        clocks[(video, user)] = at
        kind = rng.choice(["HEARTBEAT"] * 6 + ["PLAY", "PAUSE", "SEEK", "ENDED"])
        moment = NOW - timedelta(hours=1) + timedelta(seconds=at)
        event = WatchEvent(
            event_id=f"e{len(events)}",
            video_id=video,
            user_id=user,
            kind=kind,
            position_seconds=min(at / 10, 2.0),
            occurred_at=moment,
            received_at=moment,
        )
        events.append(event)
        if rng.random() < 0.02 and len(events) < count:
            events.append(event)  # a client retry: the same event id twice
    return events


def expected_stats(
    events: list[WatchEvent], durations: dict[str, float | None], policy: an.AnalyticsPolicy
) -> dict[str, an.VideoAnalytics]:
    """What the analytics agents must end with: the domain folds, applied here in order."""
    sessions: dict[str, an.WatchSession] = {}
    stats: dict[str, an.VideoAnalytics] = {}
    for e in events:
        current = stats.get(e.video_id) or an.with_duration(
            an.VideoAnalytics(video_id=e.video_id), durations.get(e.video_id)
        )
        key = an.session_key(e.video_id, e.user_id)
        folded = an.fold_session(sessions.get(key), e, current.duration_seconds, policy)
        if folded is None:
            continue
        sessions[key], delta = folded
        stats[e.video_id] = an.fold_stats(current, e.user_id, delta, policy)
    return stats


def expected_history(events: list[WatchEvent], user: str, policy: an.AnalyticsPolicy) -> Any:
    """The viewer's history as the API shows it, from the same fold over the same events (what
    it shows does not depend on the order events of different videos arrive in)."""
    history = None
    for e in events:
        if e.user_id == user:
            history = an.fold_history(history, e, policy)
    assert history is not None
    return {
        "entries": [
            {
                "videoId": h.video_id,
                "lastWatchedAt": an.from_ms(h.last_watched_ms).isoformat(),
                "positionSeconds": h.position_seconds,
                "completed": h.completed,
            }
            for h in history.entries[:50]
        ]
    }


def synthetic_states(video_id: str) -> list[VideoState]:
    states = []
    for version, status in ((1, "UPLOAD_PENDING"), (2, "TRANSCODING"), (3, "READY")):
        states.append(
            VideoState(
                video_id=video_id,
                version=version,
                status=status,
                owner="carol",
                title=f"synthetic {video_id} v{version}",
                created_at=NOW,
                updated_at=NOW + timedelta(seconds=version),
                expires_at=NOW + timedelta(minutes=15),
                tags=("synthetic",),
                duration_seconds=60.0 if status == "READY" else None,
            )
        )
    return states


# --------------------------------------------------------------------------- the reads


async def snapshot(api: Api, ids: list[str]) -> dict[str, Any]:
    """Every read the issue names, as the API answers it now."""
    stats = {v: await api.ok("alice", f"/v1/videos/{v}/stats") for v in ids}
    for s in stats.values():
        s.pop("trendingScore")  # scored "now": compared separately, approximately
        s.pop("updatedAt")
    trending = await api.ok("reader", "/v1/videos:trending", pageSize="50")
    recs = await api.ok("viewer1", "/v1/videos:recommendations", videoId=ids[0], pageSize="10")
    return {
        "owned": {user: await api.owned(user) for user in USERS},
        "search": await api.searched(),
        "search_words": await api.searched("crossing"),
        "stats": stats,
        "trending": [(t["videoId"], t["trendingScore"]) for t in trending["results"]],
        "recommendations": [r["videoId"] for r in recs["results"]],
        "history": {
            u: await api.ok(u, "/v1/users/me/history") for u in ("viewer1", "viewer2", "viewer3")
        },
    }


def assert_same_reads(many: dict[str, Any], one: dict[str, Any]) -> None:
    for name in ("owned", "search", "search_words", "stats", "recommendations", "history"):
        assert one[name] == many[name], f"{name} differs with one worker"
    assert [v for v, _ in one["trending"]] == [v for v, _ in many["trending"]]
    for (_, a), (_, b) in zip(one["trending"], many["trending"], strict=True):
        assert a == pytest.approx(b, rel=1e-3)


# --------------------------------------------------------------------------- the test


async def test_many_workers_one_correct_platform(
    make_settings: Callable[..., Settings],
    stack_factory: Callable[..., EmbeddedStack],
    codec: EventCodec,
    tmp_path: Path,
) -> None:
    base = make_settings()
    settings = make_settings(
        kafka=base.kafka.model_copy(update={"partitions": PARTITIONS}),
        analytics=AnalyticsSettings(min_view_seconds=5.0),
        rate_limit=RateLimitSettings(enabled=False),
    )
    assert isinstance(settings.kafka, KafkaSettings)
    # Room for 4 workers; 3 start now, the 4th joins during the watch-event backlog.
    stack = await asyncio.to_thread(stack_factory, settings, worker=False, workers=4)
    await asyncio.to_thread(stack.start_workers, [0, 1, 2])
    await asyncio.to_thread(stack.start_api)
    assert (await asyncio.to_thread(stack.wait_ready)).get("ready")
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        api = Api(stack.public_url, stack.settings, session)
        await scenario(api, stack, codec, tmp_path)


async def scenario(api: Api, stack: EmbeddedStack, codec: EventCodec, tmp_path: Path) -> None:
    settings = stack.settings
    data = clip(tmp_path / "clip.mp4", "320x240", 2).read_bytes()

    # 1. Uploads spread over every partition; kill -9 the owner of one being encoded.
    uploaded: dict[str, list[str]] = {user: [] for user in USERS}
    for i in range(max(USERS.values())):
        for user, count in USERS.items():
            if i < count:
                title = f"Zebra crossing {user} {i}"
                uploaded[user].append(await api.upload(user, data, title, ["street", user]))
    ids = [v for vs in uploaded.values() for v in vs]
    partitions = Counter(partition_of(v.encode(), PARTITIONS) for v in ids)
    while len(partitions) < PARTITIONS:  # random ids: top up until every partition has one
        extra = await api.upload("alice", data, "Zebra crossing extra", ["street"])
        uploaded["alice"].append(extra)
        ids.append(extra)
        partitions[partition_of(extra.encode(), PARTITIONS)] += 1

    async def encoding() -> str | None:
        for v in ids:
            status, body, _ = await api.get(owner_of(v), f"/v1/videos/{v}/transcodeStatus")
            if status == 200 and body["status"] == "TRANSCODING" and body["step"] == "ENCODING":
                return v
        return None

    def owner_of(video_id: str) -> str:
        return next(u for u, vs in uploaded.items() if video_id in vs)

    deadline = time.monotonic() + 60
    while (busy := await encoding()) is None:
        assert time.monotonic() < deadline, "no video was ever being encoded"
    victim = owner_process(stack, partition_of(busy.encode(), PARTITIONS))
    kill(stack, victim)
    killed_mid_transcode = victim.name

    async def all_ready() -> bool:
        for v in ids:
            status, body, _ = await api.get(owner_of(v), f"/v1/videos/{v}/transcodeStatus")
            if status != 200 or body["status"] != "READY":
                assert status != 200 or body["status"] != "FAILED", body
                return False
        return True

    deadline = time.monotonic() + 180
    while not await all_ready():
        assert time.monotonic() < deadline, "not every upload became READY after the kill"
        await asyncio.sleep(0.5)
    results = await read_all(settings, catalogue.TRANSCODE_PROGRESS.name, codec)
    succeeded = Counter(k for k, e in results if isinstance(e, TranscodeSucceeded))
    # At-least-once: a job redone after the kill may succeed twice; the state folds it once.
    assert set(succeeded) == set(ids)
    states = await read_all(settings, catalogue.VIDEO_STATE.name, codec)
    ready_versions = Counter(k for k, s in states if s.status == "READY" and s.version)
    assert set(ready_versions) == set(ids)

    # Back to three workers.
    await asyncio.to_thread(stack.start_worker, stack_index(stack, killed_mid_transcode))

    # 2. A backlog of documents; kill -9 the index writer's worker mid-indexing.
    synthetic = [f"syn{i:03d}" for i in range(SYNTHETIC)]
    events = [(v, codec.encode(s)) for v in synthetic for s in synthetic_states(v)]
    await produce(settings, catalogue.VIDEO_STATE.name, events)
    deadline = time.monotonic() + 60
    while len(await api.searched("synthetic")) < SYNTHETIC // 10:
        assert time.monotonic() < deadline, "the index never took the synthetic videos"
        await asyncio.sleep(0.05)
    writer = writer_process(stack)
    kill(stack, writer)
    indexed_at_kill = len(await api.searched("synthetic"))
    deadline = time.monotonic() + 120
    while sorted(found := await api.searched("synthetic")) != synthetic:
        assert len(found) == len(set(found)), "a document is searchable twice"
        assert time.monotonic() < deadline, f"{len(found)}/{SYNTHETIC} searchable after the kill"
        await asyncio.sleep(0.5)
    await asyncio.to_thread(stack.start_worker, stack_index(stack, writer.name))

    # 3. 5,000 watch events while a 4th worker joins: exact totals.
    durations = {v: (await api.ok(owner_of(v), f"/v1/videos/{v}"))["durationSeconds"] for v in ids}
    watches = watch_events(ids, WATCH_EVENTS)
    await produce(
        settings, catalogue.WATCH_EVENTS.name, [(e.video_id, codec.encode(e)) for e in watches]
    )
    during: Counter[int] = Counter()
    await read_through(api, asyncio.to_thread(stack.start_worker, 3), uploaded["alice"], during)
    policy = an.AnalyticsPolicy(min_view_seconds=5.0)
    want = expected_stats(watches, durations, policy)

    async def totals_reached() -> bool:
        for v, s in want.items():
            got = await api.ok(owner_of(v), f"/v1/videos/{v}/stats")
            if got["version"] < s.version:
                return False
        return True

    await wait_for_async(totals_reached, 120, "every watch event folded")
    histories = {u: expected_history(watches, u, policy) for u in ("viewer1", "viewer2", "viewer3")}

    async def histories_reached() -> bool:
        # The history is one hop further (watch-events-by-user): wait for it too.
        for u, want_history in histories.items():
            if await api.ok(u, "/v1/users/me/history") != want_history:
                return False
        return True

    await wait_for_async(histories_reached, 120, "every watch event in the viewers' histories")
    for v, s in want.items():
        got = await api.ok(owner_of(v), f"/v1/videos/{v}/stats")
        assert (got["version"], got["views"], got["viewers"]) == (s.version, s.views, s.viewers), v
        assert got["watchSeconds"] == pytest.approx(s.watch_seconds, abs=1e-3)

    # 4. The same reads with 4 workers and with one.
    many = await snapshot(api, ids)
    for user, listing in many["owned"].items():
        # Newest first, ties (same millisecond) by id; every upload once.
        assert listing == sorted(listing, key=lambda item: (-_ms(item[0]), item[1]))
        assert sorted(v for _, v in listing) == sorted(uploaded[user])
    assert sorted(many["search"]) == sorted([*ids, *synthetic])
    assert {v for v, _ in many["trending"]} <= set(ids)
    assert many["trending"], "nothing trends after 5,000 watch events"
    leaving = [p for p in stack.worker_processes() if p.name != "worker"]
    stopping = asyncio.to_thread(lambda: [p.stop() for p in leaving])
    await read_through(api, stopping, uploaded["alice"], during)
    for p in leaving:
        stack.processes.remove(p)
    one = await snapshot(api, ids)
    assert_same_reads(many, one)
    print(
        f"\nscale-out: {len(ids)} uploads over {len(partitions)} partitions, {killed_mid_transcode}"
        f" killed mid-transcode, {writer.name} killed mid-indexing ({indexed_at_kill}/{SYNTHETIC}"
        f" indexed), {WATCH_EVENTS} watch events exact with a 4th worker joining; reads during"
        f" rebalances: {dict(during)}; same answers with 4 workers and with 1"
    )


async def read_through(
    api: Api, change: Awaitable[Any], alice: list[str], statuses: Counter[int]
) -> None:
    """Read alice's listing while ``change`` (a rebalance) runs: every answer is her complete
    listing, or a 503 with Retry-After, never a partial one."""
    task = asyncio.ensure_future(change)
    while not task.done():
        status, body, retry_after = await api.get("alice", "/v1/videos", owner="me", pageSize="100")
        statuses[status] += 1
        if status == 200:
            assert sorted(v["videoId"] for v in body["videos"]) == sorted(alice)
        else:
            assert status == 503 and retry_after, (status, body)
        await asyncio.sleep(0.1)
    await task


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


def stack_index(stack: EmbeddedStack, name: str) -> int:
    return 0 if name == "worker" else int(name.rsplit("-", 1)[1]) - 1


async def wait_for_async(check: Callable[[], Any], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"{what} not within {timeout}s"
        await asyncio.sleep(0.5)
