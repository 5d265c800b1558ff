"""Contract tests of ``S3ObjectStore`` against the embedded SeaweedFS and a real moto server.

Both servers start on free ports in fixtures and always stop. The SeaweedFS-only tests at the
end are the attacker's view of the embedded store: no anonymous access, pre-signed POST
policies enforced by the store itself, conditional PUTs, CORS for the SPA origin only, nothing
but the S3 gateway reachable without credentials, keys kept private in the data directory.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import io
import json
import os
import socket
import stat
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer
from pydantic import SecretStr

from helpers import StoreBucket, server_store
from tritontube.devstack.process import free_port
from tritontube.devstack.seaweedfs import (
    BROKER_BUCKET,
    CREDENTIALS_FILE,
    Credentials,
    SeaweedFSServer,
)
from tritontube.settings import S3Settings
from tritontube.storage.port import (
    ObjectNotFound,
    ObjectStore,
    ObjectStoreError,
    ObjectStoreUnavailable,
    PresignedPost,
    UploadNotFound,
)
from tritontube.storage.s3 import S3ObjectStore

pytestmark = pytest.mark.integration

SPA_ORIGIN = "http://127.0.0.1:8080"
STORE_BUCKET = "tritontube-test"


@dataclass(frozen=True)
class Backend:
    name: str
    endpoint_url: str
    bucket: str
    access_key_id: str
    secret_access_key: str

    def store(self, **overrides: Any) -> S3ObjectStore:
        kwargs: dict[str, Any] = {
            "endpoint_url": self.endpoint_url,
            "bucket": self.bucket,
            "access_key_id": self.access_key_id,
            "secret_access_key": self.secret_access_key,
        }
        kwargs.update(overrides)
        return S3ObjectStore(**kwargs)


@pytest.fixture
def seaweedfs(tmp_path: Path) -> Iterator[SeaweedFSServer]:
    server = SeaweedFSServer(
        directory=tmp_path / "objects",
        port=free_port(),
        bucket=STORE_BUCKET,
        cors_origins=[SPA_ORIGIN],
        log_path=tmp_path / "objectstore.log",
    )
    with server:
        yield server


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(params=["seaweedfs", "moto"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "seaweedfs":
        server: StoreBucket = request.getfixturevalue("object_store")  # a bucket of its own
        return Backend(
            "seaweedfs",
            server.endpoint_url,
            server.bucket,
            server.access_key_id,
            server.secret_access_key,
        )
    # moto keeps state per process: a fresh bucket per test isolates the tests.
    endpoint: str = request.getfixturevalue("moto_endpoint")
    return Backend("moto", endpoint, f"tt-{uuid.uuid4().hex[:12]}", "testing", "testing")


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[S3ObjectStore]:
    adapter = backend.store()
    try:
        await adapter.ensure_bucket()
        yield adapter
    finally:
        adapter.close()


def _decode_policy(post: PresignedPost) -> dict[str, object]:
    policy: dict[str, object] = json.loads(base64.b64decode(post.fields["policy"]))
    return policy


async def _browser_upload(
    post: PresignedPost, data: bytes, *, origin: str | None = None
) -> aiohttp.ClientResponse:
    """What the SPA does: an HTML-form multipart POST, policy fields first, file last."""
    form = aiohttp.FormData()
    for name, value in post.fields.items():
        form.add_field(name, value)
    form.add_field("file", data, filename="clip.mp4", content_type="application/octet-stream")
    headers = {"Origin": origin} if origin else {}
    async with (
        aiohttp.ClientSession() as session,
        session.post(post.url, data=form, headers=headers) as response,
    ):
        await response.read()
        return response


# -- contract: both servers ------------------------------------------------------------------


async def test_adapter_satisfies_the_port(store: S3ObjectStore) -> None:
    assert isinstance(store, ObjectStore)


async def test_ensure_bucket_is_idempotent(store: S3ObjectStore) -> None:
    await store.ensure_bucket()
    await store.ensure_bucket()
    await store.ping()


async def test_put_get_head_list_delete(store: S3ObjectStore) -> None:
    await store.put_bytes("videos/a/one.txt", b"one", "text/plain")
    await store.put_bytes("videos/a/two.json", b'{"n": 2}', "application/json")
    await store.put_bytes("videos/ab/three.bin", b"\x00\x01\x02", "application/octet-stream")
    await store.put_bytes("videos/a/with space ü.txt", b"odd key", "text/plain")

    assert await store.get_bytes("videos/a/one.txt") == b"one"
    assert await store.get_bytes("videos/a/with space ü.txt") == b"odd key"
    assert await store.get_range("videos/a/with space ü.txt", 0, 3) == b"odd"
    assert await store.get_range("videos/a/with space ü.txt", 4, 100) == b"key"

    info = await store.head("videos/a/two.json")
    assert info is not None
    assert info.key == "videos/a/two.json"
    assert info.size == 8
    assert info.content_type == "application/json"
    assert info.etag and '"' not in info.etag
    assert info.last_modified.utcoffset() is not None

    listed = await store.list("videos/a/")
    assert [i.key for i in listed] == [
        "videos/a/one.txt",
        "videos/a/two.json",
        "videos/a/with space ü.txt",
    ]
    assert [i.size for i in listed] == [3, 8, 7]
    assert all(i.last_modified.utcoffset() is not None for i in listed)
    assert listed[1].etag == info.etag

    await store.delete(["videos/a/one.txt", "videos/a/never-existed"])
    assert await store.head("videos/a/one.txt") is None
    assert await store.delete_prefix("videos/a/") == 2
    assert await store.list("videos/a/") == []
    assert [i.key for i in await store.list("videos/")] == ["videos/ab/three.bin"]


async def test_put_bytes_overwrites(store: S3ObjectStore) -> None:
    await store.put_bytes("k", b"first", "text/plain")
    await store.put_bytes("k", b"second!", "application/octet-stream")
    info = await store.head("k")
    assert info is not None
    assert (info.size, info.content_type) == (7, "application/octet-stream")
    assert await store.get_bytes("k") == b"second!"


async def test_missing_objects(store: S3ObjectStore, tmp_path: Path) -> None:
    assert await store.head("nope/missing") is None
    with pytest.raises(ObjectNotFound):
        await store.get_bytes("nope/missing")
    with pytest.raises(ObjectNotFound):
        await store.download("nope/missing", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert await store.list("nope/") == []
    assert await store.delete_prefix("nope/") == 0
    await store.delete([])


async def test_delete_prefix_refuses_empty_prefix(store: S3ObjectStore) -> None:
    with pytest.raises(ValueError, match="prefix"):
        await store.delete_prefix("")


async def test_upload_file_download_round_trip(store: S3ObjectStore, tmp_path: Path) -> None:
    source = tmp_path / "segment.m4s"
    payload = os.urandom(3 * 1024**2 + 17)
    source.write_bytes(payload)

    await store.upload_file(source, "media/v1/720p/seg-1.m4s", "video/iso.segment", "max-age=60")

    info = await store.head("media/v1/720p/seg-1.m4s")
    assert info is not None
    assert (info.size, info.content_type) == (len(payload), "video/iso.segment")
    target = tmp_path / "copy.m4s"
    await store.download("media/v1/720p/seg-1.m4s", target)
    assert target.read_bytes() == payload

    url = await store.presign_get("media/v1/720p/seg-1.m4s", expires_in=60)
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        assert response.headers["Cache-Control"] == "max-age=60"


async def test_multipart_upload_file(backend: Backend, tmp_path: Path) -> None:
    adapter = backend.store(multipart_threshold_bytes=5 * 1024**2)
    try:
        await adapter.ensure_bucket()
        source = tmp_path / "big.mp4"
        payload = os.urandom(11 * 1024**2)  # two 8 MiB-chunk parts
        source.write_bytes(payload)
        await adapter.upload_file(source, "uploads/big/source", "video/mp4")
        info = await adapter.head("uploads/big/source")
        assert info is not None
        assert (info.size, info.content_type) == (len(payload), "video/mp4")
        await adapter.download("uploads/big/source", tmp_path / "back.mp4")
        assert (tmp_path / "back.mp4").read_bytes() == payload
    finally:
        adapter.close()


async def test_multipart_upload_through_presigned_part_urls(
    store: S3ObjectStore, backend: Backend
) -> None:
    """What the SPA does for a large file: parts PUT in any order to pre-signed URLs, listed
    (to resume), joined; an abandoned upload aborted by prefix."""
    key = "uploads/big/source.mp4"
    parts = [os.urandom(5 * 1024**2), os.urandom(5 * 1024**2), os.urandom(1234)]
    upload_id = await store.create_multipart(key, "video/mp4")
    async with aiohttp.ClientSession() as session:
        for number in (3, 1):
            url = await store.presign_upload_part(key, upload_id, number, 60)
            async with session.put(url, data=io.BytesIO(parts[number - 1])) as response:
                assert response.status == 200, await response.text()
        listed = await store.list_parts(key, upload_id)
        assert [(p.part_number, p.size) for p in listed] == [(1, 5 * 1024**2), (3, 1234)]
        url = await store.presign_upload_part(key, upload_id, 2, 60)
        if backend.name == "seaweedfs":  # moto does not check the signature of a part URL
            tampered = url.replace("partNumber=2", "partNumber=4")
            async with session.put(tampered, data=b"x") as response:
                assert response.status == 403
        async with session.put(url, data=io.BytesIO(parts[1])) as response:
            assert response.status == 200
    if backend.name == "seaweedfs":  # moto finds an upload by its id whatever the key
        with pytest.raises(UploadNotFound):
            await store.list_parts("uploads/other/source.mp4", upload_id)
    await store.complete_multipart(key, upload_id, await store.list_parts(key, upload_id))
    assert await store.get_bytes(key) == b"".join(parts)
    info = await store.head(key)
    assert info is not None and info.content_type == "video/mp4"
    with pytest.raises(UploadNotFound):
        await store.list_parts(key, upload_id)

    abandoned = await store.create_multipart("uploads/gone/source.mp4", "video/mp4")
    kept = await store.create_multipart("uploads/kept/source.mp4", "video/mp4")
    assert await store.abort_multipart_uploads("uploads/gone/") == 1
    with pytest.raises(UploadNotFound):
        await store.list_parts("uploads/gone/source.mp4", abandoned)
    assert await store.list_parts("uploads/kept/source.mp4", kept) == []


async def test_presign_post_policy_pins_key_type_and_size(store: S3ObjectStore) -> None:
    post = await store.presign_post("uploads/v42/source", "video/mp4", 1024, expires_in=900)

    assert post.url.rstrip("/").endswith(f"/{store.bucket}")
    assert post.fields["key"] == "uploads/v42/source"
    assert post.fields["Content-Type"] == "video/mp4"
    policy = _decode_policy(post)
    conditions = policy["conditions"]
    assert isinstance(conditions, list)
    assert {"key": "uploads/v42/source"} in conditions
    assert {"Content-Type": "video/mp4"} in conditions
    assert {"bucket": store.bucket} in conditions
    assert ["content-length-range", 1, 1024] in conditions
    assert isinstance(policy["expiration"], str)


async def test_presigned_post_accepts_a_browser_upload(store: S3ObjectStore) -> None:
    data = os.urandom(64 * 1024)
    post = await store.presign_post("uploads/v1/source", "video/mp4", 10 * 1024**2, 900)

    response = await _browser_upload(post, data)

    assert response.status in {200, 201, 204}
    info = await store.head("uploads/v1/source")
    assert info is not None
    assert (info.size, info.content_type) == (len(data), "video/mp4")
    assert await store.get_bytes("uploads/v1/source") == data


async def test_presigned_get_serves_the_bytes(store: S3ObjectStore) -> None:
    await store.put_bytes("media/v1/manifest.mpd", b"<MPD/>", "application/dash+xml")

    url = await store.presign_get("media/v1/manifest.mpd", expires_in=300)

    assert "X-Amz-Signature=" in url
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        assert await response.read() == b"<MPD/>"
        assert response.headers["Content-Type"].startswith("application/dash+xml")


async def test_public_endpoint_signs_browser_urls(backend: Backend) -> None:
    adapter = backend.store(public_endpoint_url="http://media.example.test:9000")
    try:
        post = await adapter.presign_post("uploads/x/source", "video/mp4", 10, 60)
        url = await adapter.presign_get("uploads/x/source", 60)
        await adapter.ensure_bucket()  # the private endpoint is still the one used for I/O
    finally:
        adapter.close()
    assert post.url == f"http://media.example.test:9000/{backend.bucket}"
    assert url.startswith(f"http://media.example.test:9000/{backend.bucket}/uploads/x/source?")


async def test_from_settings(backend: Backend) -> None:
    settings = S3Settings(
        endpoint_url=backend.endpoint_url,
        access_key_id=backend.access_key_id,
        secret_access_key=SecretStr(backend.secret_access_key),
        bucket=backend.bucket,
    )
    adapter = S3ObjectStore.from_settings(settings)
    try:
        await adapter.ensure_bucket()
        await adapter.put_bytes("settings/probe", b"ok", "text/plain")
        assert await adapter.get_bytes("settings/probe") == b"ok"
    finally:
        adapter.close()


async def test_list_and_delete_prefix_walk_every_page(backend: Backend) -> None:
    adapter = backend.store(page_size=10)
    try:
        await adapter.ensure_bucket()
        keys = [f"paged/{i:03d}" for i in range(25)]
        await asyncio.gather(*(adapter.put_bytes(key, b"x", "text/plain") for key in keys))
        await adapter.put_bytes("paged-not/zzz", b"x", "text/plain")
        assert [i.key for i in await adapter.list("paged/")] == keys
        assert await adapter.delete_prefix("paged/") == 25
        assert await adapter.list("paged/") == []
        assert [i.key for i in await adapter.list("paged")] == ["paged-not/zzz"]
    finally:
        adapter.close()


@pytest.mark.slow
async def test_list_and_delete_prefix_paginate_past_1000_keys(
    moto_endpoint: str,
) -> None:
    backend = Backend("moto", moto_endpoint, f"tt-{uuid.uuid4().hex[:12]}", "testing", "testing")
    adapter = backend.store()
    try:
        await adapter.ensure_bucket()
        keys = [f"many/{i:05d}" for i in range(1100)]
        limit = asyncio.Semaphore(16)

        async def put(key: str) -> None:
            async with limit:
                await adapter.put_bytes(key, b"x", "text/plain")

        await asyncio.gather(*(put(key) for key in keys))
        listed = await adapter.list("many/")
        assert [i.key for i in listed] == keys
        assert await adapter.delete_prefix("many/") == 1100
        assert await adapter.list("many/") == []
    finally:
        adapter.close()


# -- SeaweedFS only: what the store enforces by itself -----------------------------------------


async def _status(
    method: str, url: str, *, data: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, data=data, headers=headers or {}) as response,
    ):
        return response.status, await response.text()


async def test_seaweedfs_refuses_anonymous_read_write_list_and_delete(
    shared_object_store: SeaweedFSServer, object_store: StoreBucket
) -> None:
    seaweedfs = object_store
    adapter = server_store(seaweedfs)
    try:
        await adapter.put_bytes("uploads/v1/source.mp4", b"private video", "video/mp4")
        await adapter.put_bytes("archive/uploads/0/x.avro", b"history", "application/avro")
    finally:
        adapter.close()
    base = f"{seaweedfs.endpoint_url}/{seaweedfs.bucket}"
    for method, url, data in (
        ("GET", f"{base}/uploads/v1/source.mp4", None),
        ("HEAD", f"{base}/uploads/v1/source.mp4", None),
        ("GET", f"{base}?list-type=2", None),
        ("GET", f"{base}/", None),
        ("PUT", f"{base}/archive/uploads/0/evil.avro", b"forged history"),
        ("PUT", f"{base}/uploads/v1/source.mp4", b"substituted"),
        ("DELETE", f"{base}/uploads/v1/source.mp4", None),
        ("GET", f"{shared_object_store.endpoint_url}/{BROKER_BUCKET}?list-type=2", None),
        ("GET", f"{seaweedfs.endpoint_url}/", None),
    ):
        status, _ = await _status(method, url, data=data)
        assert status == 403, (method, url, status)
    adapter = server_store(seaweedfs)
    try:
        assert await adapter.get_bytes("uploads/v1/source.mp4") == b"private video"
        assert await adapter.head("archive/uploads/0/evil.avro") is None
    finally:
        adapter.close()


async def test_seaweedfs_keys_of_the_event_log_cannot_touch_the_app_bucket(
    shared_object_store: SeaweedFSServer, object_store: StoreBucket
) -> None:
    seaweedfs = object_store
    broker = shared_object_store.broker_credentials
    adapter = S3ObjectStore(
        endpoint_url=seaweedfs.endpoint_url,
        bucket=seaweedfs.bucket,
        access_key_id=broker.access_key_id,
        secret_access_key=broker.secret_access_key,
        max_attempts=1,
    )
    try:
        with pytest.raises(ObjectStoreError):
            await adapter.put_bytes("media/v1/poster.jpg", b"defaced", "image/jpeg")
        with pytest.raises(ObjectStoreError):
            await adapter.list("")
    finally:
        adapter.close()


async def test_seaweedfs_enforces_the_presigned_post_policy(object_store: StoreBucket) -> None:
    """Another key, another type, a size outside the declared one or a forged signature: the
    store refuses the form by itself; the victim's key is never written."""
    adapter = server_store(object_store)
    try:
        victim = "uploads/victim/source.mp4"
        post = await adapter.presign_post(
            "uploads/attacker/source.mp4", "video/mp4", 100, 60, min_size_bytes=100
        )
        body = os.urandom(100)

        async def send(fields: dict[str, str], data: bytes) -> tuple[int, str]:
            response = await _browser_upload(dataclasses.replace(post, fields=fields), data)
            return response.status, await response.text()

        status, text = await send({**post.fields, "key": victim}, body)
        assert status == 403 and "Policy" in text, (status, text)
        status, text = await send({**post.fields, "Content-Type": "text/html"}, body)
        assert status == 403 and "Policy" in text, (status, text)
        status, text = await send(dict(post.fields), body + b"x")
        assert status == 400 and "EntityTooLarge" in text, (status, text)
        status, text = await send(dict(post.fields), body[:-1])
        assert status == 400 and "EntityTooSmall" in text, (status, text)
        forged = {**post.fields, "x-amz-signature": "0" * 64}
        status, text = await send(forged, body)
        assert status == 403, (status, text)
        assert await adapter.head(victim) is None
        assert await adapter.head("uploads/attacker/source.mp4") is None

        status, text = await send(dict(post.fields), body)  # the form as it was issued
        assert status == 204, text
        info = await adapter.head("uploads/attacker/source.mp4")
        assert info is not None and (info.size, info.content_type) == (100, "video/mp4")
    finally:
        adapter.close()


