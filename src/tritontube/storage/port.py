"""The object-store port: what the rest of TritonTube may ask of S3 and nothing more.

Adapters: :class:`tritontube.storage.s3.S3ObjectStore` (boto3; AWS S3, MinIO, SeaweedFS, moto) and
:class:`tritontube.storage.memory.InMemoryObjectStore` (a fake for unit tests of pure logic).

Keys are plain S3 object keys (``uploads/<video_id>/source``); the bucket is fixed per store.
ETags are returned without the surrounding double quotes S3 puts on the wire.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol, runtime_checkable


class ObjectStoreError(Exception):
    """The object store refused or failed a request (bad request, access denied, ...)."""


class ObjectStoreUnavailable(ObjectStoreError):
    """The object store could not be reached (connection refused, timeout, 5xx): transient."""


class ObjectNotFound(ObjectStoreError):
    """The key (or the bucket) does not exist. ``head`` returns None instead of raising this."""

    def __init__(self, key: str) -> None:
        super().__init__(f"object not found: {key!r}")
        self.key = key


class UploadNotFound(ObjectStoreError):
    """No multipart upload with that id for that key (never created, completed or aborted)."""

    def __init__(self, key: str, upload_id: str) -> None:
        super().__init__(f"no multipart upload {upload_id!r} for {key!r}")
        self.key = key
        self.upload_id = upload_id


@dataclass(frozen=True, slots=True)
class PartInfo:
    """One stored part of a multipart upload (``etag`` without quotes)."""

    part_number: int
    size: int
    etag: str


@dataclass(frozen=True, slots=True)
class PresignedPost:
    """A browser-ready HTML form upload: POST ``fields`` plus a ``file`` part (last) to ``url``.

    The signed policy pins the exact key, the Content-Type and a content-length-range.
    """

    url: str
    fields: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """Metadata of one stored object.

    ``content_type`` is None in listings: S3's ListObjects does not return it; ``head`` does.
    ``last_modified`` is always timezone-aware (UTC).
    """

    key: str
    size: int
    content_type: str | None
    etag: str
    last_modified: datetime


@runtime_checkable
class ObjectStore(Protocol):
    """Narrow async access to one bucket."""

    async def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist; a no-op when it does (idempotent)."""
        ...

    async def ping(self) -> None:
        """Raise :class:`ObjectStoreUnavailable` / :class:`ObjectStoreError` unless usable."""
        ...

    async def presign_post(
        self,
        key: str,
        content_type: str,
        max_size_bytes: int,
        expires_in: int,
        *,
        min_size_bytes: int = 1,
    ) -> PresignedPost:
        """A form upload of exactly ``key`` with ``content_type`` and min..max_size_bytes
        bytes (a store that enforces policies refuses any other key, type or size)."""
        ...

    async def presign_get(self, key: str, expires_in: int, *, internal: bool = False) -> str:
        """A URL that can GET ``key`` for ``expires_in`` seconds: signed for the public
        endpoint (browsers), or with ``internal`` for the endpoint this process reaches (our
        own tools, such as ffmpeg streaming a source)."""
        ...

    async def head(self, key: str) -> ObjectInfo | None:
        """Metadata of ``key``, or None when it does not exist."""
        ...

    async def download(self, key: str, path: Path) -> None:
        """Stream ``key`` into the file ``path`` (created or truncated)."""
        ...

    async def upload_file(
        self, path: Path, key: str, content_type: str, cache_control: str | None = None
    ) -> None:
        """Store the file ``path`` as ``key`` (multipart for large files)."""
        ...

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        """Store ``data`` as ``key``."""
        ...

    async def get_bytes(self, key: str) -> bytes:
        """The whole content of ``key``; :class:`ObjectNotFound` when missing."""
        ...

    async def get_range(self, key: str, start: int, length: int) -> bytes:
        """Up to ``length`` bytes of ``key`` from ``start`` (fewer at the end of the object)."""
        ...

    async def list(self, prefix: str) -> builtins.list[ObjectInfo]:
        """Every object whose key starts with ``prefix``, in key order (all pages)."""
        ...

    async def delete(self, keys: Iterable[str]) -> None:
        """Delete ``keys``; missing keys are not an error."""
        ...

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every object under a non-empty ``prefix``; returns how many were deleted."""
        ...

    # -- multipart uploads (resumable browser uploads of large files) ----------------------

    async def create_multipart(self, key: str, content_type: str) -> str:
        """Start a multipart upload of ``key`` with ``content_type``; its upload id."""
        ...

    async def presign_upload_part(
        self, key: str, upload_id: str, part_number: int, expires_in: int
    ) -> str:
        """A URL that can PUT part ``part_number`` (1..10000) of the upload, for browsers."""
        ...

    async def list_parts(self, key: str, upload_id: str) -> builtins.list[PartInfo]:
        """The parts stored so far, by part number; :class:`UploadNotFound` when the upload
        does not exist for ``key``."""
        ...

    async def complete_multipart(self, key: str, upload_id: str, parts: Sequence[PartInfo]) -> None:
        """Join ``parts`` (ascending part numbers) into the object ``key``."""
        ...

    async def abort_multipart_uploads(self, prefix: str) -> int:
        """Abort every unfinished multipart upload of a key under a non-empty ``prefix``
        (their parts are deleted); returns how many were aborted."""
        ...
