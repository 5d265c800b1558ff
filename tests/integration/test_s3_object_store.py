"""Contract tests of ``S3ObjectStore`` against a real s3rver and a real moto server.

Both servers start on free ports in fixtures and always stop. Neither enforces POST policy
conditions (the app verifies uploads with ``head()``), so the policy is checked as a document.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from moto.server import ThreadedMotoServer
from pydantic import SecretStr

from helpers import s3rver_store
from tritontube.devstack.process import free_port
from tritontube.devstack.s3rver import (
    S3rverNotInstalledError,
    S3rverServer,
    cors_configuration_xml,
    find_s3rver_script,
)
from tritontube.settings import S3Settings
from tritontube.storage.port import (
    ObjectNotFound,
    ObjectStore,
    ObjectStoreUnavailable,
    PresignedPost,
)
from tritontube.storage.s3 import S3ObjectStore

pytestmark = pytest.mark.integration

SPA_ORIGIN = "http://127.0.0.1:8080"
S3RVER_BUCKET = "tritontube-test"


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
def s3rver(tmp_path: Path) -> Iterator[S3rverServer]:
    server = S3rverServer(
        directory=tmp_path / "s3rver",
        port=free_port(),
        bucket=S3RVER_BUCKET,
        cors_origins=[SPA_ORIGIN],
        silent=True,
    )
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(params=["s3rver", "moto"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "s3rver":
        server: S3rverServer = request.getfixturevalue("s3rver")
        return Backend(
            "s3rver",
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


# -- s3rver only: CORS and persistence --------------------------------------------------------


async def test_s3rver_cors_preflight_allows_the_spa_origin(s3rver: S3rverServer) -> None:
    upload_url = f"{s3rver.endpoint_url}/{s3rver.bucket}"
    segment_url = f"{upload_url}/media/v1/720p/seg-1.m4s"
    async with aiohttp.ClientSession() as session:
        for url, method in ((upload_url, "POST"), (segment_url, "GET"), (segment_url, "HEAD")):
            headers = {
                "Origin": SPA_ORIGIN,
                "Access-Control-Request-Method": method,
                "Access-Control-Request-Headers": "range,content-type",
            }
            async with session.options(url, headers=headers) as response:
                assert response.status == 200, await response.text()
                # s3rver answers preflights with "*"; a browser accepts either.
                assert response.headers["Access-Control-Allow-Origin"] in {SPA_ORIGIN, "*"}
                assert method in response.headers["Access-Control-Allow-Methods"]

        headers = {"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"}
        async with session.options(upload_url, headers=headers) as response:
            assert response.status == 403


async def test_s3rver_cors_headers_on_upload_and_segment_get(s3rver: S3rverServer) -> None:
    adapter = s3rver_store(s3rver)
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
            assert {"ETag", "Content-Range"} <= exposed
    finally:
        adapter.close()


async def test_s3rver_data_survives_a_restart(s3rver: S3rverServer) -> None:
    adapter = s3rver_store(s3rver, max_attempts=1)
    try:
        await adapter.put_bytes("archive/events-0001.avro", b"durable", "application/avro")
        s3rver.stop()
        with pytest.raises(ObjectStoreUnavailable):
            await adapter.head("archive/events-0001.avro")
        s3rver.start()
        await adapter.ensure_bucket()
        assert await adapter.get_bytes("archive/events-0001.avro") == b"durable"
        info = await adapter.head("archive/events-0001.avro")
        assert info is not None
        assert info.content_type == "application/avro"
    finally:
        adapter.close()


def test_cors_document_lists_origins_and_methods() -> None:
    xml = cors_configuration_xml(["http://a.test", "https://b.test"])
    assert xml.count("<AllowedOrigin>") == 2
    for method in ("GET", "HEAD", "POST", "PUT"):
        assert f"<AllowedMethod>{method}</AllowedMethod>" in xml
    with pytest.raises(ValueError, match="origin"):
        cors_configuration_xml([])


def test_missing_node_modules_is_explained(tmp_path: Path) -> None:
    with pytest.raises(S3rverNotInstalledError, match="npm ci"):
        find_s3rver_script(tmp_path / "node_modules")
    server = S3rverServer(tmp_path / "d", free_port(), "b", ["*"], node_modules=tmp_path)
    with pytest.raises(S3rverNotInstalledError, match="npm ci"):
        server.start()
    assert not server.running()
    assert find_s3rver_script().name == "s3rver.js"


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
