"""The whole public API over gRPC, beside REST, against one embedded stack shared by the module.

A real gRPC client (the stub generated from ``proto/web.proto``) calls every RPC over a real
port; generic reflection lists and describes the service without the proto; health checking
answers; every error path comes back as its status code with ``google.rpc.Status`` details;
REST and gRPC give the same answers on the same data; an edited title is found by search
within 2 s; a deleted video is gone from every read, its signed URLs and its bytes; a FAILED
video is transcoded again; and ``tritontube replay --rebuild`` reproduces the states after the
edits and deletes. One stack (broker, object store, worker, REST API, gRPC server) and two
1-second clips serve every test, in file order.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from google.protobuf import descriptor_pool, json_format, message_factory
from google.protobuf.field_mask_pb2 import FieldMask
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from grpc_status import rpc_status

from helpers import clip, read_all, worker_get
from tritontube.devstack.process import free_port
from tritontube.devstack.stack import EmbeddedStack, settings_env
from tritontube.domain.events import VideoState
from tritontube.replay import rebuild
from tritontube.settings import (
    ArchiveSettings,
    AuthSettings,
    GrpcSettings,
    HttpSettings,
    KafkaSettings,
    RateLimitSettings,
    S3Settings,
    SearchSettings,
    Settings,
    TranscodeSettings,
    WorkerSettings,
)
from tritontube.storage.s3 import S3ObjectStore
from tritontube.streams import catalogue
from tritontube.tokens import mint_token
from tritontube.v1 import web_pb2 as pb
from tritontube.v1 import web_pb2_grpc

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

SERVICE = "tritontube.v1.Web"


# -- the shared stack -------------------------------------------------------------------------


class World:
    """The stack and what the tests learn about it, in file order."""

    def __init__(self, stack: EmbeddedStack, media: Path) -> None:
        self.stack = stack
        self.settings = stack.settings
        self.media = media
        self.videos: dict[str, str] = {}  # role -> video id
        self.etags: dict[str, str] = {}

    @property
    def target(self) -> str:
        return f"{self.settings.grpc.host}:{self.settings.grpc.port}"

    @property
    def rest(self) -> str:
        return self.stack.public_url

    def token(self, user: str) -> str:
        return mint_token(self.settings.auth, user)

    def md(self, user: str = "alice") -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token(user)}"),)

    def headers(self, user: str = "alice", **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user)}", **extra}

    def store(self) -> S3ObjectStore:
        return S3ObjectStore.from_settings(self.settings.s3)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("grpc-api")
    http_port = free_port()
    with pytest.MonkeyPatch.context() as env:
        for key in list(os.environ):
            if key.startswith("TRITONTUBE_"):
                env.delenv(key)
        settings = Settings(
            kafka=KafkaSettings(
                bootstrap_servers=f"127.0.0.1:{free_port()}",
                embedded_broker_compat=True,
                partitions=2,
            ),
            s3=S3Settings(endpoint_url=f"http://127.0.0.1:{free_port()}"),
            http=HttpSettings(port=http_port, public_url=f"http://127.0.0.1:{http_port}"),
            grpc=GrpcSettings(port=free_port(), health_interval_seconds=0.5),
            # Its own port: the default (6070) may be another stack's on a shared machine.
            archive=ArchiveSettings(web_port=free_port()),
            worker=WorkerSettings(web_port=free_port(), data_dir=tmp / "worker"),
            search=SearchSettings(path=tmp / "search"),
            transcode=TranscodeSettings(max_attempts=1),
            # The owner here makes ~25 upload-scope calls; the flood test spends a whole burst.
            rate_limit=RateLimitSettings(upload_burst=40),
            data_dir=tmp / "data",
            auth=AuthSettings(secret=secrets.token_urlsafe(32)),
        )
        stack = EmbeddedStack(settings=settings, log_dir=tmp / "logs", with_api=True)
        try:
            stack.start()
            ready = stack.wait_ready()
            assert ready.get("ready"), ready
            media = tmp / "media"
            media.mkdir()
            clip(media / "clip.mp4", "160x120", 1)
            yield World(stack, media)
        finally:
            stack.stop()


@pytest.fixture
async def channel(world: World) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(world.target) as chan:
        yield chan


@pytest.fixture
def web(channel: grpc.aio.Channel) -> web_pb2_grpc.WebStub:
    return web_pb2_grpc.WebStub(channel)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


# -- helpers ----------------------------------------------------------------------------------


class Failed:
    """A failed call: its code and the google.rpc.Status details, unpacked."""

    def __init__(self, error: grpc.aio.AioRpcError) -> None:
        self.code = error.code()
        self.message = error.details()
        status = rpc_status.from_call(error)
        assert status is not None, f"{self.code}: no google.rpc.Status details"
        self.info = error_details_pb2.ErrorInfo()
        self.bad = error_details_pb2.BadRequest()
        self.retry = error_details_pb2.RetryInfo()
        self.precondition = error_details_pb2.PreconditionFailure()
        found = set()
        for detail in status.details:
            for name in ("info", "bad", "retry", "precondition"):
                if detail.Unpack(getattr(self, name)):
                    found.add(name)
        assert "info" in found, status
        self.found = found

    @property
    def reason(self) -> str:
        return self.info.reason

    @property
    def fields(self) -> list[str]:
        return [v.field for v in self.bad.field_violations]


async def fails(call: Any) -> Failed:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return Failed(caught.value)


async def post_form(upload: pb.UploadForm, data: bytes) -> int:
    form = aiohttp.FormData()
    for key, value in upload.fields.items():
        form.add_field(key, value)
    form.add_field("file", data, filename="clip.mp4", content_type="video/mp4")
    async with aiohttp.ClientSession() as session, session.post(upload.url, data=form) as resp:
        return resp.status


async def upload(
    world: World, web: web_pb2_grpc.WebStub, data: bytes, title: str, **fields: Any
) -> str:
    """A whole upload over gRPC; the video id."""
    session = await web.CreateUploadURL(
        pb.CreateUploadURLRequest(
            title=title,
            file_name="clip.mp4",
            content_type="video/mp4",
            size_bytes=len(data),
            **fields,
        ),
        metadata=world.md(),
    )
    assert await post_form(session.upload, data) in (200, 201, 204)
    done = await web.CompleteUpload(
        pb.CompleteUploadRequest(video_id=session.video_id, etag=session.etag),
        metadata=world.md(),
    )
    assert done.status == "PENDING_TRANSCODE" and done.job_id
    return session.video_id


async def wait_status(
    world: World, web: web_pb2_grpc.WebStub, video_id: str, *wanted: str, timeout: float = 90
) -> pb.TranscodeStatus:
    deadline = time.monotonic() + timeout
    while True:
        status = await web.GetTranscodeStatus(
            pb.GetTranscodeStatusRequest(video_id=video_id), metadata=world.md()
        )
        if status.status in wanted:
            return status
        assert status.status not in ("READY", "FAILED"), status  # terminal, not the one wanted
        assert time.monotonic() < deadline, f"{video_id} stuck in {status.status}"
        await asyncio.sleep(0.2)


async def rest_json(
    http: aiohttp.ClientSession, world: World, path: str, user: str = "alice"
) -> Any:
    async with http.get(world.rest + path, headers=world.headers(user)) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


def grpc_json(message: Any) -> Any:
    return json_format.MessageToDict(message)


def _as_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or len(value) < 19 or value[4] != "-" or "T" not in value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def assert_same(rest: Any, rpc: Any, path: str = "") -> None:
    """REST's JSON and the proto3 JSON of the gRPC answer say the same: proto3 leaves out
    zero values (REST's null, false, 0, [] and ""), writes int64 as strings and timestamps
    in RFC 3339 with ``Z``."""
    if isinstance(rest, dict):
        assert isinstance(rpc, dict), (path, rest, rpc)
        extra = set(rpc) - set(rest)
        assert not extra, f"{path}: only gRPC has {extra}"
        for key, value in rest.items():
            if key not in rpc:
                assert value in (None, False, 0, [], "", {}), f"{path}.{key}: only REST has it"
                continue
            assert_same(value, rpc[key], f"{path}.{key}")
    elif isinstance(rest, list):
        assert isinstance(rpc, list) and len(rest) == len(rpc), (path, rest, rpc)
        for i, (a, b) in enumerate(zip(rest, rpc, strict=True)):
            assert_same(a, b, f"{path}[{i}]")
    elif isinstance(rest, bool):
        assert rpc == rest, (path, rest, rpc)
    elif isinstance(rest, int) and isinstance(rpc, str):
        assert int(rpc) == rest, (path, rest, rpc)
    elif isinstance(rest, int | float):
        assert rpc == pytest.approx(rest), (path, rest, rpc)
    elif _as_time(rest) is not None:
        assert _as_time(rpc) == _as_time(rest), (path, rest, rpc)
    else:
        assert rpc == rest, (path, rest, rpc)


# -- discovery: reflection and health -----------------------------------------------------------


async def test_generic_reflection_lists_describes_and_calls_the_service(world: World) -> None:
    """What grpcurl does: list services, fetch the descriptors, build a request and call a
    method, all from the server's reflection with no generated code."""

    def discover() -> tuple[list[str], list[str], bytes]:
        with grpc.insecure_channel(world.target) as chan:
            database = ProtoReflectionDescriptorDatabase(chan)
            services = database.get_services()
            pool = descriptor_pool.DescriptorPool(database)
            service = pool.FindServiceByName(SERVICE)
            methods = [m.name for m in service.methods]
            method = service.FindMethodByName("GetVideo")
            request = message_factory.GetMessageClass(method.input_type)(video_id="nope")
            call = chan.unary_unary(
                f"/{SERVICE}/GetVideo",
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=bytes,
            )
            try:
                call(request, metadata=world.md(), timeout=10)
            except grpc.RpcError as exc:
                return list(services), methods, str(exc.code()).encode()
            raise AssertionError("GetVideo of a video that does not exist answered")

    services, methods, code = await asyncio.to_thread(discover)
    assert SERVICE in services
    assert "grpc.health.v1.Health" in services
    assert {"CreateUploadURL", "SearchVideos", "UpdateVideo", "DeleteVideo"} <= set(methods)
    assert len(methods) == len(pb.DESCRIPTOR.services_by_name["Web"].methods)
    assert code == b"StatusCode.NOT_FOUND"


async def test_health_is_serving_for_the_server_and_the_service(
    channel: grpc.aio.Channel,
) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for name in ("", SERVICE):
        answer = await health.Check(health_pb2.HealthCheckRequest(service=name))
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.aio.AioRpcError) as unknown:  # the standard answer, no details
        await health.Check(health_pb2.HealthCheckRequest(service="nope"))
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


