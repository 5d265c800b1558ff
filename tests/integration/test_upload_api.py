"""The upload pipeline against real services: broker, SeaweedFS, worker, and the API in process.

A real multipart POST goes to the pre-signed URL; jobs are read from `transcode-jobs` with a
plain aiokafka consumer, outside the application's code.
"""

from __future__ import annotations

import asyncio
import io
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from aiokafka import AIOKafkaConsumer, TopicPartition

from helpers import CONTAINERS, container_clip, problem
from tritontube.deps import build_deps
from tritontube.devstack.stack import EmbeddedStack
from tritontube.http.app import create_http_app
from tritontube.http.auth import mint_token
from tritontube.settings import Settings, UploadSettings
from tritontube.storage.port import UploadNotFound
from tritontube.streams import catalogue

pytestmark = pytest.mark.integration
MiB = 1024**2


def session_key(api: Api, video_id: str) -> str:
    return f"uploads/{video_id}/source.mp4"


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("media") / "clip.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10:duration=1",
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-y", str(path)],
        check=True, timeout=60,
    )  # fmt: skip
    return path.read_bytes()


class Api:
    """The API under test plus direct access to the topics."""

    def __init__(self, client: TestClient, settings: Settings) -> None:  # type: ignore[type-arg]
        self.client = client
        self.settings = settings

    def auth(self, user: str = "alice") -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_token(self.settings.auth, user)}"}

    async def upload_url(self, size: int, user: str = "alice", **extra: Any) -> dict[str, Any]:
        body = {
            "title": "Zebra crossing",
            "tags": ["Street", "street", "city"],
            "fileName": "clip.mp4",
            "contentType": "video/mp4",
            "sizeBytes": size,
            **extra,
        }
        resp = await self.client.post("/v1/videos:uploadURL", json=body, headers=self.auth(user))
        assert resp.status == 200, await resp.text()
        data: dict[str, Any] = await resp.json()
        return data

    async def complete(
        self, video_id: str, etag: str, user: str = "alice", request_id: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        extra = {"X-Request-Id": request_id} if request_id else {}
        resp = await self.client.post(
            "/v1/videos:completeUpload",
            json={"videoId": video_id},
            headers={**self.auth(user), "If-Match": f'"{etag}"', **extra},
        )
        if request_id:
            assert resp.headers["X-Request-Id"] == request_id
        return resp.status, await resp.json()

    async def records(self, topic: str, video_id: str) -> list[Any]:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=self.settings.kafka.bootstrap_servers,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        found = []
        try:
            for _ in range(4):
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    found += [r for r in records if r.key == video_id.encode()]
        finally:
            await consumer.stop()
        return found

    async def complete_parts(
        self, video_id: str, etag: str, upload_id: str
    ) -> tuple[int, dict[str, Any]]:
        resp = await self.client.post(
            "/v1/videos:completeUpload",
            json={"videoId": video_id, "uploadId": upload_id},
            headers={**self.auth(), "If-Match": f'"{etag}"'},
        )
        return resp.status, await resp.json()

    async def count(self, topic: str) -> int:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.kafka.bootstrap_servers)
        await consumer.start()
        try:
            tps = [TopicPartition(topic, p) for p in range(self.settings.kafka.partitions)]
            ends = await consumer.end_offsets(tps)
            return sum(ends.values())
        finally:
            await consumer.stop()

    async def jobs(self, video_id: str) -> list[Any]:
        codec = build_deps(self.settings).codec
        consumer = AIOKafkaConsumer(
            catalogue.TRANSCODE_JOBS.name,
            bootstrap_servers=self.settings.kafka.bootstrap_servers,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        found = []
        try:
            for _ in range(4):
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    found += [codec.decode(r.value) for r in records if r.key == video_id.encode()]
        finally:
            await consumer.stop()
        return found


async def post_form(
    upload: dict[str, Any], data: bytes, content_type: str = "video/mp4", **override: str
) -> int:
    form = aiohttp.FormData()
    for key, value in {**upload["fields"], **override}.items():
        form.add_field(key, value)
    form.add_field("file", data, filename="clip.mp4", content_type=content_type)
    async with aiohttp.ClientSession() as session, session.post(upload["url"], data=form) as resp:
        return resp.status


@pytest.fixture
async def api(
    make_settings: Callable[..., Settings],
    stack_factory: Callable[..., EmbeddedStack],
    aiohttp_client: Callable[..., Any],
) -> Api:
    settings = make_settings(
        upload=UploadSettings(
            session_ttl_seconds=60,
            expiry_scan_seconds=0.5,
            multipart_threshold_bytes=MiB,
            part_size_bytes=5 * MiB,
        )
    )
    stack_factory(settings)
    client = await aiohttp_client(create_http_app(settings, build_deps(settings)))
    return Api(client, settings)


async def put_part(url: str, data: bytes) -> int:
    async with aiohttp.ClientSession() as session, session.put(url, data=io.BytesIO(data)) as r:
        return r.status


async def test_resumable_upload_in_parts_signs_lists_and_joins(api: Api, clip: bytes) -> None:
    """A large file: a multipart session, parts PUT to pre-signed URLs (some, then a
    "reload": the list says which are stored), completion refused until every part is there,
    then the joined object is verified like a form upload."""
    data = clip + bytes(12 * MiB)  # a real container header, then padding: 3 parts
    session = await api.upload_url(len(data), resumable=True)
    assert "upload" not in session
    multipart = session["multipart"]
    assert (multipart["partSizeBytes"], multipart["partCount"]) == (5 * MiB, 3)
    vid, upload_id = session["videoId"], multipart["uploadId"]
    base = f"/v1/videos/{vid}/uploadParts"

    async def sign(*numbers: int, user: str = "alice", upload: str = upload_id) -> Any:
        body = {"uploadId": upload, "partNumbers": list(numbers)}
        return await api.client.post(base, json=body, headers=api.auth(user))

    async def listing(user: str = "alice", upload: str = upload_id) -> Any:
        return await api.client.get(base, params={"uploadId": upload}, headers=api.auth(user))

    signed = await (await sign(1, 3)).json()
    assert [p["partNumber"] for p in signed["parts"]] == [1, 3]
    assert [p["sizeBytes"] for p in signed["parts"]] == [5 * MiB, len(data) - 10 * MiB]
    urls = {p["partNumber"]: p["url"] for p in signed["parts"]}
    assert await put_part(urls[3], data[10 * MiB :]) == 200
    assert await put_part(urls[1], data[: 5 * MiB]) == 200

    # After a reload the client asks what is stored and sends only the rest.
    stored = await (await listing()).json()
    assert [(p["partNumber"], p["sizeBytes"]) for p in stored["parts"]] == [
        (1, 5 * MiB),
        (3, len(data) - 10 * MiB),
    ]
    assert (stored["partCount"], stored["sizeBytes"]) == (3, len(data))
    status, body = await api.complete_parts(vid, session["etag"], upload_id)
    assert (status, body["code"]) == (409, "PARTS_INCOMPLETE")
    assert "[2]" in body["detail"]

    # Refusals: another user, another upload id, parts outside the plan, bad bodies.
    assert (await problem(await sign(2, user="mallory"), 404))["code"] == "NOT_FOUND"
    assert (await problem(await listing(user="mallory"), 404))["code"] == "NOT_FOUND"
    other = (await api.upload_url(len(data), resumable=True))["multipart"]["uploadId"]
    assert (await problem(await sign(2, upload=other), 404))["code"] == "UPLOAD_NOT_FOUND"
    assert (await problem(await listing(upload=other), 404))["code"] == "UPLOAD_NOT_FOUND"
    assert (await problem(await sign(4), 422))["code"] == "VALIDATION"
    assert (await problem(await sign(0), 422))["code"] == "VALIDATION"
    assert (await problem(await listing(upload=""), 422))["code"] == "VALIDATION"
    resp = await api.client.post(base, json={"uploadId": upload_id}, headers=api.auth())
    assert (await problem(resp, 422))["code"] == "VALIDATION"

    second = (await (await sign(2)).json())["parts"][0]["url"]
    assert await put_part(second, data[5 * MiB : 10 * MiB]) == 200
    status, body = await api.complete_parts(vid, session["etag"], upload_id)
    assert (status, body["status"]) == (200, "PENDING_TRANSCODE"), body
    again = await api.complete_parts(vid, session["etag"], upload_id)
    assert again == (status, body)  # idempotent: the same answer, nothing joined twice
    store = build_deps(api.settings).object_store
    assert await store.get_bytes(session_key(api, vid)) == data
    assert (await problem(await sign(1), 409))["code"] == "UPLOAD_COMPLETED"


async def test_sizes_beyond_a_single_post_need_parts(api: Api) -> None:
    too_big = api.settings.upload.max_size_bytes + 1
    body = {"title": "t", "fileName": "a.mp4", "contentType": "video/mp4", "sizeBytes": too_big}
    resp = await api.client.post("/v1/videos:uploadURL", json=body, headers=api.auth())
    assert "resumable" in (await problem(resp, 413))["detail"]
    body["resumable"] = True
    resp = await api.client.post("/v1/videos:uploadURL", json=body, headers=api.auth())
    assert resp.status == 200, await resp.text()
    body["sizeBytes"] = api.settings.upload.multipart_max_size_bytes + 1
    resp = await api.client.post("/v1/videos:uploadURL", json=body, headers=api.auth())
    assert (await problem(resp, 413))["code"] == "TOO_LARGE"


async def test_happy_path_reaches_pending_transcode_with_exactly_one_job(
    api: Api, clip: bytes
) -> None:
    session = await api.upload_url(len(clip))
    assert session["upload"]["fields"]["key"] == f"uploads/{session['videoId']}/source.mp4"
    assert await post_form(session["upload"], clip) in (200, 201, 204)
    status, body = await api.complete(
        session["videoId"], session["etag"], request_id="req-0001-abcd"
    )
    assert status == 200, body
    # The request's id travels with the event it published (a record header), for the logs.
    completed = await api.records(catalogue.UPLOADS.name, session["videoId"])
    assert (catalogue.REQUEST_ID_HEADER, b"req-0001-abcd") in completed[-1].headers
    assert body["status"] == "PENDING_TRANSCODE"
    assert body["currentStatus"] in {"PENDING_TRANSCODE", "TRANSCODING", "READY"}
    assert body["videoId"] == session["videoId"]
    # Replays and concurrent duplicates return the same answer and publish nothing new.
    uploads_before = await api.count(catalogue.UPLOADS.name)
    again = await asyncio.gather(
        *(api.complete(session["videoId"], session["etag"]) for _ in range(5))
    )
    assert {s for s, _ in again} == {200}
    assert {b["jobId"] for _, b in again} == {body["jobId"]}
    assert {b["status"] for _, b in again} == {"PENDING_TRANSCODE"}
    assert await api.count(catalogue.UPLOADS.name) == uploads_before
    jobs = [j for j in await api.jobs(session["videoId"]) if j.attempt == 1]
    assert len(jobs) == 1
    assert jobs[0].source_key == session["upload"]["fields"]["key"]


async def test_concurrent_first_completions_start_one_job(api: Api, clip: bytes) -> None:
    session = await api.upload_url(len(clip))
    assert await post_form(session["upload"], clip) in (200, 201, 204)
    results = await asyncio.gather(
        *(api.complete(session["videoId"], session["etag"]) for _ in range(4))
    )
    assert {s for s, _ in results} == {200}
    jobs = [j for j in await api.jobs(session["videoId"]) if j.attempt == 1]
    assert len(jobs) == 1


async def test_refusals_publish_nothing(api: Api, clip: bytes) -> None:
    session = await api.upload_url(len(clip))
    vid, etag = session["videoId"], session["etag"]
    before = await api.count(catalogue.UPLOADS.name)

    status, body = await api.complete(vid, etag)  # nothing uploaded yet
    assert (status, body["code"]) == (409, "OBJECT_MISSING")
    status, body = await api.complete(vid, "stale-etag")
    assert (status, body["code"]) == (412, "ETAG_MISMATCH")
    status, body = await api.complete(vid, etag, user="mallory")
    assert (status, body["code"]) == (404, "NOT_FOUND")
    status, body = await api.complete("doesnotexist", etag)
    assert (status, body["code"]) == (404, "NOT_FOUND")

    # The store enforces the policy's size (exactly the declared one): a larger or a smaller
    # file is refused by the store itself and nothing is stored...
    assert await post_form(session["upload"], clip + b"\0" * 100) == 400
    assert await post_form(session["upload"], clip[:-1]) == 400
    status, body = await api.complete(vid, etag)
    assert (status, body["code"]) == (409, "OBJECT_MISSING")
    # ...a store that did not would still be caught by completeUpload's own check...
    store = build_deps(api.settings).object_store
    await store.put_bytes(session["upload"]["fields"]["key"], clip + b"\0" * 100, "video/mp4")
    status, body = await api.complete(vid, etag)
    assert (status, body["code"]) == (422, "SIZE_MISMATCH")
    # ...and a non-video file of exactly the declared size passes the policy, not the sniffing.
    assert await post_form(session["upload"], b"%PDF-1.4 " + b"x" * (len(clip) - 9)) in (
        200,
        201,
        204,
    )
    status, body = await api.complete(vid, etag)
    assert (status, body["code"]) == (415, "NOT_VIDEO")
    assert await api.count(catalogue.UPLOADS.name) == before
    assert await api.jobs(vid) == []

    # The session is still usable with the right file.
    assert await post_form(session["upload"], clip) in (200, 201, 204)
    status, body = await api.complete(vid, etag)
    assert (status, body["status"]) == (200, "PENDING_TRANSCODE")


async def test_every_accepted_content_type_reaches_pending_transcode(
    api: Api, tmp_path: Path
) -> None:
    """Phones, cameras and old software upload more than MP4: each accepted type, with a
    real file of that container, passes the content sniffing of completeUpload."""
    assert set(CONTAINERS) == set(api.settings.upload.allowed_content_types)
    for i, (content_type, (name, _)) in enumerate(CONTAINERS.items()):
        user = f"uploader-{i}"  # one upload each: within the per-user rate limit
        data = container_clip(tmp_path, content_type).read_bytes()
        session = await api.upload_url(len(data), user, fileName=name, contentType=content_type)
        assert session["upload"]["fields"]["key"].endswith("/source." + name.rsplit(".")[-1])
        assert await post_form(session["upload"], data, content_type) in (200, 201, 204)
        status, body = await api.complete(session["videoId"], session["etag"], user)
        assert (status, body.get("status")) == (200, "PENDING_TRANSCODE"), (content_type, body)


async def test_content_type_mismatch_is_refused(api: Api, clip: bytes) -> None:
    session = await api.upload_url(len(clip))
    # A client that tampers with the signed Content-Type field: the store rejects the policy.
    tampered = {"Content-Type": "video/webm"}
    assert await post_form(session["upload"], clip, **tampered) == 403
    status, body = await api.complete(session["videoId"], session["etag"])
    assert (status, body["code"]) == (409, "OBJECT_MISSING")
    # A store that accepted it anyway (one that does not enforce policies) is caught here.
    store = build_deps(api.settings).object_store
    await store.put_bytes(session["upload"]["fields"]["key"], clip, "video/webm")
    status, body = await api.complete(session["videoId"], session["etag"])
    assert (status, body["code"]) == (422, "CONTENT_TYPE_MISMATCH")


async def test_abandoned_session_expires_and_its_partial_object_is_removed(
    make_settings: Callable[..., Settings],
    stack_factory: Callable[..., EmbeddedStack],
    aiohttp_client: Callable[..., Any],
    clip: bytes,
) -> None:
    # Long enough for the upload below to land before expiry on a loaded machine.
    settings = make_settings(
        upload=UploadSettings(
            session_ttl_seconds=6,
            multipart_session_ttl_seconds=6,
            multipart_threshold_bytes=MiB,
            expiry_scan_seconds=0.5,
        )
    )
    stack_factory(settings)
    api = Api(await aiohttp_client(create_http_app(settings, build_deps(settings))), settings)
    session = await api.upload_url(len(clip))
    store = build_deps(settings).object_store
    key = session["upload"]["fields"]["key"]
    # What an abandoned upload leaves (the POST itself is all or nothing on a real store).
    await store.put_bytes(key, clip[: len(clip) // 2], "video/mp4")
    # ... and an abandoned upload in parts: one part stored, then nothing.
    parts = await api.upload_url(20 * MiB, resumable=True)
    upload_id = parts["multipart"]["uploadId"]
    parts_key = session_key(api, parts["videoId"])
    url = await store.presign_upload_part(parts_key, upload_id, 1, 60)
    assert await put_part(url, bytes(16 * MiB)) == 200
    assert len(await store.list_parts(parts_key, upload_id)) == 1
    assert await store.head(key) is not None
    await asyncio.sleep(6.5)
    status, body = await api.complete(session["videoId"], session["etag"])
    assert (status, body["code"]) == (410, "SESSION_EXPIRED")
    for _ in range(50):
        resp = await api.client.get(
            f"/v1/videos/{session['videoId']}/transcodeStatus", headers=api.auth()
        )
        if (await resp.json())["status"] == "EXPIRED" and await store.head(key) is None:
            break
        await asyncio.sleep(0.2)
    assert (await resp.json())["status"] == "EXPIRED"
    assert await store.head(key) is None
    assert await api.jobs(session["videoId"]) == []
    # The expiry scan aborted the abandoned multipart upload: its parts are gone.
    for _ in range(50):
        try:
            await store.list_parts(parts_key, upload_id)
        except UploadNotFound:
            break
        await asyncio.sleep(0.2)
    else:
        raise AssertionError("the abandoned multipart upload was never aborted")


async def test_transcode_status_is_for_the_owner_only(api: Api, clip: bytes) -> None:
    session = await api.upload_url(len(clip))
    for _ in range(50):  # the session event is folded asynchronously
        resp = await api.client.get(
            f"/v1/videos/{session['videoId']}/transcodeStatus", headers=api.auth()
        )
        if resp.status == 200:
            break
        await asyncio.sleep(0.1)
    assert resp.status == 200
    assert (await resp.json())["status"] == "UPLOAD_PENDING"
    resp = await api.client.get(
        f"/v1/videos/{session['videoId']}/transcodeStatus", headers=api.auth("mallory")
    )
    assert resp.status == 404