async def test_seaweedfs_honours_conditional_puts(object_store: StoreBucket) -> None:
    """Tansu's s3:// engine relies on these for its optimistic concurrency."""
    seaweedfs = object_store
    adapter = server_store(seaweedfs)
    client = adapter._client  # boto3, to send the raw conditional headers
    try:
        put = client.put_object
        await asyncio.to_thread(put, Bucket=seaweedfs.bucket, Key="c", Body=b"1", IfNoneMatch="*")
        with pytest.raises(ClientError) as exists:
            await asyncio.to_thread(
                put, Bucket=seaweedfs.bucket, Key="c", Body=b"2", IfNoneMatch="*"
            )
        assert exists.value.response["Error"]["Code"] == "PreconditionFailed"
        info = await adapter.head("c")
        assert info is not None
        await asyncio.to_thread(
            put, Bucket=seaweedfs.bucket, Key="c", Body=b"3", IfMatch=f'"{info.etag}"'
        )
        with pytest.raises(ClientError) as stale:
            await asyncio.to_thread(
                put, Bucket=seaweedfs.bucket, Key="c", Body=b"4", IfMatch=f'"{info.etag}"'
            )
        assert stale.value.response["Error"]["Code"] == "PreconditionFailed"
        assert await adapter.get_bytes("c") == b"3"
    finally:
        adapter.close()