# -- errors before any data -----------------------------------------------------------------------


async def test_unauthenticated_calls_are_refused_with_details(
    world: World, web: web_pb2_grpc.WebStub
) -> None:
    request = pb.SearchVideosRequest(q="zebra")
    for metadata in ((), (("authorization", "Bearer not-a-token"),)):
        failed = await fails(web.SearchVideos(request, metadata=metadata))
        assert failed.code == grpc.StatusCode.UNAUTHENTICATED
        assert failed.reason == "UNAUTHORIZED"
        assert failed.info.domain == "tritontube"
        assert failed.info.metadata["httpStatus"] == "401"
    forged = mint_token(AuthSettings(secret="another-stack-secret-" + "x" * 20), "alice")
    failed = await fails(
        web.SearchVideos(request, metadata=(("authorization", f"Bearer {forged}"),))
    )
    assert failed.code == grpc.StatusCode.UNAUTHENTICATED


async def test_invalid_arguments_name_their_fields_as_rest_does(
    world: World, web: web_pb2_grpc.WebStub, http: aiohttp.ClientSession
) -> None:
    failed = await fails(
        web.SearchVideos(pb.SearchVideosRequest(q="x", page_size=500), metadata=world.md())
    )
    assert failed.code == grpc.StatusCode.INVALID_ARGUMENT
    assert failed.reason == "VALIDATION" and failed.fields == ["pageSize"]
    async with http.get(
        world.rest + "/v1/videos:search?q=x&pageSize=500", headers=world.headers()
    ) as resp:
        body = await resp.json()
    assert resp.status == 422 and [e["field"] for e in body["errors"]] == failed.fields
    failed = await fails(
        web.CreateUploadURL(
            pb.CreateUploadURLRequest(title="", file_name="a.mp4", content_type="video/mp4"),
            metadata=world.md(),
        )
    )
    assert failed.code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(failed.fields) == {"title", "sizeBytes"}
    missing = await fails(web.GetVideo(pb.GetVideoRequest(video_id="no/such"), metadata=world.md()))
    assert missing.code == grpc.StatusCode.NOT_FOUND and missing.reason == "NOT_FOUND"


