"""``InMemoryObjectStore``: a dict-backed fake of the object-store port for fast unit tests.

It behaves like the S3 adapter where pure logic can observe it (missing keys, listings in key
order, ETags as unquoted MD5 hex, aware timestamps, the policy document of a pre-signed POST),
but nothing listens on the URLs it hands out. Set ``available = False`` to simulate an outage:
every call then raises :class:`ObjectStoreUnavailable`.
"""

from __future__ import annotations

import asyncio
import base64
import builtins
import hashlib
import json
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

from tritontube.storage.port import (
    ObjectInfo,
    ObjectNotFound,
    ObjectStoreError,
    ObjectStoreUnavailable,
    PartInfo,
    PresignedPost,
    UploadNotFound,
)

__all__ = ["InMemoryObjectStore", "StoredObject"]


@dataclass(frozen=True, slots=True)
class StoredObject:
    """One object held by the fake, with the metadata the S3 adapter would store."""

    data: bytes
    content_type: str
    cache_control: str | None
    etag: str
    last_modified: datetime


@dataclass
class _Upload:
    """An unfinished multipart upload: part number -> (bytes, etag)."""

    key: str
    content_type: str
    parts: dict[int, tuple[bytes, str]]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class InMemoryObjectStore:
    """The object-store port over a dict. Not thread-safe; one event loop only."""

    def __init__(
        self,
        bucket: str = "tritontube",
        *,
        base_url: str = "memory://object-store",
        bucket_exists: bool = True,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.bucket = bucket
        self.base_url = base_url.rstrip("/")
        self.bucket_exists = bucket_exists
        self.available = True
        self.objects: dict[str, StoredObject] = {}
        self.uploads: dict[str, _Upload] = {}
        self._clock = clock

    # -- the port ---------------------------------------------------------------------------

    async def ensure_bucket(self) -> None:
        self._check_available()
        self.bucket_exists = True

    async def ping(self) -> None:
        self._check_available()
        if not self.bucket_exists:
            raise ObjectNotFound(self.bucket)

    async def presign_post(
        self,
        key: str,
        content_type: str,
        max_size_bytes: int,
        expires_in: int,
        *,
        min_size_bytes: int = 1,
    ) -> PresignedPost:
        self._check_available()
        if not 1 <= min_size_bytes <= max_size_bytes:
            raise ValueError("need 1 <= min_size_bytes <= max_size_bytes")
        if expires_in < 1:
            raise ValueError("expires_in must be at least 1 second")
        expiration = self._clock() + timedelta(seconds=expires_in)
        policy = {
            "expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "conditions": [
                {"bucket": self.bucket},
                {"key": key},
                {"Content-Type": content_type},
                ["content-length-range", min_size_bytes, max_size_bytes],
            ],
        }
        encoded = base64.b64encode(json.dumps(policy).encode()).decode()
        return PresignedPost(
            url=f"{self.base_url}/{self.bucket}",
            fields={
                "key": key,
                "Content-Type": content_type,
                "policy": encoded,
                "x-amz-signature": "in-memory",
            },
        )

    async def presign_get(self, key: str, expires_in: int, *, internal: bool = False) -> str:
        self._check_available()
        if expires_in < 1:
            raise ValueError("expires_in must be at least 1 second")
        return f"{self.base_url}/{self.bucket}/{quote(key)}?X-Amz-Expires={expires_in}"

    async def head(self, key: str) -> ObjectInfo | None:
        self._check_available()
        stored = self.objects.get(key)
        return None if stored is None else self._info(key, stored, with_type=True)

    async def download(self, key: str, path: Path) -> None:
        data = await self.get_bytes(key)
        await asyncio.to_thread(path.write_bytes, data)

    async def upload_file(
        self, path: Path, key: str, content_type: str, cache_control: str | None = None
    ) -> None:
        self._check_available()
        data = await asyncio.to_thread(path.read_bytes)
        self._store(key, data, content_type, cache_control)

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        self._check_available()
        self._store(key, bytes(data), content_type, None)

    async def get_bytes(self, key: str) -> bytes:
        self._check_available()
        stored = self.objects.get(key)
        if stored is None:
            raise ObjectNotFound(key)
        return stored.data

    async def get_range(self, key: str, start: int, length: int) -> bytes:
        data = await self.get_bytes(key)
        return data[start : start + max(0, length)]

    async def list(self, prefix: str) -> builtins.list[ObjectInfo]:
        self._check_available()
        return [
            self._info(key, self.objects[key], with_type=False)
            for key in sorted(self.objects)
            if key.startswith(prefix)
        ]

    async def delete(self, keys: Iterable[str]) -> None:
        self._check_available()
        for key in keys:
            self.objects.pop(key, None)

    async def delete_prefix(self, prefix: str) -> int:
        if not prefix:
            raise ValueError("refusing to delete the whole bucket: prefix must not be empty")
        self._check_available()
        doomed = [key for key in self.objects if key.startswith(prefix)]
        for key in doomed:
            del self.objects[key]
        return len(doomed)

    async def create_multipart(self, key: str, content_type: str) -> str:
        self._check_available()
        upload_id = uuid.uuid4().hex
        self.uploads[upload_id] = _Upload(key, content_type, {})
        return upload_id

    async def presign_upload_part(
        self, key: str, upload_id: str, part_number: int, expires_in: int
    ) -> str:
        self._check_available()
        if not 1 <= part_number <= 10_000:
            raise ValueError("part_number must be within 1..10000")
        return (
            f"{self.base_url}/{self.bucket}/{quote(key)}?uploadId={upload_id}"
            f"&partNumber={part_number}&X-Amz-Expires={expires_in}"
        )

    def put_part(self, key: str, upload_id: str, part_number: int, data: bytes) -> PartInfo:
        """What a browser's PUT to a part URL does (the fake has no server)."""
        upload = self._upload(key, upload_id)
        etag = hashlib.md5(data, usedforsecurity=False).hexdigest()
        upload.parts[part_number] = (data, etag)
        return PartInfo(part_number, len(data), etag)

    async def list_parts(self, key: str, upload_id: str) -> builtins.list[PartInfo]:
        self._check_available()
        upload = self._upload(key, upload_id)
        return [PartInfo(n, len(data), etag) for n, (data, etag) in sorted(upload.parts.items())]

    async def complete_multipart(self, key: str, upload_id: str, parts: Sequence[PartInfo]) -> None:
        self._check_available()
        upload = self._upload(key, upload_id)
        numbers = [p.part_number for p in parts]
        if numbers != sorted(set(numbers)) or any(
            upload.parts.get(p.part_number, (b"", ""))[1] != p.etag for p in parts
        ):
            raise ObjectStoreError(f"invalid part list for {key!r}")
        data = b"".join(upload.parts[n][0] for n in numbers)
        del self.uploads[upload_id]
        self._store(key, data, upload.content_type, None)

    async def abort_multipart_uploads(self, prefix: str) -> int:
        if not prefix:
            raise ValueError("refusing to abort every upload: prefix must not be empty")
        self._check_available()
        doomed = [i for i, u in self.uploads.items() if u.key.startswith(prefix)]
        for upload_id in doomed:
            del self.uploads[upload_id]
        return len(doomed)

    # -- helpers ----------------------------------------------------------------------------

    def _upload(self, key: str, upload_id: str) -> _Upload:
        upload = self.uploads.get(upload_id)
        if upload is None or upload.key != key:
            raise UploadNotFound(key, upload_id)
        return upload

    def _check_available(self) -> None:
        if not self.available:
            raise ObjectStoreUnavailable("in-memory object store marked unavailable")

    def _store(self, key: str, data: bytes, content_type: str, cache_control: str | None) -> None:
        if not key:
            raise ValueError("key must not be empty")
        self.objects[key] = StoredObject(
            data=data,
            content_type=content_type,
            cache_control=cache_control,
            etag=hashlib.md5(data, usedforsecurity=False).hexdigest(),
            last_modified=self._clock(),
        )

    @staticmethod
    def _info(key: str, stored: StoredObject, *, with_type: bool) -> ObjectInfo:
        return ObjectInfo(
            key=key,
            size=len(stored.data),
            content_type=stored.content_type if with_type else None,
            etag=stored.etag,
            last_modified=stored.last_modified,
        )