async def test_seaweedfs_cors_allows_the_spa_origin_only(seaweedfs: SeaweedFSServer) -> None:
    upload_url = f"{seaweedfs.endpoint_url}/{seaweedfs.bucket}"
    segment_url = f"{upload_url}/media/v1/720p/seg-1.m4s"
    # The store closes the connection after a refused preflight: no keep-alive reuse.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
        for url, method in ((upload_url, "POST"), (segment_url, "PUT"), (segment_url, "GET")):
            headers = {
                "Origin": SPA_ORIGIN,
                "Access-Control-Request-Method": method,
                "Access-Control-Request-Headers": "range,content-type",
            }
            async with session.options(url, headers=headers) as response:
                assert response.status == 200, await response.text()
                assert response.headers["Access-Control-Allow-Origin"] == SPA_ORIGIN
                allowed = response.headers["Access-Control-Allow-Methods"]
                assert allowed == "*" or method in allowed, allowed
        for origin in ("http://evil.example", "null", "http://127.0.0.1:8080.evil.example"):
            headers = {"Origin": origin, "Access-Control-Request-Method": "PUT"}
            async with session.options(segment_url, headers=headers) as response:
                assert response.status == 403, origin
                assert "Access-Control-Allow-Origin" not in response.headers
            # On the bucket URL (where forms are posted) SeaweedFS 4.48 drops the connection
            # instead (a panic on "WriteHeader code 0" in its log): refused all the same.
            headers["Access-Control-Request-Method"] = "POST"
            try:
                async with session.options(upload_url, headers=headers) as response:
                    assert response.status == 403, origin
                    assert "Access-Control-Allow-Origin" not in response.headers
            except aiohttp.ServerDisconnectedError:
                pass