async def test_the_upload_scope_is_rate_limited_with_retry_info(
    world: World, web: web_pb2_grpc.WebStub
) -> None:
    burst = world.settings.rate_limit.upload_burst
    invalid = pb.CreateUploadURLRequest(title="")  # spends a token, then fails validation
    codes = []
    for _ in range(burst + 1):
        try:
            await web.CreateUploadURL(invalid, metadata=world.md("flooder"))
        except grpc.aio.AioRpcError as exc:
            codes.append(exc.code())
            last = exc
    assert codes[:burst] == [grpc.StatusCode.INVALID_ARGUMENT] * burst
    assert codes[burst] == grpc.StatusCode.RESOURCE_EXHAUSTED
    limited = Failed(last)
    assert limited.reason == "RATE_LIMITED" and "retry" in limited.found
    assert limited.retry.retry_delay.seconds >= 1
    # Another user's budget is their own.
    other = await fails(web.CreateUploadURL(invalid, metadata=world.md("patient")))
    assert other.code == grpc.StatusCode.INVALID_ARGUMENT


# -- uploads, playback and the errors of each --------------------------------------------------


async def test_upload_transcode_and_play_over_grpc(world: World, web: web_pb2_grpc.WebStub) -> None:
    data = (world.media / "clip.mp4").read_bytes()
    session = await web.CreateUploadURL(
        pb.CreateUploadURLRequest(
            title="Zebra crossing",
            tags=["Street", "city"],
            file_name="clip.mp4",
            content_type="video/mp4",
            size_bytes=len(data),
        ),
        metadata=world.md(),
    )
    assert await post_form(session.upload, data) in (200, 201, 204)
    request = pb.CompleteUploadRequest(video_id=session.video_id)
    no_etag = await fails(web.CompleteUpload(request, metadata=world.md()))
    assert no_etag.code == grpc.StatusCode.FAILED_PRECONDITION and no_etag.reason == "IF_MATCH"
    request.etag = "stale"
    stale = await fails(web.CompleteUpload(request, metadata=world.md()))
    assert stale.code == grpc.StatusCode.ABORTED and stale.reason == "ETAG_MISMATCH"
    assert "precondition" in stale.found
    not_theirs = await fails(
        web.CompleteUpload(
            pb.CompleteUploadRequest(video_id=session.video_id, etag=session.etag),
            metadata=world.md("bob"),
        )
    )
    assert not_theirs.code == grpc.StatusCode.NOT_FOUND
    request.etag = session.etag
    done = await web.CompleteUpload(request, metadata=world.md())
    assert (done.video_id, done.status) == (session.video_id, "PENDING_TRANSCODE")
    again = await web.CompleteUpload(request, metadata=world.md())  # idempotent
    assert again.job_id == done.job_id

    early = await fails(
        web.GetPlaybackInfo(
            pb.GetPlaybackInfoRequest(video_id=session.video_id), metadata=world.md()
        )
    )
    if early.code != grpc.StatusCode.FAILED_PRECONDITION:  # already playable: fine too
        assert early.code == grpc.StatusCode.OK
    else:
        assert early.reason == "NOT_PLAYABLE" and "videoStatus" in early.info.metadata

    status = await wait_status(world, web, session.video_id, "READY")
    assert status.progress == 100 and status.attempt == 1
    info = await web.GetPlaybackInfo(
        pb.GetPlaybackInfoRequest(video_id=session.video_id), metadata=world.md("bob")
    )
    assert info.renditions and info.manifest_url.startswith(world.rest + "/media/")
    async with aiohttp.ClientSession() as session_http, session_http.get(info.manifest_url) as got:
        assert got.status == 200 and b"<MPD" in await got.read()
    world.videos["public"] = session.video_id
    world.etags["manifest"] = info.manifest_url

    private = await upload(world, web, data, "Private diary", visibility="private")
    world.videos["private"] = private
    await wait_status(world, web, private, "READY")
    hidden = await fails(
        web.GetVideo(pb.GetVideoRequest(video_id=private), metadata=world.md("bob"))
    )
    assert hidden.code == grpc.StatusCode.NOT_FOUND  # bob may not know it exists
    mine = await web.GetVideo(pb.GetVideoRequest(video_id=private), metadata=world.md())
    assert mine.visibility == "private" and mine.etag


