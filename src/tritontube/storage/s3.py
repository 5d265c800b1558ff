"""``S3ObjectStore``: the object-store port over boto3 (AWS S3, MinIO, SeaweedFS, moto).

boto3 is synchronous, so every call runs in a worker thread (``asyncio.to_thread``) and the event
loop never blocks. Transport failures (connection refused, timeouts, 5xx) become
:class:`ObjectStoreUnavailable`; the client's timeouts and retry budget are small so an
unreachable store fails within seconds instead of hanging a request.

Two boto3 clients: one for the endpoint this process reaches (``endpoint_url``), one for the
endpoint browsers reach (``public_endpoint_url``). Pre-signed URLs are signed for the host they
are used against: those for browsers by the public client, those for our own tools (ffmpeg
streaming a source, ``internal=True``) by the other.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

import boto3
from boto3.exceptions import RetriesExceededError, S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from tritontube.storage.port import (
    ObjectInfo,
    ObjectNotFound,
    ObjectStoreError,
    ObjectStoreUnavailable,
    PartInfo,
    PresignedPost,
    UploadNotFound,
)

if TYPE_CHECKING:
    from tritontube.settings import S3Settings

__all__ = ["S3ObjectStore"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

_MAX_BATCH: Final = 1000  # ListObjectsV2 pages and DeleteObjects batches hold at most 1000 keys
MAX_PARTS: Final = 10_000  # S3's limit of parts per multipart upload
_NOT_FOUND_CODES: Final = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchBucket"})
_TRANSIENT_CODES: Final = frozenset(
    {"500", "502", "503", "504", "InternalError", "ServiceUnavailable", "SlowDown"}
    | {"RequestTimeout", "RequestTimeTooSkewed"}
)
_ALREADY_EXISTS_CODES: Final = frozenset({"BucketAlreadyOwnedByYou", "BucketAlreadyExists"})


class S3ObjectStore:
    """One bucket of an S3-compatible store, behind the async :class:`ObjectStore` port."""

    def __init__(
        self,
        *,
        endpoint_url: str | None,
        bucket: str,
        region: str = "us-east-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        public_endpoint_url: str | None = None,
        force_path_style: bool = True,
        connect_timeout: float = 2.0,
        read_timeout: float = 30.0,
        max_attempts: int = 3,
        multipart_threshold_bytes: int = 64 * 1024**2,
        max_pool_connections: int = 20,
        page_size: int = _MAX_BATCH,
    ) -> None:
        """Build both clients (no network I/O happens here).

        ``endpoint_url=None`` means AWS's own endpoint for ``region``; ``public_endpoint_url``
        defaults to ``endpoint_url``. Credentials left None use boto3's default chain.
        ``max_attempts`` counts the first try (botocore "standard" retry mode). ``page_size``
        bounds both listing pages and delete batches (tests lower it to exercise paging).
        """
        if not 1 <= page_size <= _MAX_BATCH:
            raise ValueError(f"page_size must be within 1..{_MAX_BATCH}")
        self._page_size = page_size
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.public_endpoint_url = public_endpoint_url or endpoint_url
        config = Config(
            signature_version="s3v4",
            region_name=region,
            s3={"addressing_style": "path" if force_path_style else "auto"},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"mode": "standard", "max_attempts": max_attempts},
            max_pool_connections=max_pool_connections,
            # boto3 >= 1.36 adds CRC checksums (headers, or aws-chunked trailers on streamed
            # bodies) to every upload by default; not every S3-compatible store speaks that
            # protocol. Checksums only where the API demands them (e.g. DeleteObjects).
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        # A private Session: boto3's default session is not safe to share across threads.
        session = boto3.session.Session(
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            region_name=region,
        )
        self._client: Any = session.client("s3", endpoint_url=endpoint_url, config=config)
        self._public: Any = session.client(
            "s3", endpoint_url=self.public_endpoint_url, config=config
        )
        self._transfer = TransferConfig(
            multipart_threshold=multipart_threshold_bytes,
            multipart_chunksize=max(8 * 1024**2, multipart_threshold_bytes // 8),
            max_concurrency=4,
        )

    @classmethod
    def from_settings(cls, settings: S3Settings) -> S3ObjectStore:
        return cls(
            endpoint_url=settings.endpoint_url,
            public_endpoint_url=settings.public_endpoint_url,
            region=settings.region,
            access_key_id=settings.access_key_id,
            secret_access_key=(
                settings.secret_access_key.get_secret_value()
                if settings.secret_access_key is not None
                else None
            ),
            bucket=settings.bucket,
            force_path_style=settings.force_path_style,
        )

    def close(self) -> None:
        """Release both clients' connection pools."""
        self._client.close()
        self._public.close()

    def __repr__(self) -> str:
        return f"S3ObjectStore(endpoint_url={self.endpoint_url!r}, bucket={self.bucket!r})"

    # -- the port ---------------------------------------------------------------------------

    async def ensure_bucket(self) -> None:
        try:
            await self._run(
                "head_bucket", self.bucket, self._client.head_bucket, Bucket=self.bucket
            )
            return
        except ObjectNotFound:
            pass
        await self._run("create_bucket", self.bucket, self._create_bucket_sync)
        log.info("created bucket %s", self.bucket)

    async def ping(self) -> None:
        await self._run("head_bucket", self.bucket, self._client.head_bucket, Bucket=self.bucket)

    async def presign_post(
        self,
        key: str,
        content_type: str,
        max_size_bytes: int,
        expires_in: int,
        *,
        min_size_bytes: int = 1,
    ) -> PresignedPost:
        if not 1 <= min_size_bytes <= max_size_bytes:
            raise ValueError("need 1 <= min_size_bytes <= max_size_bytes")
        if expires_in < 1:
            raise ValueError("expires_in must be at least 1 second")
        # boto3 adds the {"bucket": ...} and exact {"key": key} conditions itself.
        result = await self._run(
            "generate_presigned_post",
            key,
            self._public.generate_presigned_post,
            Bucket=self.bucket,
            Key=key,
            Fields={"Content-Type": content_type},
            Conditions=[
                {"Content-Type": content_type},
                ["content-length-range", min_size_bytes, max_size_bytes],
            ],
            ExpiresIn=expires_in,
        )
        return PresignedPost(url=result["url"], fields=dict(result["fields"]))

    async def presign_get(self, key: str, expires_in: int, *, internal: bool = False) -> str:
        if expires_in < 1:
            raise ValueError("expires_in must be at least 1 second")
        client = self._client if internal else self._public
        url: str = await self._run(
            "generate_presigned_url",
            key,
            client.generate_presigned_url,
            "get_object",
            Params={"Bucket": self.bucket, "Key": key},
            ExpiresIn=expires_in,
        )
        return url

    async def head(self, key: str) -> ObjectInfo | None:
        try:
            response = await self._run(
                "head_object", key, self._client.head_object, Bucket=self.bucket, Key=key
            )
        except ObjectNotFound:
            return None
        return ObjectInfo(
            key=key,
            size=int(response["ContentLength"]),
            content_type=response.get("ContentType"),
            etag=_strip_etag(response.get("ETag", "")),
            last_modified=_aware(response["LastModified"]),
        )

    async def download(self, key: str, path: Path) -> None:
        # download_file writes a temporary sibling and renames it: no half-written `path`.
        await self._run(
            "download_file",
            key,
            self._client.download_file,
            self.bucket,
            key,
            str(path),
            Config=self._transfer,
        )

    async def upload_file(
        self, path: Path, key: str, content_type: str, cache_control: str | None = None
    ) -> None:
        extra = {"ContentType": content_type}
        if cache_control is not None:
            extra["CacheControl"] = cache_control
        await self._run(
            "upload_file",
            key,
            self._client.upload_file,
            str(path),
            self.bucket,
            key,
            ExtraArgs=extra,
            Config=self._transfer,
        )

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        await self._run(
            "put_object",
            key,
            self._client.put_object,
            Bucket=self.bucket,
            Key=key,
            Body=data,
            ContentType=content_type,
        )

    async def get_bytes(self, key: str) -> bytes:
        return await self._run("get_object", key, self._get_bytes_sync, key)

    async def get_range(self, key: str, start: int, length: int) -> bytes:
        return await self._run("get_object", key, self._get_range_sync, key, start, length)

    async def list(self, prefix: str) -> builtins.list[ObjectInfo]:
        return await self._run("list_objects_v2", prefix, self._list_sync, prefix)

    async def delete(self, keys: Iterable[str]) -> None:
        unique = sorted(set(keys))
        for start in range(0, len(unique), self._page_size):
            batch = unique[start : start + self._page_size]
            await self._run("delete_objects", batch[0], self._delete_batch_sync, batch)

    async def delete_prefix(self, prefix: str) -> int:
        if not prefix:
            raise ValueError("refusing to delete the whole bucket: prefix must not be empty")
        objects = await self.list(prefix)
        await self.delete(info.key for info in objects)
        return len(objects)

    async def create_multipart(self, key: str, content_type: str) -> str:
        response = await self._run(
            "create_multipart_upload",
            key,
            self._client.create_multipart_upload,
            Bucket=self.bucket,
            Key=key,
            ContentType=content_type,
        )
        return str(response["UploadId"])

    async def presign_upload_part(
        self, key: str, upload_id: str, part_number: int, expires_in: int
    ) -> str:
        if not 1 <= part_number <= MAX_PARTS:
            raise ValueError(f"part_number must be within 1..{MAX_PARTS}")
        if expires_in < 1:
            raise ValueError("expires_in must be at least 1 second")
        url: str = await self._run(
            "generate_presigned_url",
            key,
            self._public.generate_presigned_url,
            "upload_part",
            Params={
                "Bucket": self.bucket,
                "Key": key,
                "UploadId": upload_id,
                "PartNumber": part_number,
            },
            ExpiresIn=expires_in,
        )
        return url

    async def list_parts(self, key: str, upload_id: str) -> builtins.list[PartInfo]:
        return await self._run("list_parts", key, self._list_parts_sync, key, upload_id)

    async def complete_multipart(self, key: str, upload_id: str, parts: Sequence[PartInfo]) -> None:
        await self._run(
            "complete_multipart_upload", key, self._complete_sync, key, upload_id, parts
        )

    async def abort_multipart_uploads(self, prefix: str) -> int:
        if not prefix:
            raise ValueError("refusing to abort every upload: prefix must not be empty")
        return await self._run("abort_multipart_upload", prefix, self._abort_sync, prefix)

    # -- blocking helpers (run in a worker thread) --------------------------------------------

    def _create_bucket_sync(self) -> None:
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        region = self._client.meta.region_name
        if region and region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            self._client.create_bucket(**kwargs)
        except ClientError as exc:
            if _error_code(exc) not in _ALREADY_EXISTS_CODES:
                raise
            # Created concurrently by someone else since our HEAD: that is what we wanted.

    def _get_bytes_sync(self, key: str) -> bytes:
        response = self._client.get_object(Bucket=self.bucket, Key=key)
        with response["Body"] as body:
            data: bytes = body.read()
        return data

    def _get_range_sync(self, key: str, start: int, length: int) -> bytes:
        if length <= 0:
            return b""
        response = self._client.get_object(
            Bucket=self.bucket, Key=key, Range=f"bytes={start}-{start + length - 1}"
        )
        with response["Body"] as body:
            data: bytes = body.read(length)
        return data

    def _list_sync(self, prefix: str) -> builtins.list[ObjectInfo]:
        paginator = self._client.get_paginator("list_objects_v2")
        found: builtins.list[ObjectInfo] = []
        for page in paginator.paginate(
            Bucket=self.bucket, Prefix=prefix, PaginationConfig={"PageSize": self._page_size}
        ):
            for item in page.get("Contents", ()):
                found.append(
                    ObjectInfo(
                        key=item["Key"],
                        size=int(item["Size"]),
                        content_type=None,
                        etag=_strip_etag(item.get("ETag", "")),
                        last_modified=_aware(item["LastModified"]),
                    )
                )
        return found

    def _list_parts_sync(self, key: str, upload_id: str) -> builtins.list[PartInfo]:
        paginator = self._client.get_paginator("list_parts")
        parts: builtins.list[PartInfo] = []
        try:
            for page in paginator.paginate(Bucket=self.bucket, Key=key, UploadId=upload_id):
                parts += [
                    PartInfo(int(p["PartNumber"]), int(p["Size"]), _strip_etag(p["ETag"]))
                    for p in page.get("Parts", ())
                ]
        except ClientError as exc:
            if _error_code(exc) == "NoSuchUpload":
                raise UploadNotFound(key, upload_id) from exc
            raise
        return sorted(parts, key=lambda p: p.part_number)

    def _complete_sync(self, key: str, upload_id: str, parts: Sequence[PartInfo]) -> None:
        try:
            self._client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={
                    "Parts": [{"PartNumber": p.part_number, "ETag": f'"{p.etag}"'} for p in parts]
                },
            )
        except ClientError as exc:
            if _error_code(exc) == "NoSuchUpload":
                raise UploadNotFound(key, upload_id) from exc
            raise

    def _abort_sync(self, prefix: str) -> int:
        paginator = self._client.get_paginator("list_multipart_uploads")
        aborted = 0
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for upload in page.get("Uploads", ()):
                try:
                    self._client.abort_multipart_upload(
                        Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                except ClientError as exc:
                    if _error_code(exc) != "NoSuchUpload":  # finished or aborted meanwhile
                        raise
                    continue
                aborted += 1
        return aborted

    def _delete_batch_sync(self, keys: builtins.list[str]) -> None:
        response = self._client.delete_objects(
            Bucket=self.bucket,
            Delete={"Objects": [{"Key": key} for key in keys], "Quiet": True},
        )
        errors = [e for e in response.get("Errors", ()) if e.get("Code") != "NoSuchKey"]
        if errors:
            first = errors[0]
            raise ObjectStoreError(
                f"delete_objects failed for {len(errors)} key(s), first {first.get('Key')!r}: "
                f"{first.get('Code')} {first.get('Message')}"
            )

    # -- error translation ------------------------------------------------------------------

    async def _run(
        self, operation: str, subject: str, fn: Callable[..., _T], /, *args: Any, **kwargs: Any
    ) -> _T:
        """Run the blocking boto3 call ``fn`` in a thread and translate its failures."""
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except ClientError as exc:
            raise _translate_client_error(exc, operation, subject) from exc
        except (BotoConnectionError, HTTPClientError, RetriesExceededError) as exc:
            raise _unavailable(operation, exc) from exc
        except S3UploadFailedError as exc:
            # boto3 wraps the ClientError of a managed upload; keep its classification.
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, ClientError):
                raise _translate_client_error(cause, operation, subject) from exc
            raise ObjectStoreError(f"{operation} {subject!r}: {exc}") from exc
        except BotoCoreError as exc:
            raise ObjectStoreError(f"{operation} {subject!r}: {exc}") from exc


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _translate_client_error(exc: ClientError, operation: str, subject: str) -> ObjectStoreError:
    code = _error_code(exc)
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    if code in _NOT_FOUND_CODES or status == 404:
        return ObjectNotFound(subject)
    if code in _TRANSIENT_CODES or status >= 500:
        return _unavailable(operation, exc)
    return ObjectStoreError(f"{operation} {subject!r} failed: {exc}")


def _unavailable(operation: str, exc: Exception) -> ObjectStoreUnavailable:
    log.warning("object store unavailable during %s: %s", operation, exc)
    return ObjectStoreUnavailable(f"object store unavailable during {operation}: {exc}")


def _strip_etag(etag: str) -> str:
    return etag.strip('"')


def _aware(value: datetime) -> datetime:
    """UTC, timezone-aware (botocore parses some listings into local time, some naive)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
