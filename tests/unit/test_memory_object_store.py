"""The in-memory fake behaves like the S3 adapter where pure logic can observe it."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tritontube.storage.memory import InMemoryObjectStore
from tritontube.storage.port import (
    ObjectNotFound,
    ObjectStore,
    ObjectStoreError,
    ObjectStoreUnavailable,
    UploadNotFound,
)

T0 = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.fixture
def store() -> InMemoryObjectStore:
    return InMemoryObjectStore("bucket", clock=lambda: T0)


def test_satisfies_the_port(store: InMemoryObjectStore) -> None:
    assert isinstance(store, ObjectStore)
    assert issubclass(ObjectStoreUnavailable, ObjectStoreError)
    assert issubclass(ObjectNotFound, ObjectStoreError)


async def test_put_head_get(store: InMemoryObjectStore) -> None:
    await store.put_bytes("a/b", b"hello", "text/plain")

    info = await store.head("a/b")
    assert info is not None
    assert (info.key, info.size, info.content_type) == ("a/b", 5, "text/plain")
    assert info.etag == hashlib.md5(b"hello", usedforsecurity=False).hexdigest()
    assert info.last_modified == T0
    assert await store.get_bytes("a/b") == b"hello"


async def test_missing_keys(store: InMemoryObjectStore, tmp_path: Path) -> None:
    assert await store.head("nope") is None
    with pytest.raises(ObjectNotFound):
        await store.get_bytes("nope")
    with pytest.raises(ObjectNotFound):
        await store.download("nope", tmp_path / "out")


async def test_list_is_sorted_prefix_filtered_and_untyped(store: InMemoryObjectStore) -> None:
    for key in ("v/2", "v/1", "vx/1", "w/1"):
        await store.put_bytes(key, b"x", "text/plain")

    listed = await store.list("v/")

    assert [i.key for i in listed] == ["v/1", "v/2"]
    assert all(i.content_type is None for i in listed)  # as S3 listings


async def test_delete_and_delete_prefix(store: InMemoryObjectStore) -> None:
    for key in ("p/1", "p/2", "p/3", "q/1"):
        await store.put_bytes(key, b"x", "text/plain")

    await store.delete(["p/1", "never"])
    assert await store.delete_prefix("p/") == 2
    assert list(store.objects) == ["q/1"]
    with pytest.raises(ValueError, match="prefix"):
        await store.delete_prefix("")


async def test_file_round_trip_keeps_cache_control(
    store: InMemoryObjectStore, tmp_path: Path
) -> None:
    source = tmp_path / "in.m4s"
    source.write_bytes(b"\x00segment")

    await store.upload_file(source, "m/seg", "video/iso.segment", cache_control="max-age=60")
    await store.download("m/seg", tmp_path / "out.m4s")

    assert (tmp_path / "out.m4s").read_bytes() == b"\x00segment"
    assert store.objects["m/seg"].cache_control == "max-age=60"


async def test_presign_post_policy_matches_the_s3_adapter(store: InMemoryObjectStore) -> None:
    post = await store.presign_post("uploads/v/source", "video/mp4", 100, expires_in=60)

    assert post.fields["key"] == "uploads/v/source"
    assert post.fields["Content-Type"] == "video/mp4"
    policy = json.loads(base64.b64decode(post.fields["policy"]))
    assert policy["expiration"] == "2025-01-02T03:05:05Z"
    assert {"key": "uploads/v/source"} in policy["conditions"]
    assert {"Content-Type": "video/mp4"} in policy["conditions"]
    assert ["content-length-range", 1, 100] in policy["conditions"]
    with pytest.raises(ValueError, match="max_size_bytes"):
        await store.presign_post("k", "video/mp4", 0, 60)


async def test_presign_get_quotes_the_key(store: InMemoryObjectStore) -> None:
    url = await store.presign_get("a b/c", expires_in=30)
    assert url == "memory://object-store/bucket/a%20b/c?X-Amz-Expires=30"


async def test_bucket_lifecycle() -> None:
    store = InMemoryObjectStore(bucket_exists=False)
    with pytest.raises(ObjectNotFound):
        await store.ping()
    await store.ensure_bucket()
    await store.ensure_bucket()
    await store.ping()


async def test_unavailable_store_raises_everywhere(
    store: InMemoryObjectStore, tmp_path: Path
) -> None:
    store.available = False
    with pytest.raises(ObjectStoreUnavailable):
        await store.ping()
    with pytest.raises(ObjectStoreUnavailable):
        await store.put_bytes("k", b"x", "text/plain")
    with pytest.raises(ObjectStoreUnavailable):
        await store.head("k")
    with pytest.raises(ObjectStoreUnavailable):
        await store.list("")
    with pytest.raises(ObjectStoreUnavailable):
        await store.download("k", tmp_path / "out")


async def test_multipart_upload_joins_parts_lists_them_and_aborts_by_prefix() -> None:
    store = InMemoryObjectStore()
    upload_id = await store.create_multipart("uploads/v1/source.mp4", "video/mp4")
    url = await store.presign_upload_part("uploads/v1/source.mp4", upload_id, 2, 60)
    assert "partNumber=2" in url and upload_id in url
    second = store.put_part("uploads/v1/source.mp4", upload_id, 2, b"world")
    first = store.put_part("uploads/v1/source.mp4", upload_id, 1, b"hello ")
    assert await store.list_parts("uploads/v1/source.mp4", upload_id) == [first, second]
    with pytest.raises(UploadNotFound):
        await store.list_parts("uploads/other/source.mp4", upload_id)
    await store.complete_multipart("uploads/v1/source.mp4", upload_id, [first, second])
    assert await store.get_bytes("uploads/v1/source.mp4") == b"hello world"
    info = await store.head("uploads/v1/source.mp4")
    assert info is not None and info.content_type == "video/mp4"
    with pytest.raises(UploadNotFound):
        await store.list_parts("uploads/v1/source.mp4", upload_id)

    left = await store.create_multipart("uploads/v2/source.mp4", "video/mp4")
    store.put_part("uploads/v2/source.mp4", left, 1, b"partial")
    other = await store.create_multipart("uploads/v3/source.mp4", "video/mp4")
    assert await store.abort_multipart_uploads("uploads/v2/") == 1
    with pytest.raises(UploadNotFound):
        await store.list_parts("uploads/v2/source.mp4", left)
    assert await store.list_parts("uploads/v3/source.mp4", other) == []
    with pytest.raises(ValueError, match="prefix"):
        await store.abort_multipart_uploads("")