async def test_watch_events_and_analytics_over_grpc(
    world: World, web: web_pb2_grpc.WebStub
) -> None:
    video_id = world.videos["public"]
    now = datetime.now(UTC)
    events = [  # 24 s of watching: a view, so the video trends
        pb.WatchEvent(event_id=f"g-{i}", kind=kind, position_seconds=12.0 * i)
        for i, kind in enumerate(("PLAY", "HEARTBEAT", "ENDED"))
    ]
    for i, event in enumerate(events):
        event.occurred_at.FromDatetime(now - timedelta(seconds=24 - 12 * i))
    sent = await web.SendWatchEvents(
        pb.SendWatchEventsRequest(video_id=video_id, events=events), metadata=world.md("bob")
    )
    assert sent.accepted == 3 and list(sent.event_ids) == ["g-0", "g-1", "g-2"]
    bad = await fails(
        web.SendWatchEvents(
            pb.SendWatchEventsRequest(video_id=video_id, events=[pb.WatchEvent(event_id="x")]),
            metadata=world.md("bob"),
        )
    )
    assert bad.code == grpc.StatusCode.INVALID_ARGUMENT and "events.0.kind" in bad.fields
    empty = await fails(
        web.SendWatchEvents(pb.SendWatchEventsRequest(video_id=video_id), metadata=world.md())
    )
    assert empty.code == grpc.StatusCode.INVALID_ARGUMENT and empty.fields == ["events"]
    deadline = time.monotonic() + 30
    while True:
        history = await web.ListWatchHistory(pb.ListWatchHistoryRequest(), metadata=world.md("bob"))
        stats = await web.GetVideoStats(
            pb.GetVideoStatsRequest(video_id=video_id), metadata=world.md("bob")
        )
        # Stats and history are two folds (by video, by viewer): wait for both.
        if history.entries and history.entries[0].completed and stats.views == 1:
            break
        assert time.monotonic() < deadline, (history, stats)
        await asyncio.sleep(0.2)
    assert history.entries[0].video_id == video_id and history.entries[0].completed


