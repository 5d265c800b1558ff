"""Fault injection on the real embedded stack: dependencies die, the API refuses cleanly.

Processes are started by the fixtures and killed here with SIGKILL (``ManagedProcess.kill``).
Kill -9 of a worker during a transcode is covered by the transcode tests
(tests/integration/test_transcode_agent.py), not repeated here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pydantic import SecretStr

from helpers import (
    clip,
    process_named,
    publish_upload,
    source_key,
    terminal,
    wait_for_state,
)
from tritontube.deps import build_deps
from tritontube.devstack.osmem import osmem_url, running_osmem
from tritontube.devstack.stack import EmbeddedStack
from tritontube.http import keys
from tritontube.http.app import create_http_app
from tritontube.http.auth import mint_token
from tritontube.replay.restore import plan_restore, restore_from_archive
from tritontube.settings import (
    ArchiveSettings,
    AuthSettings,
    RateLimitSettings,
    SearchSettings,
    Settings,
    TranscodeSettings,
)
from tritontube.storage.s3 import S3ObjectStore
from tritontube.streams import archive, catalogue
from tritontube.streams.admin import ensure_topics
from tritontube.streams.records import EventCodec

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ClientFactory = Callable[..., Any]
SECRET = "fault-test-auth-secret-6f1d2b0c9a8e7d6c5b4a39281706f5e4"
S3_SECRET = "fault-test-s3-secret-0a1b2c3d4e5f"
BODY = {"title": "t", "fileName": "a.mp4", "contentType": "video/mp4", "sizeBytes": 100}


def _auth(settings: Settings, user: str = "alice") -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(settings.auth, user)}"}


async def _timed(coro: Any) -> tuple[Any, float]:
    started = time.monotonic()
    result = await coro
    return result, time.monotonic() - started


async def _ready(client: TestClient) -> dict[str, Any]:  # type: ignore[type-arg]
    resp = await client.get("/readyz")
    body: dict[str, Any] = await resp.json()
    body["_status"] = resp.status
    body["_retry_after"] = resp.headers.get("Retry-After")
    return body


async def _until_ready(client: TestClient, timeout: float = 60) -> None:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (await _ready(client))["_status"] == 200:
            return
        await asyncio.sleep(0.3)
    raise AssertionError(f"not ready: {await _ready(client)}")


async def _wait_archived(
    settings: Settings, topic: str, records: int, timeout: float = 45
) -> float:
    """Seconds until the archive holds ``records`` records of ``topic``."""
    started = time.monotonic()
    store = S3ObjectStore.from_settings(settings.s3)
    try:
        while time.monotonic() - started < timeout:
            plan = await plan_restore(store, settings.archive.prefix)
            held = sum(
                f.end_offset - f.start_offset + 1
                for tp, files in plan.files.items()
                if tp.topic == topic
                for f in files
            )
            if held >= records:
                return time.monotonic() - started
            await asyncio.sleep(0.25)
    finally:
        store.close()
    raise AssertionError(f"archive never held {records} records of {topic}")


async def _wait_checkpoint(
    settings: Settings, after: datetime | None = None, timeout: float = 30
) -> None:
    """Until the archiver has written a checkpoint of the worker group (later than
    ``after`` when given)."""
    key = archive.checkpoint_key(settings.archive.prefix, settings.worker.app_id)
    store = S3ObjectStore.from_settings(settings.s3)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await store.head(key) is not None:
                written = json.loads(await store.get_bytes(key))["writtenAt"]
                if after is None or datetime.fromisoformat(written) > after:
                    return
            await asyncio.sleep(0.25)
    finally:
        store.close()
    raise AssertionError(f"no checkpoint written (after {after})")


async def test_broker_restart_503_then_nothing_acknowledged_is_lost(
    make_settings: Callable[..., Settings],
    stack_factory: Callable[..., EmbeddedStack],
    aiohttp_client: ClientFactory,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG)
    base = make_settings()
    settings = make_settings(
        kafka=base.kafka,
        s3=base.s3.model_copy(update={"secret_access_key": SecretStr(S3_SECRET)}),
        http=base.http,
        worker=base.worker,
        auth=AuthSettings(secret=SECRET),
        archive=ArchiveSettings(flush_interval_seconds=0.5),
        rate_limit=RateLimitSettings(enabled=False),
    )
    stack = stack_factory(settings)
    client = await aiohttp_client(create_http_app(settings, build_deps(settings)))
    await _until_ready(client)
    headers = _auth(settings)

    accepted: list[str] = []
    for _ in range(10):
        resp = await client.post("/v1/videos:uploadURL", json=BODY, headers=headers)
        assert resp.status == 200, await resp.text()
        accepted.append((await resp.json())["videoId"])
    # The embedded broker is memory-only: what survives its death is what the archiver has
    # flushed (flush_interval_seconds after the ack, once its consumer has joined). The video
    # states the worker folded from the uploads may still be in the flush window: the restore
    # commits the worker's group at the archiver's checkpoint, so the worker folds the uploads
    # after it again (tests/integration/test_archiver_checkpoint.py holds that moment still).
    archived_after = await _wait_archived(settings, catalogue.UPLOADS.name, len(accepted))
    await _wait_checkpoint(settings)

    broker = process_named(stack, "broker")
    broker.kill()
    worker = process_named(stack, "worker")
    worker.kill()  # its consumer would only log errors; it restarts with the broker

    refusals = []
    for _ in range(5):
        resp, took = await _timed(client.post("/v1/videos:uploadURL", json=BODY, headers=headers))
        body = await resp.json()
        refusals.append((resp.status, took))
        assert resp.status == 503, body
        assert body["code"] == "UNAVAILABLE"
        assert resp.headers["Retry-After"].isdigit()
    worst = max(t for _, t in refusals)
    assert worst < settings.kafka.publish_timeout_seconds + 1.0, refusals
    ready = await _ready(client)
    assert ready["_status"] == 503 and "broker" in ready["failing"], ready
    assert ready["_retry_after"] is not None

    # The broker comes back empty (memory storage); the archive refills it.
    broker.start()
    await ensure_topics(settings.kafka)
    store = S3ObjectStore.from_settings(settings.s3)
    try:
        restored = await restore_from_archive(settings, store)
    finally:
        store.close()
    print("\nrestored:", {f"{tp.topic}/{tp.partition}": n for tp, n in restored.restored.items()})
    print(
        "worker group committed at:",
        {f"{tp.topic}/{tp.partition}": n for tp, n in restored.committed.items()},
    )
    await asyncio.to_thread(stack.start_worker)
    await _until_ready(client)
    for vid in accepted:
        resp = await client.get(f"/v1/videos/{vid}/transcodeStatus", headers=headers)
        assert resp.status == 200, (vid, await resp.text())
        assert (await resp.json())["status"] == "UPLOAD_PENDING"
    resp = await client.post("/v1/videos:uploadURL", json=BODY, headers=headers)
    assert resp.status == 200, await resp.text()
    print(
        f"\nbroker fault: {len(accepted)} acknowledged, {len(accepted)} present after restore "
        f"({restored.records} records restored; archived {archived_after:.1f}s after the last "
        f"ack); refusals {[(s, round(t, 3)) for s, t in refusals]}"
    )
    # Secrets never logged: this process's log records and every child's log file.
    logs = caplog.text + "".join(
        p.read_text(errors="replace") for p in (tmp_path / "logs").glob("*.log")
    )
    assert SECRET not in logs
    assert S3_SECRET not in logs


async def test_the_whole_stack_killed_mid_encode_still_ends_ready_after_the_restore(
    make_settings: Callable[..., Settings],
    stack_factory: Callable[..., EmbeddedStack],
    store_for: Callable[[Settings], S3ObjectStore],
    codec: EventCodec,
    tmp_path: Path,
) -> None:
    """Power cut during an encode: broker (memory) and worker die together. The restore
    commits the worker's group at the archiver's checkpoint, which the in-flight job's offset
    is not under, so the worker does the job again (committing at the restored ends, as the
    restore used to, left the video TRANSCODING for ever)."""
    settings = make_settings(
        archive=ArchiveSettings(flush_interval_seconds=0.5),
        transcode=TranscodeSettings(scratch_dir=tmp_path / "scratch"),
    )
    stack = stack_factory(settings)
    store = store_for(settings)
    longer = clip(tmp_path / "longer.mp4", "1280x720", 10, audio=False)
    await store.upload_file(longer, source_key("cut"), "video/mp4")
    await _wait_checkpoint(settings)  # the archiver is running
    await publish_upload(settings, codec, "cut")
    await wait_for_state(settings, "cut", lambda s: s.get("step") == "ENCODING", timeout=60)
    await _wait_archived(settings, catalogue.TRANSCODE_JOBS.name, 1)
    await _wait_checkpoint(settings, after=datetime.now(UTC))
    encoding = await wait_for_state(settings, "cut", lambda s: True)
    assert (encoding["status"], encoding["step"]) == ("TRANSCODING", "ENCODING"), encoding

    broker, worker = process_named(stack, "broker"), process_named(stack, "worker")
    worker.kill()
    broker.kill()
    # As `make dev` brings a dead broker back: restore from the archive, then the worker.
    await asyncio.to_thread(stack.revive, broker)

    ready = await wait_for_state(settings, "cut", terminal, timeout=90)
    assert ready["status"] == "READY", ready
    assert ready["attempt"] == 1  # a crash is a redelivery, not a retry


async def test_object_store_down_refuses_completion_and_nothing_becomes_ready(
    make_settings: Callable[..., Settings],
    stack_factory: Callable[..., EmbeddedStack],
    aiohttp_client: ClientFactory,
) -> None:
    settings = make_settings()
    stack = stack_factory(settings)
    client = await aiohttp_client(create_http_app(settings, build_deps(settings)))
    await _until_ready(client)
    headers = _auth(settings)
    resp = await client.post("/v1/videos:uploadURL", json=BODY, headers=headers)
    session = await resp.json()
    process_named(stack, "objectstore").kill()
    resp, took = await _timed(
        client.post(
            "/v1/videos:completeUpload",
            json={"videoId": session["videoId"]},
            headers={**headers, "If-Match": f'"{session["etag"]}"'},
        )
    )
    body = await resp.json()
    assert resp.status == 503, body
    assert resp.headers["Retry-After"].isdigit()
    ready = await _ready(client)
    assert "objectStore" in ready["failing"], ready
    status = await client.get(f"/v1/videos/{session['videoId']}/transcodeStatus", headers=headers)
    assert (await status.json())["status"] == "UPLOAD_PENDING"
    print(f"\nobject store fault: completeUpload 503 in {took:.2f}s")


async def test_search_backend_down_is_503_and_back_when_it_returns(
    make_settings: Callable[..., Settings],
    aiohttp_client: ClientFactory,
    tmp_path: Path,
) -> None:
    with running_osmem(tmp_path / "osmem.log") as osmem:
        settings = make_settings(
            search=SearchSettings(backend="opensearch", opensearch_url=osmem_url(osmem))
        )
        client = await aiohttp_client(create_http_app(settings, build_deps(settings)))
        headers = _auth(settings)
        ok = await client.get("/v1/videos:search?q=zebra", headers=headers)
        assert ok.status == 200, await ok.text()
        osmem.kill()
        resp, took = await _timed(client.get("/v1/videos:search?q=zebra", headers=headers))
        body = await resp.json()
        assert resp.status == 503, body
        assert body["code"] == "UNAVAILABLE" and resp.headers["Retry-After"].isdigit()
        rec = await client.get("/v1/videos:recommendations", headers=headers)
        assert rec.status == 503, await rec.text()
        assert "search" in (await _ready(client))["failing"]
        osmem.start()
        # A restarted in-memory backend has lost the index: still 503 (never 500) until the
        # indexer (the worker) recreates it; the API then answers 200 again.
        lost = await client.get("/v1/videos:search?q=zebra", headers=headers)
        assert lost.status == 503, await lost.text()
        await client.app[keys.SEARCH].ensure()
        again = await client.get("/v1/videos:search?q=zebra", headers=headers)
        assert again.status == 200, await again.text()
        print(f"\nsearch fault: 503 in {took:.2f}s, 200 again once the index is back")