async def test_seaweedfs_cors_headers_on_upload_and_presigned_get(
    seaweedfs: SeaweedFSServer,
) -> None:
    adapter = server_store(seaweedfs)
    try:
        post = await adapter.presign_post("uploads/cors/source", "video/mp4", 1024, 60)
        response = await _browser_upload(post, b"tiny video", origin=SPA_ORIGIN)
        assert response.status == 204
        assert response.headers["Access-Control-Allow-Origin"] == SPA_ORIGIN

        url = await adapter.presign_get("uploads/cors/source", 60)
        async with (
            aiohttp.ClientSession() as session,
            session.get(url, headers={"Origin": SPA_ORIGIN, "Range": "bytes=0-3"}) as got,
        ):
            assert got.status == 206
            assert await got.read() == b"tiny"
            assert got.headers["Access-Control-Allow-Origin"] == SPA_ORIGIN
            exposed = {h.strip() for h in got.headers["Access-Control-Expose-Headers"].split(",")}
            assert "ETag" in exposed
    finally:
        adapter.close()


async def test_seaweedfs_serves_nothing_but_signed_s3_on_its_other_ports(
    shared_object_store: SeaweedFSServer, object_store: StoreBucket
) -> None:
    """The master's and the filer's HTTP APIs are off (the filer's would read and write any
    file, the master's /col/delete drop a bucket); volume reads need a JWT; gRPC needs the
    CA's client certificate."""
    seaweedfs = shared_object_store
    adapter = server_store(object_store)
    try:
        await adapter.put_bytes("uploads/v1/source.mp4", b"private video", "video/mp4")
    finally:
        adapter.close()
    ports = json.loads((seaweedfs.directory / "conf" / "ports.json").read_text())
    host = seaweedfs.host
    filer, master, volume = ports["filer"], ports["master"], ports["volume"]
    bucket_path = f"/buckets/{object_store.bucket}/uploads/v1/source.mp4"
    assert (await _status("GET", f"http://{host}:{filer}{bucket_path}"))[0] == 404
    assert (await _status("PUT", f"http://{host}:{filer}{bucket_path}", data=b"x"))[0] == 404
    assert (await _status("GET", f"http://{host}:{master}/dir/assign"))[0] == 404
    assert (await _status("GET", f"http://{host}:{master}/col/delete?collection=x"))[0] == 404
    assert (await _status("GET", f"http://{host}:{volume}/1,01637037d6"))[0] == 401
    for name in ("master.grpc", "filer.grpc", "volume.grpc", "s3.grpc"):
        # A plaintext HTTP/2 client gets no gRPC answer: the port wants a TLS client hello.
        reader, writer = await asyncio.open_connection(host, ports[name])
        writer.write(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(64), 5)
        writer.close()
        assert not answer.startswith(b"\x00\x00"), (name, answer)  # no HTTP/2 SETTINGS frame
    adapter = server_store(object_store)
    try:
        assert await adapter.get_bytes("uploads/v1/source.mp4") == b"private video"
    finally:
        adapter.close()