# -- REST and gRPC agree ------------------------------------------------------------------------


async def test_rest_and_grpc_give_the_same_answers(
    world: World, web: web_pb2_grpc.WebStub, http: aiohttp.ClientSession
) -> None:
    vid, private = world.videos["public"], world.videos["private"]
    md = world.md()
    pairs: list[tuple[str, Any, str]] = [
        (f"/v1/videos/{vid}", web.GetVideo(pb.GetVideoRequest(video_id=vid), metadata=md), "alice"),
        (
            f"/v1/videos/{vid}",
            web.GetVideo(pb.GetVideoRequest(video_id=vid), metadata=world.md("bob")),
            "bob",
        ),
        (
            f"/v1/videos/{private}/transcodeStatus",
            web.GetTranscodeStatus(pb.GetTranscodeStatusRequest(video_id=private), metadata=md),
            "alice",
        ),
        (
            "/v1/videos?owner=me&pageSize=1",
            web.ListVideos(pb.ListVideosRequest(owner="me", page_size=1), metadata=md),
            "alice",
        ),
        (
            "/v1/videos:search?q=zebra&tags=street",
            web.SearchVideos(pb.SearchVideosRequest(q="zebra", tags=["street"]), metadata=md),
            "alice",
        ),
        (
            f"/v1/videos/{vid}/stats",
            web.GetVideoStats(pb.GetVideoStatsRequest(video_id=vid), metadata=md),
            "alice",
        ),
        (
            "/v1/users/me/history",
            web.ListWatchHistory(pb.ListWatchHistoryRequest(), metadata=world.md("bob")),
            "bob",
        ),
        (
            "/v1/videos:trending",
            web.ListTrendingVideos(pb.ListTrendingVideosRequest(), metadata=md),
            "alice",
        ),
        (
            f"/v1/videos:recommendations?videoId={vid}",
            web.RecommendVideos(pb.RecommendVideosRequest(video_id=vid), metadata=md),
            "alice",
        ),
    ]
    for path, call, user in pairs:
        rest = await rest_json(http, world, path, user)
        rpc = grpc_json(await call)
        assert_same(rest, rpc, path)
    # Content both transports must really have, so that agreeing is not agreeing on nothing.
    listing = await rest_json(http, world, "/v1/videos?owner=me&pageSize=1")
    assert len(listing["videos"]) == 1 and listing["nextPageToken"]
    found = await rest_json(http, world, "/v1/videos:search?q=zebra&tags=street")
    assert [r["videoId"] for r in found["results"]] == [vid]
    trending = await rest_json(http, world, "/v1/videos:trending")
    assert [r["videoId"] for r in trending["results"]] == [vid]
    # playbackInfo: the same signed URLs (the token is bucketed by expiry).
    rest = await rest_json(http, world, f"/v1/videos/{vid}/playbackInfo")
    rpc = grpc_json(await web.GetPlaybackInfo(pb.GetPlaybackInfoRequest(video_id=vid), metadata=md))
    if rest["expiresAt"] == rpc["expiresAt"]:
        assert_same(rest, rpc, "playbackInfo")
    # The same refusal on both transports.
    async with http.get(world.rest + f"/v1/videos/{private}", headers=world.headers("bob")) as r:
        problem = await r.json()
    refused = await fails(
        web.GetVideo(pb.GetVideoRequest(video_id=private), metadata=world.md("bob"))
    )
    assert (r.status, problem["code"]) == (404, refused.reason)
    assert refused.info.metadata["httpStatus"] == "404"


