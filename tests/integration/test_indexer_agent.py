"""The search index fed by events: freshness, versions, privacy, and the API on top.

Documents reach the index only through topics (video-state, video-stats, and the upload /
transcode events the video-state agent folds) and the worker's indexer agent, on the
embedded tantivy backend; the test reads it read-only, as the API does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from helpers import produce, wait_for, worker_get
from tritontube.deps import build_deps
from tritontube.devstack.stack import EmbeddedStack
from tritontube.domain.events import (
    Rendition,
    TranscodeSucceeded,
    UploadCompleted,
    UploadSessionCreated,
    VideoState,
    VideoStats,
)
from tritontube.http.app import create_http_app
from tritontube.http.auth import mint_token
from tritontube.indexer.factory import cursor_secret
from tritontube.indexer.query import SearchQuery
from tritontube.indexer.tantivy_index import TantivyIndex
from tritontube.settings import AnalyticsSettings, Settings
from tritontube.streams import catalogue
from tritontube.streams.records import EventCodec

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)
FRESHNESS_BOUND_SECONDS = 2.0


def state(video_id: str, title: str, version: int = 4, **changes: Any) -> VideoState:
    base = VideoState(
        video_id=video_id,
        version=version,
        status="READY",
        owner="carol",
        title=title,
        created_at=NOW,
        updated_at=NOW,
        expires_at=NOW + timedelta(minutes=15),
        duration_seconds=60.0,
    )
    return replace(base, **changes)


def stats(video_id: str, version: int, views: int) -> VideoStats:
    return VideoStats(
        video_id=video_id,
        version=version,
        views=views,
        viewers=views,
        watch_seconds=views * 30.0,
        average_completion=0.5,
        trending_score=float(views),
        updated_at=NOW,
    )


@pytest.fixture
async def reader(
    make_settings: Callable[..., Settings], stack_factory: Callable[..., EmbeddedStack]
) -> AsyncIterator[tuple[Settings, TantivyIndex]]:
    settings = make_settings(transcode_agent=False)
    stack_factory(settings)
    index = TantivyIndex(
        settings.search.path, cursor_secret=cursor_secret(settings), read_only=True
    )
    await index.ensure()
    try:
        yield settings, index
    finally:
        await index.close()


async def found(index: TantivyIndex, q: str) -> list[str]:
    await index.refresh()
    return [h.video_id for h in (await index.search(SearchQuery(q=q))).results]


async def until_found(index: TantivyIndex, q: str, video_id: str, timeout: float = 20) -> float:
    """Seconds until ``video_id`` is a hit for ``q`` (polled every 20 ms)."""
    started = time.monotonic()
    while video_id not in await found(index, q):
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{video_id} not searchable for {q!r} within {timeout}s")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def test_ready_videos_become_searchable_fast_and_private_ones_disappear(
    reader: tuple[Settings, TantivyIndex], codec: EventCodec, artifacts_dir: Path
) -> None:
    settings, index = reader
    bootstrap = settings.kafka.bootstrap_servers
    topic = catalogue.VIDEO_STATE.name
    await produce(bootstrap, topic, [("w0", codec.encode(state("w0", "Warm up")))])
    await until_found(index, "warm", "w0", timeout=30)

    await produce(bootstrap, topic, [("v1", codec.encode(state("v1", "Zebra crossing at night")))])
    freshness = await until_found(index, "zebr crosing", "v1")
    (artifacts_dir / "index_freshness_seconds.txt").write_text(f"{freshness:.3f}\n")
    print(f"index freshness (produce -> searchable): {freshness:.3f}s")
    assert freshness < FRESHNESS_BOUND_SECONDS

    hidden = state("v1", "Zebra crossing at night", version=5, visibility="private")
    stale = state("v1", "Zebra crossing at night", version=4)  # replayed, older: ignored
    await produce(bootstrap, topic, [("v1", codec.encode(hidden)), ("v1", codec.encode(stale))])
    await produce(bootstrap, topic, [("m1", codec.encode(state("m1", "Marker")))])
    await until_found(index, "marker", "m1")
    assert await found(index, "zebra") == []
    doc = await index.get("v1")
    assert doc is not None and (doc.visibility, doc.version) == ("private", 5)

    stats_topic = catalogue.VIDEO_STATS.name
    await produce(
        bootstrap,
        stats_topic,
        [("w0", codec.encode(stats("w0", 3, 7))), ("w0", codec.encode(stats("w0", 2, 1)))],
    )

    async def views_of_w0() -> tuple[int, int] | None:
        await index.refresh()
        d = await index.get("w0")
        return None if d is None or d.views == 0 else (d.views, d.version)

    deadline = time.monotonic() + 20
    while (got := await views_of_w0()) is None:
        assert time.monotonic() < deadline, "stats not indexed in time"
        await asyncio.sleep(0.05)
    assert got == (7, 4 + 3)  # combined version: state 4 + stats 3; the stale stats lost


# -- through the API -------------------------------------------------------------------
def lifecycle(video_id: str, owner: str, title: str, tags: tuple[str, ...]) -> list[Any]:
    etag = f"etag-{video_id}"
    key = f"uploads/{video_id}/source.mp4"
    rendition = Rendition("480p", 854, 480, 1_000_000, "480p", 1000, 3, "0" * 64)
    return [
        UploadSessionCreated(
            event_id=f"c-{video_id}",
            video_id=video_id,
            owner=owner,
            title=title,
            file_name="clip.mp4",
            content_type="video/mp4",
            declared_size_bytes=100,
            source_key=key,
            etag=etag,
            created_at=NOW,
            expires_at=NOW + timedelta(minutes=15),
            tags=tags,
        ),
        UploadCompleted(f"u-{video_id}", video_id, owner, etag, key, 100, "video/mp4", NOW),
        TranscodeSucceeded(
            event_id=f"s-{video_id}",
            video_id=video_id,
            job_id=f"{video_id}:{etag}",
            attempt=1,
            manifest_key=f"media/{video_id}/dash/manifest.mpd",
            duration_seconds=60.0,
            renditions=(rendition,),
            wall_seconds=1.0,
            cpu_seconds=1.0,
            ts=NOW,
        ),
    ]


CORPUS = [
    ("vA", "carol", "Zebra crossing in Tokyo", ("street", "city")),
    ("vB", "carol", "Night walk in Osaka", ("street", "night")),
    ("vC", "dave", "Street food tour", ("street", "food")),
    ("vD", "erin", "Cooking pasta at home", ("food",)),
    ("vE", "erin", "Private diary", ("street",)),
]


async def test_watch_events_search_and_recommendations_through_the_api(
    make_settings: Callable[..., Settings],
    stack_factory: Callable[..., EmbeddedStack],
    aiohttp_client: Callable[..., Any],
    codec: EventCodec,
) -> None:
    settings = make_settings(
        transcode_agent=False, analytics=AnalyticsSettings(min_view_seconds=5.0)
    )
    stack_factory(settings)
    bootstrap = settings.kafka.bootstrap_servers
    items = []
    for video_id, owner, title, tags in CORPUS:
        events = lifecycle(video_id, owner, title, tags)
        if video_id == "vE":
            events[0] = replace(events[0], visibility="private")
        topics = (catalogue.UPLOADS, catalogue.UPLOADS, catalogue.TRANSCODE_PROGRESS)
        items += [(t.name, video_id, codec.encode(e)) for t, e in zip(topics, events, strict=True)]
    uploads = catalogue.UPLOADS.name
    await produce(bootstrap, uploads, [(k, v) for t, k, v in items if t == uploads])
    # The video-state agent reads both topics; finish the uploads before the transcodes.
    await wait_for(
        lambda: all(
            getattr(worker_get(settings, f"/videos/{v}")[1], "status", None) == "PENDING_TRANSCODE"
            for v, *_ in CORPUS
        )
    )
    progress = catalogue.TRANSCODE_PROGRESS.name
    await produce(bootstrap, progress, [(k, v) for t, k, v in items if t == progress])

    client = await aiohttp_client(create_http_app(settings, build_deps(settings)))

    def auth(user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_token(settings.auth, user)}"}

    async def search(user: str = "alice", **params: str) -> dict[str, Any]:
        resp = await client.get("/v1/videos:search", params=params, headers=auth(user))
        assert resp.status == 200, await resp.text()
        body: dict[str, Any] = await resp.json()
        return body

    async def all_visible() -> bool:
        body = await search(q="", pageSize="10")
        return len(body["results"]) == 4

    deadline = time.monotonic() + 30
    while not await all_visible():
        assert time.monotonic() < deadline, "corpus not searchable in time"
        await asyncio.sleep(0.1)
    assert [r["videoId"] for r in (await search(q="zebr crosing"))["results"]] == ["vA"]
    assert {r["videoId"] for r in (await search(tags="street,city"))["results"]} == {"vA"}
    mine = await search(user="erin", owner="me")
    assert [r["videoId"] for r in mine["results"]] == ["vD"]  # vE is private: never listed

    t0 = datetime.now(UTC) - timedelta(seconds=30)
    batch = {
        "events": [
            {"eventId": "e1", "kind": "PLAY", "positionSeconds": 0, "occurredAt": t0.isoformat()},
            {
                "eventId": "e2",
                "kind": "HEARTBEAT",
                "positionSeconds": 10,
                "occurredAt": (t0 + timedelta(seconds=10)).isoformat(),
            },
            {
                "eventId": "e3",
                "kind": "ENDED",
                "positionSeconds": 60,
                "occurredAt": (t0 + timedelta(seconds=15)).isoformat(),
            },
        ]
    }
    resp = await client.post("/v1/videos/vA/watchEvents", json=batch, headers=auth("alice"))
    assert resp.status == 202, await resp.text()
    assert (await resp.json())["accepted"] == 3
    resp = await client.post("/v1/videos/nope/watchEvents", json=batch, headers=auth("alice"))
    assert resp.status == 404
    resp = await client.post("/v1/videos/vE/watchEvents", json=batch, headers=auth("alice"))
    assert resp.status == 404  # someone else's private video

    deadline = time.monotonic() + 30
    while (await search(sort="views"))["results"][0]["views"] != 1:
        assert time.monotonic() < deadline, "view not indexed in time"
        await asyncio.sleep(0.1)
    assert (await search(sort="views"))["results"][0]["videoId"] == "vA"

    resp = await client.get(
        "/v1/videos:recommendations", params={"videoId": "vB"}, headers=auth("alice")
    )
    assert resp.status == 200, await resp.text()
    recs = await resp.json()
    ids = [r["videoId"] for r in recs["results"]]
    assert "vB" not in ids  # the video being watched
    assert "vA" not in ids  # alice finished it
    assert "vE" not in ids  # private
    assert ids[0] == "vC"  # shares the seed's tag, owner not the seed's... and diverse
    assert recs["coldStart"] is False

    resp = await client.get("/v1/videos:recommendations", headers=auth("newcomer"))
    cold = await resp.json()
    assert cold["coldStart"] is True
    assert {r["videoId"] for r in cold["results"]} == {"vA", "vB", "vC", "vD"}
    assert cold["results"][0]["videoId"] == "vA"  # trending and most viewed