async def test_seaweedfs_keys_are_random_private_and_kept_across_restarts(
    seaweedfs: SeaweedFSServer, tmp_path: Path
) -> None:
    path = seaweedfs.directory / CREDENTIALS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(seaweedfs.directory.stat().st_mode) == 0o700
    other = SeaweedFSServer(tmp_path / "other", free_port(), "b", [SPA_ORIGIN])
    assert other.credentials["app"] != seaweedfs.credentials["app"]
    assert other.broker_credentials != seaweedfs.broker_credentials
    adapter = server_store(seaweedfs, max_attempts=1)
    try:
        await adapter.put_bytes("archive/events-0001.avro", b"durable", "application/avro")
        seaweedfs.stop()
        with pytest.raises(ObjectStoreUnavailable):
            await adapter.head("archive/events-0001.avro")
        again = SeaweedFSServer(seaweedfs.directory, seaweedfs.port, STORE_BUCKET, [SPA_ORIGIN])
        assert again.credentials == seaweedfs.credentials
        with again:
            assert await adapter.get_bytes("archive/events-0001.avro") == b"durable"
            info = await adapter.head("archive/events-0001.avro")
            assert info is not None
            assert info.content_type == "application/avro"
    finally:
        adapter.close()


async def test_seaweedfs_data_survives_kill_9(seaweedfs: SeaweedFSServer) -> None:
    adapter = server_store(seaweedfs, max_attempts=1)
    try:
        await adapter.put_bytes("archive/acknowledged.avro", b"acked", "application/avro")
        seaweedfs.kill()
        seaweedfs.start()
        assert await adapter.get_bytes("archive/acknowledged.avro") == b"acked"
    finally:
        adapter.close()