# -- managing a video -----------------------------------------------------------------------------


async def search_ids(web: web_pb2_grpc.WebStub, world: World, q: str) -> list[str]:
    page = await web.SearchVideos(pb.SearchVideosRequest(q=q), metadata=world.md("carol"))
    return [r.video_id for r in page.results]


async def test_update_video_is_guarded_by_the_etag_and_searchable_within_2s(
    world: World, web: web_pb2_grpc.WebStub, http: aiohttp.ClientSession
) -> None:
    vid = world.videos["public"]
    current = await web.GetVideo(pb.GetVideoRequest(video_id=vid), metadata=world.md())
    patch = pb.VideoPatch(title="Okapi at dusk")
    request = pb.UpdateVideoRequest(
        video_id=vid, video=patch, update_mask=FieldMask(paths=["title"])
    )

    missing = await fails(web.UpdateVideo(request, metadata=world.md()))
    assert missing.code == grpc.StatusCode.FAILED_PRECONDITION and missing.reason == "IF_MATCH"
    request.etag = current.etag
    not_owner = await fails(web.UpdateVideo(request, metadata=world.md("bob")))
    assert not_owner.code == grpc.StatusCode.PERMISSION_DENIED and not_owner.reason == "NOT_OWNER"
    bad_mask = pb.UpdateVideoRequest(
        video_id=vid, video=patch, update_mask=FieldMask(paths=["owner"]), etag=current.etag
    )
    wrong = await fails(web.UpdateVideo(bad_mask, metadata=world.md()))
    assert wrong.code == grpc.StatusCode.INVALID_ARGUMENT and wrong.fields == ["updateMask"]

    started = time.monotonic()
    edited = await web.UpdateVideo(request, metadata=world.md())
    assert edited.title == "Okapi at dusk" and edited.etag != current.etag
    assert list(edited.tags) == ["street", "city"]  # not in the mask: unchanged
    while vid not in await search_ids(web, world, "okapi"):
        assert time.monotonic() - started < 2.0, "the edited title was not searchable within 2 s"
        await asyncio.sleep(0.05)
    assert vid not in await search_ids(web, world, "zebra")

    stale = await fails(web.UpdateVideo(request, metadata=world.md()))  # the old etag again
    assert stale.code == grpc.StatusCode.ABORTED and stale.reason == "ETAG_MISMATCH"

    # REST: the ETag of GET is PATCH's If-Match; 428 without it, 412 when stale.
    url = f"{world.rest}/v1/videos/{vid}"
    async with http.get(url, headers=world.headers()) as resp:
        etag = resp.headers["ETag"]
        assert etag == f'"{edited.etag}"' and (await resp.json())["etag"] == edited.etag
    body = {"tags": ["wildlife", "Dusk"], "visibility": "unlisted"}
    async with http.patch(url, json=body, headers=world.headers()) as resp:
        assert resp.status == 428 and (await resp.json())["code"] == "IF_MATCH"
    async with http.patch(
        url, json=body, headers=world.headers(**{"If-Match": f'"{current.etag}"'})
    ) as resp:
        assert resp.status == 412 and (await resp.json())["code"] == "ETAG_MISMATCH"
    async with http.patch(
        url, json={"owner": "bob"}, headers=world.headers(**{"If-Match": etag})
    ) as resp:
        assert resp.status == 422
    async with http.patch(url, json=body, headers=world.headers(**{"If-Match": etag})) as resp:
        assert resp.status == 200, await resp.text()
        patched = await resp.json()
        assert resp.headers["ETag"] == f'"{patched["etag"]}"' != etag
    assert (patched["tags"], patched["visibility"]) == (["wildlife", "dusk"], "unlisted")
    grpc_view = await web.GetVideo(pb.GetVideoRequest(video_id=vid), metadata=world.md())
    assert_same(patched, grpc_json(grpc_view), "patched")
    # Unlisted: no longer found by search, still playable by its link.
    deadline = time.monotonic() + 5
    while vid in await search_ids(web, world, "okapi"):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    back = pb.UpdateVideoRequest(
        video_id=vid, video=pb.VideoPatch(visibility="public"), etag=patched["etag"]
    )
    assert (await web.UpdateVideo(back, metadata=world.md())).visibility == "public"


