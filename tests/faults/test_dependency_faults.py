"""Fault injection on the real embedded stack: dependencies die, the API refuses cleanly.

Processes are started by the fixtures and killed here with SIGKILL (``ManagedProcess.kill``).
Kill -9 of a worker during a transcode is covered by the transcode tests
(tests/integration/test_transcode_agent.py), not repeated here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
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
from tritontube.settings import (
    AuthSettings,
    RateLimitSettings,
    SearchSettings,
    Settings,
    TranscodeSettings,
)
from tritontube.storage.s3 import S3ObjectStore
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


async def _upload_and_complete(
    client: TestClient,  # type: ignore[type-arg]
    headers: dict[str, str],
    session: dict[str, Any],
    data: bytes,
    timeout: float = 60,
) -> dict[str, Any]:
    """The browser's form POST, then completeUpload; retried while the stack comes back."""
    form = aiohttp.FormData()
    for key, value in session["upload"]["fields"].items():
        form.add_field(key, value)
    form.add_field("file", data, filename="clip.mp4", content_type="video/mp4")
    async with aiohttp.ClientSession() as http, http.post(session["upload"]["url"], data=form) as r:
        assert r.status == 204, await r.text()
    deadline = time.monotonic() + timeout
    while True:
        resp = await client.post(
            "/v1/videos:completeUpload",
            json={"videoId": session["videoId"]},
            headers={**headers, "If-Match": f'"{session["etag"]}"'},
        )
        body: dict[str, Any] = await resp.json()
        if resp.status != 503 or time.monotonic() > deadline:
            assert resp.status == 200, (session["videoId"], body)
            return body
        await asyncio.sleep(0.5)