def test_explicit_app_keys_replace_the_generated_ones(tmp_path: Path) -> None:
    keys = Credentials.generate()
    server = SeaweedFSServer(tmp_path / "o", free_port(), "b", [SPA_ORIGIN], app_credentials=keys)
    assert (server.access_key_id, server.secret_access_key) == (
        keys.access_key_id,
        keys.secret_access_key,
    )
    stored = json.loads((tmp_path / "o" / CREDENTIALS_FILE).read_text())
    assert stored["app"]["accessKeyId"] != keys.access_key_id  # the file keeps its own


# -- an unreachable store fails fast ----------------------------------------------------------


async def test_refused_connection_is_unavailable_within_seconds(tmp_path: Path) -> None:
    source = tmp_path / "f"
    source.write_bytes(b"x")
    adapter = S3ObjectStore(
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        bucket="nobody-home",
        access_key_id="x",
        secret_access_key="x",
    )
    try:
        calls: list[Callable[[], Awaitable[object]]] = [
            adapter.ping,
            adapter.ensure_bucket,
            lambda: adapter.head("k"),
            lambda: adapter.get_bytes("k"),
            lambda: adapter.put_bytes("k", b"x", "text/plain"),
            lambda: adapter.upload_file(source, "k", "text/plain"),
            lambda: adapter.download("k", tmp_path / "out"),
            lambda: adapter.list("p/"),
            lambda: adapter.delete(["k"]),
        ]
        for call in calls:
            started = time.monotonic()
            with pytest.raises(ObjectStoreUnavailable):
                await call()
            assert time.monotonic() - started < 5
    finally:
        adapter.close()


async def test_silent_server_times_out_as_unavailable() -> None:
    # Accepts TCP connections (kernel backlog) but never answers: a hung store.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        port = sock.getsockname()[1]
        adapter = S3ObjectStore(
            endpoint_url=f"http://127.0.0.1:{port}",
            bucket="hung",
            access_key_id="x",
            secret_access_key="x",
            read_timeout=0.5,
            max_attempts=2,
        )
        try:
            started = time.monotonic()
            with pytest.raises(ObjectStoreUnavailable):
                await adapter.head("k")
            assert time.monotonic() - started < 5
        finally:
            adapter.close()