async def test_retry_transcode_requeues_a_failed_video_as_a_new_job(
    world: World, web: web_pb2_grpc.WebStub, http: aiohttp.ClientSession
) -> None:
    good = (world.media / "clip.mp4").read_bytes()
    broken = good[:2048]  # a video container's start (it passes the sniff) that ends there
    vid = await upload(world, web, broken, "Broken clip")
    failed = await wait_status(world, web, vid, "FAILED")
    assert failed.error.code
    not_owner = await fails(
        web.RetryTranscode(pb.RetryTranscodeRequest(video_id=vid), metadata=world.md("bob"))
    )
    assert not_owner.code == grpc.StatusCode.NOT_FOUND  # not playable: bob cannot see it

    # The source is fixed in the store (what the owner would re-upload), then retried.
    store = world.store()
    try:
        await store.put_bytes(f"uploads/{vid}/source.mp4", good, "video/mp4")
    finally:
        store.close()
    queued = await web.RetryTranscode(pb.RetryTranscodeRequest(video_id=vid), metadata=world.md())
    assert queued.status in ("PENDING_TRANSCODE", "TRANSCODING", "READY")
    assert not queued.HasField("error")
    done = await wait_status(world, web, vid, "READY", "FAILED")
    assert done.status == "READY", done
    again = await fails(
        web.RetryTranscode(pb.RetryTranscodeRequest(video_id=vid), metadata=world.md())
    )
    assert again.code == grpc.StatusCode.FAILED_PRECONDITION and again.reason == "NOT_RETRYABLE"
    async with http.post(
        f"{world.rest}/v1/videos/{vid}:retryTranscode", headers=world.headers()
    ) as resp:
        assert resp.status == 409 and (await resp.json())["code"] == "NOT_RETRYABLE"
    # Two jobs, one per attempt of the owner: the retry's has an id of its own.
    jobs = [
        v
        for k, v in await read_all(world.settings, catalogue.TRANSCODE_JOBS.name, _codec())
        if k == vid
    ]
    assert len({j.job_id for j in jobs}) == 2 and all(j.attempt == 1 for j in jobs)
    world.videos["retried"] = vid


def _codec() -> Any:
    from tritontube.deps import build_deps

    return build_deps(Settings()).codec


