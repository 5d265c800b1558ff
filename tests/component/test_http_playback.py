"""playbackInfo, metadata, "my uploads" and the signed media route.

Video state comes from a stub of the worker's query views serving states folded by the real
domain state machine, encoded by the shared codec and paged by ``domain.owners`` as the
worker's own views do (``agents.queries``); media objects live in
a real SeaweedFS (tests marked ``integration``). The app's clock is pinned so that expiry is tested
by moving time, not by sleeping.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from helpers import StoreBucket, auth, problem, store_settings
from tritontube.agents.queries import AVRO_CONTENT_TYPE
from tritontube.deps import Deps, build_deps
from tritontube.domain import owners, video
from tritontube.domain.events import (
    Rendition,
    RenditionReady,
    TranscodeProgress,
    TranscodeSucceeded,
    UploadCompleted,
    UploadSessionCreated,
    VideoEvent,
    VideoState,
)
from tritontube.domain.queries import OwnerVideosPage, WorkerCluster, WorkerMember
from tritontube.http.app import create_http_app
from tritontube.http.playback import CHUNK_BYTES
from tritontube.settings import HttpSettings, PlaybackSettings, S3Settings, Settings
from tritontube.storage.s3 import S3ObjectStore

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
TTL = 600
MANIFEST = b'<?xml version="1.0"?><MPD type="static"><!-- init-0.m4s --></MPD>'
INIT = bytes(range(256)) * 3
BIG = os.urandom(2 * CHUNK_BYTES + 12345)
ClientFactory = Callable[..., Any]


class PinnedClock:
    def __init__(self, now: datetime) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current


def rendition(name: str, height: int) -> Rendition:
    return Rendition(
        name=name,
        width=height * 4 // 3,
        height=height,
        bandwidth_bps=height * 1000,
        representation_id=name,
        size_bytes=1000,
        segment_count=2,
        sha256="0" * 64,
    )


def fold(video_id: str, owner: str, visibility: str, stage: str) -> VideoState:
    """A state reached by real events: ``uploaded``, ``transcoding``, ``first_ready``, ``ready``."""
    etag = f"etag-{video_id}"
    job = video.job_id_for(video_id, etag)
    manifest = f"{video.output_prefix(video_id)}manifest.mpd"
    events: list[VideoEvent] = [
        UploadSessionCreated(
            event_id=f"c-{video_id}",
            video_id=video_id,
            owner=owner,
            title=f"Title {video_id}",
            file_name="clip.mp4",
            content_type="video/mp4",
            declared_size_bytes=100,
            source_key=video.source_key(video_id, "clip.mp4"),
            etag=etag,
            created_at=T0,
            expires_at=T0 + timedelta(minutes=15),
            visibility=visibility,
            tags=("cats",),
        ),
        UploadCompleted(
            event_id=f"u-{video_id}",
            video_id=video_id,
            owner=owner,
            etag=etag,
            source_key=video.source_key(video_id, "clip.mp4"),
            size_bytes=100,
            content_type="video/mp4",
            completed_at=T0,
        ),
    ]
    if stage in ("transcoding", "first_ready", "ready"):
        events.append(
            TranscodeProgress(
                event_id=f"p-{video_id}", video_id=video_id, job_id=job, attempt=1,
                step="encode", percent=40.0, ts=T0,
            )
        )  # fmt: skip
    if stage in ("first_ready", "ready"):
        events.append(
            RenditionReady(
                event_id=f"r-{video_id}", video_id=video_id, job_id=job,
                rendition=rendition("240p", 240), manifest_key=manifest, ts=T0,
            )
        )  # fmt: skip
    if stage == "ready":
        events.append(
            TranscodeSucceeded(
                event_id=f"s-{video_id}", video_id=video_id, job_id=job, attempt=1,
                manifest_key=manifest, duration_seconds=4.0,
                renditions=(rendition("480p", 480), rendition("240p", 240)),
                wall_seconds=3.0, cpu_seconds=3.0, ts=T0,
                thumbnail_key=f"media/{video_id}/thumbnail.jpg",
            )
        )  # fmt: skip
    state: VideoState | None = None
    for event in events:
        state = video.apply(state, event)
    assert state is not None
    return state


@pytest.fixture
def states() -> dict[str, VideoState]:
    folded = [
        fold("pub", "alice", "public", "ready"),
        fold("priv", "alice", "private", "ready"),
        fold("unl", "alice", "unlisted", "ready"),
        fold("first", "alice", "public", "first_ready"),
        fold("busy", "alice", "public", "transcoding"),
        fold("bobs", "bob", "public", "ready"),
    ]
    return {s.video_id: s for s in folded}


@pytest.fixture
def internal_token() -> list[str]:
    """The internal token the stub accepts: set by ``settings`` once the stack's secret is
    known (the stub is started before the settings that name its URL)."""
    return []


@pytest.fixture
async def worker_stub(
    states: dict[str, VideoState], aiohttp_server: ClientFactory, internal_token: list[str]
) -> TestServer:
    """The worker's ``/cluster``, ``/videos/{id}`` and ``/owners/{owner}/videos`` views over
    ``states``, with the real codec and the real owner index and cursor."""
    codec = build_deps(Settings()).codec

    def avro(record: Any) -> web.Response:
        return web.Response(body=codec.encode(record), content_type=AVRO_CONTENT_TYPE)

    @web.middleware
    async def internal_only(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.headers.get("Authorization") not in internal_token:
            return web.json_response({"error": "internal token required"}, status=401)
        response: web.StreamResponse = await handler(request)
        return response

    async def cluster(request: web.Request) -> web.Response:
        url = str(request.url.origin())
        return avro(WorkerCluster("tritontube", 2, (WorkerMember(url, (0, 1)),)))

    async def one(request: web.Request) -> web.Response:
        state = states.get(request.match_info["video_id"])
        if state is None:
            return web.Response(status=404, content_type=AVRO_CONTENT_TYPE)
        return avro(state)

    async def owned(request: web.Request) -> web.Response:
        owner = request.match_info["owner"]
        index: owners.OwnerVideos | None = None
        for s in states.values():
            if s.owner == owner:
                index = owners.add_video(index, owner, s.video_id, s.created_at)
        token = request.query.get("pageToken")
        after = owners.decode_cursor(token) if token else None
        items, cursor = owners.page(index, int(request.query["pageSize"]), after)
        return avro(
            OwnerVideosPage(
                videos=tuple(states[v.video_id] for v in items),
                next_page_token=None if cursor is None else owners.encode_cursor(cursor),
            )
        )

    app = web.Application(middlewares=[internal_only])
    app.router.add_get("/cluster", cluster)
    app.router.add_get("/videos/{video_id}", one)
    app.router.add_get("/owners/{owner}/videos", owned)
    server: TestServer = await aiohttp_server(app)
    return server


@pytest.fixture
def clock() -> PinnedClock:
    return PinnedClock(T0)


@pytest.fixture
def settings(
    make_settings: Callable[..., Settings], worker_stub: TestServer, internal_token: list[str]
) -> Settings:
    worker_url = str(worker_stub.make_url("")).rstrip("/")
    made = make_settings(
        http=HttpSettings(worker_urls=(worker_url,)),
        # Nothing listens here: the tests that read objects use ``media_client`` (SeaweedFS).
        s3=S3Settings(
            endpoint_url="http://127.0.0.1:9",
            access_key_id="component-test",
            secret_access_key="component-test-secret",  # type: ignore[arg-type]
        ),
        playback=PlaybackSettings(media_url_ttl_seconds=TTL, media_url_bucket_seconds=60),
    )
    internal_token.append(f"Bearer {made.internal_token().get_secret_value()}")
    return made


@pytest.fixture
def deps(settings: Settings, clock: PinnedClock) -> Iterator[Deps]:
    built = dataclasses.replace(build_deps(settings), clock=clock)
    try:
        yield built
    finally:
        built.close()


@pytest.fixture
async def client(aiohttp_client: ClientFactory, settings: Settings, deps: Deps) -> TestClient:  # type: ignore[type-arg]
    return await aiohttp_client(create_http_app(settings, deps))


def path_of(url: str) -> str:
    return urlsplit(url).path


async def playback(client: TestClient, settings: Settings, vid: str, user: str = "alice") -> Any:  # type: ignore[type-arg]
    resp = await client.get(f"/v1/videos/{vid}/playbackInfo", headers=auth(settings, user))
    assert resp.status == 200, await resp.text()
    return await resp.json()


# -- playbackInfo ------------------------------------------------------------------------------


async def test_playback_info_has_the_contract_shape_and_signed_urls(
    client: TestClient,
    settings: Settings,  # type: ignore[type-arg]
) -> None:
    body = await playback(client, settings, "pub", user="bob")
    assert set(body) >= {
        "videoId", "title", "status", "manifestUrl", "thumbnailUrl", "durationSeconds",
        "renditions", "subtitles", "drm",
    }  # fmt: skip
    assert body["videoId"] == "pub"
    assert body["status"] == "READY"
    assert body["durationSeconds"] == 4.0
    assert body["subtitles"] == [] and body["drm"] is None
    assert body["renditions"] == [
        {"name": "480p", "width": 640, "height": 480, "bandwidth": 480000},
        {"name": "240p", "width": 320, "height": 240, "bandwidth": 240000},
    ]
    manifest = path_of(body["manifestUrl"])
    assert manifest.startswith("/media/") and manifest.endswith("/pub/dash/manifest.mpd")
    assert path_of(body["thumbnailUrl"]).endswith("/pub/thumbnail.jpg")
    expires = datetime.fromisoformat(body["expiresAt"])
    assert T0 + timedelta(seconds=TTL) <= expires < T0 + timedelta(seconds=TTL + 60)


@pytest.mark.parametrize("public_url", [None, "https://tube.example/"])
async def test_signed_urls_are_built_on_the_settings_never_on_the_host_header(
    aiohttp_client: ClientFactory, settings: Settings, deps: Deps, public_url: str | None
) -> None:
    http = settings.http.model_copy(update={"public_url": public_url})
    configured = settings.model_copy(update={"http": http})
    client = await aiohttp_client(create_http_app(configured, deps))
    resp = await client.get(
        "/v1/videos/pub/playbackInfo",
        headers={**auth(settings, "bob"), "Host": "evil.example", "X-Forwarded-Host": "evil"},
    )
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    base = "https://tube.example" if public_url else f"http://127.0.0.1:{settings.http.port}"
    for url in (body["manifestUrl"], body["thumbnailUrl"]):
        assert url.startswith(f"{base}/media/"), url
        assert "evil" not in url


async def test_playable_as_soon_as_the_first_rendition_is_ready(
    client: TestClient,
    settings: Settings,  # type: ignore[type-arg]
) -> None:
    body = await playback(client, settings, "first")
    assert body["status"] == "TRANSCODING"
    assert [r["name"] for r in body["renditions"]] == ["240p"]
    assert body["manifestUrl"] is not None and body["thumbnailUrl"] is None


async def test_not_yet_playable_is_a_409_problem_naming_the_status(
    client: TestClient,
    settings: Settings,  # type: ignore[type-arg]
) -> None:
    resp = await client.get("/v1/videos/busy/playbackInfo", headers=auth(settings, "alice"))
    body = await problem(resp, 409)
    assert body["code"] == "NOT_PLAYABLE"
    assert body["videoStatus"] == "TRANSCODING"
    assert resp.headers["Retry-After"] == "2"


async def test_other_users_see_neither_private_nor_unfinished_videos(
    client: TestClient,
    settings: Settings,  # type: ignore[type-arg]
) -> None:
    for vid in ("priv", "busy", "nope"):
        resp = await client.get(f"/v1/videos/{vid}/playbackInfo", headers=auth(settings, "bob"))
        assert (await problem(resp, 404))["code"] == "NOT_FOUND"
        resp = await client.get(f"/v1/videos/{vid}", headers=auth(settings, "bob"))
        await problem(resp, 404)
    # Unlisted: anyone holding the id may watch; the owner sees their private video.
    assert (await playback(client, settings, "unl", user="bob"))["videoId"] == "unl"
    assert (await playback(client, settings, "priv", user="alice"))["videoId"] == "priv"


async def test_playback_info_needs_a_bearer_token(client: TestClient) -> None:  # type: ignore[type-arg]
    resp = await client.get("/v1/videos/pub/playbackInfo")
    assert (await problem(resp, 401))["code"] == "UNAUTHORIZED"


# -- metadata and my uploads -----------------------------------------------------------------


async def test_metadata_shows_owner_details_only_to_the_owner(
    client: TestClient,
    settings: Settings,  # type: ignore[type-arg]
) -> None:
    resp = await client.get("/v1/videos/busy", headers=auth(settings, "alice"))
    assert resp.status == 200
    mine = await resp.json()
    assert (mine["status"], mine["playable"], mine["progress"]) == ("TRANSCODING", False, 40.0)
    resp = await client.get("/v1/videos/pub", headers=auth(settings, "bob"))
    theirs = await resp.json()
    assert theirs["owner"] == "alice" and theirs["playable"] is True
    assert theirs["tags"] == ["cats"] and "progress" not in theirs


async def test_my_videos_lists_only_mine_with_status_and_pages(
    client: TestClient,
    settings: Settings,  # type: ignore[type-arg]
) -> None:
    resp = await client.get("/v1/videos?owner=me", headers=auth(settings, "alice"))
    assert resp.status == 200
    body = await resp.json()
    assert {v["videoId"] for v in body["videos"]} == {"pub", "priv", "unl", "first", "busy"}
    assert {v["owner"] for v in body["videos"]} == {"alice"}
    assert body["nextPageToken"] is None
    seen: list[str] = []
    token = None
    while True:
        query = "/v1/videos?owner=me&pageSize=2" + (f"&pageToken={token}" if token else "")
        page = await (await client.get(query, headers=auth(settings, "alice"))).json()
        seen += [v["videoId"] for v in page["videos"]]
        token = page["nextPageToken"]
        if token is None:
            break
    assert sorted(seen) == sorted(v["videoId"] for v in body["videos"])


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?owner=bob",
        "?owner=me&pageSize=0",
        "?owner=me&pageSize=x",
        "?owner=me&pageSize=%C2%B3",  # '³': str.isdigit() says yes, int() says no
        "?owner=me&pageToken=%%%",
    ],
)
async def test_my_videos_validates_its_query(
    client: TestClient,
    settings: Settings,
    query: str,  # type: ignore[type-arg]
) -> None:
    resp = await client.get(f"/v1/videos{query}", headers=auth(settings, "alice"))
    assert (await problem(resp, 422))["code"] == "VALIDATION"


# -- signed media URLs -------------------------------------------------------------------------


@pytest.fixture
async def media_client(
    aiohttp_client: ClientFactory,
    make_settings: Callable[..., Settings],
    worker_stub: TestServer,
    internal_token: list[str],
    object_store: StoreBucket,
    clock: PinnedClock,
) -> AsyncIterator[tuple[TestClient, Settings]]:  # type: ignore[type-arg]
    settings = make_settings(
        http=HttpSettings(worker_urls=(str(worker_stub.make_url("")).rstrip("/"),)),
        s3=store_settings(object_store),
        playback=PlaybackSettings(media_url_ttl_seconds=TTL, media_url_bucket_seconds=60),
    )
    internal_token.append(f"Bearer {settings.internal_token().get_secret_value()}")
    store = S3ObjectStore.from_settings(settings.s3)
    try:
        for vid in ("pub", "priv"):
            await store.put_bytes(
                f"media/{vid}/dash/manifest.mpd", MANIFEST, "application/dash+xml"
            )
            await store.put_bytes(f"media/{vid}/dash/init-0.m4s", INIT, "video/iso.segment")
            await store.put_bytes(f"media/{vid}/dash/chunk-0-00001.m4s", BIG, "video/iso.segment")
            await store.put_bytes(f"uploads/{vid}/source.mp4", b"secret source", "video/mp4")
    finally:
        store.close()
    deps = dataclasses.replace(build_deps(settings), clock=clock)
    try:
        yield await aiohttp_client(create_http_app(settings, deps)), settings
    finally:
        deps.close()


@pytest.mark.integration
async def test_manifest_and_relative_segments_stream_under_the_signed_prefix(
    media_client: tuple[TestClient, Settings],  # type: ignore[type-arg]
) -> None:
    client, settings = media_client
    manifest_url = (await playback(client, settings, "pub", user="bob"))["manifestUrl"]
    resp = await client.get(path_of(manifest_url))  # no bearer token: the URL is the credential
    assert resp.status == 200
    assert resp.content_type == "application/dash+xml"
    assert resp.headers["Cache-Control"] == "public, no-cache"
    assert await resp.read() == MANIFEST
    for name, data in (("init-0.m4s", INIT), ("chunk-0-00001.m4s", BIG)):
        resp = await client.get(path_of(urljoin(manifest_url, name)))
        assert resp.status == 200, await resp.text()
        assert resp.headers["Content-Length"] == str(len(data))
        assert "immutable" in resp.headers["Cache-Control"]
        assert await resp.read() == data  # several chunks for BIG, reassembled intact


@pytest.mark.integration
async def test_byte_ranges_head_and_conditional_requests(
    media_client: tuple[TestClient, Settings],  # type: ignore[type-arg]
) -> None:
    client, settings = media_client
    manifest_url = (await playback(client, settings, "pub"))["manifestUrl"]
    chunk = path_of(urljoin(manifest_url, "chunk-0-00001.m4s"))
    start = CHUNK_BYTES - 10
    resp = await client.get(chunk, headers={"Range": f"bytes={start}-{start + CHUNK_BYTES}"})
    assert resp.status == 206
    assert resp.headers["Content-Range"] == f"bytes {start}-{start + CHUNK_BYTES}/{len(BIG)}"
    assert await resp.read() == BIG[start : start + CHUNK_BYTES + 1]
    resp = await client.get(chunk, headers={"Range": "bytes=-100"})
    assert (resp.status, await resp.read()) == (206, BIG[-100:])
    resp = await client.get(chunk, headers={"Range": f"bytes={len(BIG)}-"})
    assert (await problem(resp, 416))["code"] == "RANGE"
    assert resp.headers["Content-Range"] == f"bytes */{len(BIG)}"
    resp = await client.head(chunk)
    assert resp.status == 200 and resp.headers["Content-Length"] == str(len(BIG))
    resp = await client.get(chunk, headers={"If-None-Match": resp.headers["ETag"]})
    assert resp.status == 304


@pytest.mark.integration
async def test_media_urls_stop_working_after_expiry(
    media_client: tuple[TestClient, Settings],  # type: ignore[type-arg]
    clock: PinnedClock,
) -> None:
    client, settings = media_client
    info = await playback(client, settings, "pub")
    segment = path_of(urljoin(info["manifestUrl"], "init-0.m4s"))
    clock.current = datetime.fromisoformat(info["expiresAt"]) - timedelta(seconds=1)
    assert (await client.get(segment)).status == 200
    clock.current = datetime.fromisoformat(info["expiresAt"])
    for url in (info["manifestUrl"], segment):
        body = await problem(await client.get(path_of(url)), 403)
        assert body["code"] == "MEDIA_URL_EXPIRED"
    # A fresh playbackInfo hands out working URLs again.
    fresh = await playback(client, settings, "pub")
    assert (await client.get(path_of(fresh["manifestUrl"]))).status == 200


@pytest.mark.integration
async def test_private_media_is_refused_without_the_owners_url(
    media_client: tuple[TestClient, Settings],  # type: ignore[type-arg]
) -> None:
    client, settings = media_client
    resp = await client.get("/v1/videos/priv/playbackInfo", headers=auth(settings, "bob"))
    await problem(resp, 404)
    # Bob's genuine token for a public video does not open Alice's private one ...
    pub = path_of((await playback(client, settings, "pub", user="bob"))["manifestUrl"])
    token = pub.split("/")[2]
    resp = await client.get(f"/media/{token}/priv/dash/manifest.mpd")
    assert (await problem(resp, 403))["code"] == "MEDIA_URL_INVALID"
    # ... nor does a forged one, while Alice's own URL works.
    expiry = token.split(".")[0]
    resp = await client.get(f"/media/{expiry}.{'A' * 22}/priv/dash/manifest.mpd")
    assert (await problem(resp, 403))["code"] == "MEDIA_URL_INVALID"
    mine = (await playback(client, settings, "priv", user="alice"))["manifestUrl"]
    resp = await client.get(path_of(mine))
    assert (resp.status, await resp.read()) == (200, MANIFEST)


@pytest.mark.integration
@pytest.mark.parametrize(
    "rest",
    [
        "%2e%2e/%2e%2e/uploads/pub/source.mp4",
        "dash/..%2f..%2fuploads/pub/source.mp4",
        ".hidden",
        "dash//init-0.m4s",
        "dash/init-0.m4s%00",
    ],
)
async def test_paths_outside_the_media_folder_are_unreachable(
    media_client: tuple[TestClient, Settings],  # type: ignore[type-arg]
    rest: str,
) -> None:
    client, settings = media_client
    token = path_of((await playback(client, settings, "pub"))["manifestUrl"]).split("/")[2]
    resp = await client.get(f"/media/{token}/pub/{rest}")
    assert resp.status in (403, 404), await resp.text()
    assert b"secret source" not in await resp.read()


@pytest.mark.integration
async def test_missing_media_object_is_a_404_problem(
    media_client: tuple[TestClient, Settings],  # type: ignore[type-arg]
) -> None:
    client, settings = media_client
    manifest_url = (await playback(client, settings, "pub"))["manifestUrl"]
    resp = await client.get(path_of(urljoin(manifest_url, "chunk-9-99999.m4s")))
    assert (await problem(resp, 404))["code"] == "NOT_FOUND"


@pytest.mark.integration
async def test_media_serves_only_presentation_types_never_html_or_script(
    media_client: tuple[TestClient, Settings],  # type: ignore[type-arg]
) -> None:
    """Whatever the object store holds or claims, /media/ answers with a fixed media type,
    nosniff, a sandbox CSP and any-origin CORS; other file types are 404 before the store is
    asked. A stored object that says it is HTML is still served as what its name says."""
    client, settings = media_client
    store = S3ObjectStore.from_settings(settings.s3)
    html = b"<html><script>alert(document.domain)</script></html>"
    try:
        for name in ("evil.html", "evil.htm", "evil.svg", "evil.js", "evil.xml", "evil.json",
                     "evil.m4a", "evil.png", "noext", "evil.mpd.html"):  # fmt: skip
            await store.put_bytes(f"media/pub/dash/{name}", html, "text/html")
        await store.put_bytes("media/pub/dash/disguised.m4s", html, "text/html")
        await store.put_bytes("media/pub/poster.jpg", b"\xff\xd8\xff jpeg", "text/html")
        await store.put_bytes("media/pub/dash/subs.vtt", b"WEBVTT\n", "text/html")
    finally:
        store.close()
    manifest_url = (await playback(client, settings, "pub", user="bob"))["manifestUrl"]
    origin = {"Origin": "https://partner.example"}
    for name in ("evil.html", "evil.htm", "evil.svg", "evil.js", "evil.xml", "evil.json",
                 "evil.m4a", "evil.png", "noext", "evil.mpd.html"):  # fmt: skip
        resp = await client.get(path_of(urljoin(manifest_url, name)), headers=origin)
        assert (await problem(resp, 404))["code"] == "NOT_FOUND", name
        assert resp.headers["Access-Control-Allow-Origin"] == "*"
        assert "sandbox" in resp.headers["Content-Security-Policy"]
    expected = {
        "manifest.mpd": "application/dash+xml",
        "disguised.m4s": "video/iso.segment",
        "subs.vtt": "text/vtt",
        "../poster.jpg": "image/jpeg",
    }
    for name, content_type in expected.items():
        resp = await client.get(path_of(urljoin(manifest_url, name)), headers=origin)
        assert resp.status == 200, (name, await resp.text())
        assert resp.content_type == content_type, name
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        csp = resp.headers["Content-Security-Policy"]
        assert "sandbox" in csp and "default-src 'none'" in csp
        assert resp.headers["Access-Control-Allow-Origin"] == "*"
        assert resp.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
        assert "ETag" in resp.headers["Access-Control-Expose-Headers"]
    # A partner's player on another origin may preflight a ranged read; the API may not.
    preflight = {**origin, "Access-Control-Request-Method": "GET"}
    preflight["Access-Control-Request-Headers"] = "range"
    resp = await client.options(path_of(manifest_url), headers=preflight)
    assert resp.status == 204
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert "range" in resp.headers["Access-Control-Allow-Headers"].lower()
    resp = await client.options("/v1/videos/pub/playbackInfo", headers=preflight)
    assert resp.status == 403