async def test_broker_kill_9_right_after_acknowledgements_loses_nothing(
    make_settings: Callable[..., Settings],
    stack_factory: Callable[..., EmbeddedStack],
    aiohttp_client: ClientFactory,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    """Sessions acknowledged 0.1 s before a kill -9 of the broker still complete after its
    restart: the embedded broker writes every batch to the object store before it answers
    (Tansu's s3:// engine). While it is down the API refuses cleanly and fast."""
    caplog.set_level(logging.DEBUG)
    base = make_settings()
    settings = make_settings(
        kafka=base.kafka,
        s3=base.s3.model_copy(update={"secret_access_key": SecretStr(S3_SECRET)}),
        http=base.http,
        worker=base.worker,
        auth=AuthSettings(secret=SECRET),
        rate_limit=RateLimitSettings(enabled=False),
    )
    stack = stack_factory(settings)
    client = await aiohttp_client(create_http_app(settings, build_deps(settings)))
    await _until_ready(client)
    headers = _auth(settings)
    data = clip(tmp_path / "clip.mp4", "160x120", 1, audio=False).read_bytes()
    body = {**BODY, "sizeBytes": len(data)}

    sessions = []
    for _ in range(10):
        resp = await client.post("/v1/videos:uploadURL", json=body, headers=headers)
        assert resp.status == 200, await resp.text()
        sessions.append(await resp.json())
    await asyncio.sleep(0.1)
    broker = process_named(stack, "broker")
    broker.kill()

    refusals = []
    for _ in range(5):
        resp, took = await _timed(client.post("/v1/videos:uploadURL", json=body, headers=headers))
        answer = await resp.json()
        refusals.append((resp.status, took))
        assert resp.status == 503, answer
        assert answer["code"] == "UNAVAILABLE"
        assert resp.headers["Retry-After"].isdigit()
    worst = max(t for _, t in refusals)
    assert worst < settings.kafka.publish_timeout_seconds + 1.0, refusals
    ready = await _ready(client)
    assert ready["_status"] == 503 and "broker" in ready["failing"], ready
    assert ready["_retry_after"] is not None

    started = time.monotonic()
    await asyncio.to_thread(stack.revive, broker)  # as `make dev` does: only the broker
    await _until_ready(client)
    back = time.monotonic() - started
    for item in sessions:
        done = await _upload_and_complete(client, headers, item, data)
        assert done["status"] == "PENDING_TRANSCODE", done
    print(
        f"\nbroker kill -9 0.1 s after the last of {len(sessions)} acknowledgements: "
        f"{len(sessions)}/{len(sessions)} completed after the restart (ready again in "
        f"{back:.1f}s); refusals {[(s, round(t, 3)) for s, t in refusals]}"
    )
    # Secrets never logged: this process's log records and every child's log file.
    logs = caplog.text + "".join(
        p.read_text(errors="replace") for p in (tmp_path / "logs").glob("*.log")
    )
    assert SECRET not in logs
    assert S3_SECRET not in logs


async def test_object_store_kill_9_right_after_acknowledgements_loses_nothing(
    make_settings: Callable[..., Settings],
    stack_factory: Callable[..., EmbeddedStack],
    aiohttp_client: ClientFactory,
    tmp_path: Path,
) -> None:
    """The event log lives in the object store: a kill -9 of the store 0.1 s after the API
    acknowledged sessions loses none of them. While it is down, uploadURL and completeUpload
    answer 503 (the log cannot write); after its restart every session completes."""
    settings = make_settings(rate_limit=RateLimitSettings(enabled=False))
    stack = stack_factory(settings)
    client = await aiohttp_client(create_http_app(settings, build_deps(settings)))
    await _until_ready(client)
    headers = _auth(settings)
    data = clip(tmp_path / "clip.mp4", "160x120", 1, audio=False).read_bytes()
    body = {**BODY, "sizeBytes": len(data)}
    sessions = []
    for _ in range(10):
        resp = await client.post("/v1/videos:uploadURL", json=body, headers=headers)
        assert resp.status == 200, await resp.text()
        sessions.append(await resp.json())
    await asyncio.sleep(0.1)
    store = process_named(stack, "objectstore")
    store.kill()

    resp, took = await _timed(client.post("/v1/videos:uploadURL", json=body, headers=headers))
    assert resp.status == 503, await resp.text()
    assert resp.headers["Retry-After"].isdigit()
    assert "objectStore" in (await _ready(client))["failing"]

    started = time.monotonic()
    await asyncio.to_thread(stack.revive, store)
    await _until_ready(client)
    back = time.monotonic() - started
    for item in sessions:
        done = await _upload_and_complete(client, headers, item, data)
        assert done["status"] == "PENDING_TRANSCODE", done
    print(
        f"\nobject store kill -9 0.1 s after the last of {len(sessions)} acknowledgements: "
        f"{len(sessions)}/{len(sessions)} completed after its restart (ready again in "
        f"{back:.1f}s); uploadURL while it was down: 503 in {took:.2f}s"
    )


async def test_the_whole_stack_killed_mid_encode_still_ends_ready(
    make_settings: Callable[..., Settings],
    stack_factory: Callable[..., EmbeddedStack],
    store_for: Callable[[Settings], S3ObjectStore],
    codec: EventCodec,
    tmp_path: Path,
) -> None:
    """Power cut during an encode: broker and worker die together. The broker's log is
    durable and the job's offset was never committed, so the restarted worker does the job
    again (a redelivery, not a retry) and the video ends READY."""
    settings = make_settings(transcode=TranscodeSettings(scratch_dir=tmp_path / "scratch"))
    stack = stack_factory(settings)
    store = store_for(settings)
    longer = clip(tmp_path / "longer.mp4", "1280x720", 10, audio=False)
    await store.upload_file(longer, source_key("cut"), "video/mp4")
    await publish_upload(settings, codec, "cut")
    await wait_for_state(settings, "cut", lambda s: s.step == "ENCODING", timeout=60)
    encoding = await wait_for_state(settings, "cut", lambda s: True)
    assert (encoding.status, encoding.step) == ("TRANSCODING", "ENCODING"), encoding

    broker, worker = process_named(stack, "broker"), process_named(stack, "worker")
    worker.kill()
    broker.kill()
    # As `make dev` brings dead children back: the broker, then the worker.
    await asyncio.to_thread(stack.revive, broker)
    await asyncio.to_thread(stack.revive, worker)

    ready = await wait_for_state(settings, "cut", terminal, timeout=90)
    assert ready.status == "READY", ready
    assert ready.attempt == 1  # a crash is a redelivery, not a retry


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
    status_path = f"/v1/videos/{session['videoId']}/transcodeStatus"
    for _ in range(100):  # folded by the worker
        if (await client.get(status_path, headers=headers)).status == 200:
            break
        await asyncio.sleep(0.1)
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