async def test_delete_removes_the_video_everywhere(
    world: World, web: web_pb2_grpc.WebStub, http: aiohttp.ClientSession
) -> None:
    vid = world.videos["public"]
    manifest = world.etags["manifest"]
    not_owner = await fails(
        web.DeleteVideo(pb.DeleteVideoRequest(video_id=vid), metadata=world.md("bob"))
    )
    assert not_owner.code == grpc.StatusCode.PERMISSION_DENIED
    stale = await fails(
        web.DeleteVideo(pb.DeleteVideoRequest(video_id=vid, etag="stale"), metadata=world.md())
    )
    assert stale.code == grpc.StatusCode.ABORTED
    store = world.store()
    try:
        assert await store.list(f"media/{vid}/") and await store.list(f"uploads/{vid}/")
        await web.DeleteVideo(pb.DeleteVideoRequest(video_id=vid), metadata=world.md())
        # Its bytes: media, poster and source.
        assert await store.list(f"media/{vid}/") == []
        assert await store.list(f"uploads/{vid}/") == []
    finally:
        store.close()
    # Every read, on both transports.
    gone = await fails(web.GetVideo(pb.GetVideoRequest(video_id=vid), metadata=world.md()))
    assert gone.code == grpc.StatusCode.NOT_FOUND
    for path in (f"/v1/videos/{vid}", f"/v1/videos/{vid}/playbackInfo", f"/v1/videos/{vid}/stats"):
        async with http.get(world.rest + path, headers=world.headers()) as resp:
            assert resp.status == 404, path
    async with http.get(manifest) as resp:  # a signed URL handed out before
        assert resp.status == 404
    again = await fails(web.DeleteVideo(pb.DeleteVideoRequest(video_id=vid), metadata=world.md()))
    assert again.code == grpc.StatusCode.NOT_FOUND
    listing = await web.ListVideos(
        pb.ListVideosRequest(owner="me", page_size=100), metadata=world.md()
    )
    assert vid not in [v.video_id for v in listing.videos] and listing.videos
    deadline = time.monotonic() + 10
    while True:  # the index, trending and recommendations follow the tombstones
        found = await search_ids(web, world, "okapi")
        trending = await web.ListTrendingVideos(pb.ListTrendingVideosRequest(), metadata=world.md())
        recs = await web.RecommendVideos(pb.RecommendVideosRequest(), metadata=world.md("bob"))
        history = await web.ListWatchHistory(pb.ListWatchHistoryRequest(), metadata=world.md("bob"))
        ids = {*found, *(r.video_id for r in trending.results), *(r.video_id for r in recs.results)}
        ids |= {e.video_id for e in history.entries}
        if vid not in ids:
            break
        assert time.monotonic() < deadline, ids
        await asyncio.sleep(0.1)
    seed = await fails(
        web.RecommendVideos(pb.RecommendVideosRequest(video_id=vid), metadata=world.md())
    )
    assert seed.code == grpc.StatusCode.NOT_FOUND
    # A tombstone on the compacted topics; its analytics are dropped in the workers' tables.
    records = [
        (k, v) for k, v in await read_raw(world.settings, catalogue.VIDEO_STATE.name) if k == vid
    ]
    assert records[-1][1] is None and all(v is not None for _, v in records[:-1])
    stats = [
        (k, v) for k, v in await read_raw(world.settings, catalogue.VIDEO_STATS.name) if k == vid
    ]
    assert stats and stats[-1][1] is None
    assert await asyncio.to_thread(worker_get, world.settings, f"/stats/{vid}") == (404, None)
    assert await asyncio.to_thread(worker_get, world.settings, f"/videos/{vid}") == (404, None)
    world.videos["deleted"] = vid


async def read_raw(settings: Settings, topic: str) -> list[tuple[str, bytes | None]]:
    from helpers import read_topic

    records = await read_topic(settings, topic, expect=10**9, timeout=2.0)
    return [
        (r.key.decode(), r.value) for r in sorted(records, key=lambda r: (r.partition, r.offset))
    ]


async def test_rest_delete_answers_204_and_the_video_is_gone(
    world: World, web: web_pb2_grpc.WebStub, http: aiohttp.ClientSession
) -> None:
    vid = world.videos["private"]
    url = f"{world.rest}/v1/videos/{vid}"
    async with http.delete(url, headers=world.headers("bob")) as resp:
        assert resp.status == 404  # private: bob may not know it exists
    async with http.delete(url, headers=world.headers()) as resp:
        assert resp.status == 204, await resp.text()
    async with http.get(url, headers=world.headers()) as resp:
        assert resp.status == 404


async def test_replay_rebuild_reproduces_the_states_after_edits_and_deletes(
    world: World, web: web_pb2_grpc.WebStub, tmp_path: Path
) -> None:
    vid = world.videos["retried"]
    current = await web.GetVideo(pb.GetVideoRequest(video_id=vid), metadata=world.md())
    edit = pb.UpdateVideoRequest(
        video_id=vid, video=pb.VideoPatch(title="Fixed clip", tags=["fixed"]), etag=current.etag
    )
    await web.UpdateVideo(edit, metadata=world.md())
    snapshot = tmp_path / "rebuilt.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRITONTUBE_")}
    env.update(settings_env(world.settings))
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "tritontube.cli", "replay", "--rebuild", "--no-progress",
         "--snapshot", str(snapshot)],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    rebuilt = json.loads(snapshot.read_text())
    # The two deleted videos are gone; the edited, retried one is there as the workers have it.
    assert set(rebuilt) == {world.videos["retried"]}
    live: dict[str, VideoState] = {}
    for vid in rebuilt:
        status, state = await asyncio.to_thread(worker_get, world.settings, f"/videos/{vid}")
        assert status == 200, vid
        live[vid] = state
    assert rebuilt == rebuild.state_snapshot(live)
    assert (rebuilt[vid]["title"], rebuilt[vid]["tags"]) == ("Fixed clip", ["fixed"])
    assert rebuilt[vid]["status"] == "READY"
