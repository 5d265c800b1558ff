"""The transcode queue: "position 6 of 20" from the workers' waiting index, through the API.

No transcode agent runs (``transcode_enabled=False``), so completed uploads stay queued
for as long as the test needs; encoding starting is played by publishing the progress
event the transcode agent would.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from helpers import NOW, auth, completion, produce, session, worker_get
from tritontube.devstack.stack import EmbeddedStack
from tritontube.domain.events import TranscodeProgress
from tritontube.domain.queue import QueuePosition
from tritontube.settings import Settings
from tritontube.streams import catalogue
from tritontube.streams.records import EventCodec

pytestmark = pytest.mark.integration


def queue_of(settings: Settings, video_id: str) -> QueuePosition | None:
    status, body = worker_get(settings, f"/transcode/queue/{video_id}")
    assert status in (200, 404), status
    return body if status == 200 else None


def transcode_status(settings: Settings, base_url: str, video_id: str) -> dict[str, Any]:
    request = urllib.request.Request(  # noqa: S310 - loopback test URL
        f"{base_url}/v1/videos/{video_id}/transcodeStatus", headers=auth(settings)
    )
    with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310 - loopback test URL
        body: dict[str, Any] = json.load(resp)
    return body


async def until(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        last = await asyncio.to_thread(check)
        if last or asyncio.get_running_loop().time() > deadline:
            return last
        await asyncio.sleep(0.2)


async def test_waiting_videos_know_their_place_in_the_queue(
    make_settings: Callable[..., Settings],
    stack_factory: Callable[..., EmbeddedStack],
    codec: EventCodec,
) -> None:
    stack = stack_factory(make_settings(transcode_agent=False), with_api=True)
    settings = stack.settings
    videos = ["q-first", "q-second", "q-third"]
    events = []
    for index, video_id in enumerate(videos):  # completed one second apart, in this order
        done = replace(completion(video_id), completed_at=NOW + timedelta(seconds=index))
        events += [(video_id, codec.encode(session(video_id))), (video_id, codec.encode(done))]
    await produce(settings, catalogue.UPLOADS.name, events)

    last = await until(lambda: queue_of(settings, "q-third"))
    assert last == QueuePosition("q-third", 3, 3)
    assert await asyncio.to_thread(queue_of, settings, "q-first") == QueuePosition("q-first", 1, 3)
    assert await asyncio.to_thread(queue_of, settings, "nobody") is None
    body = await asyncio.to_thread(transcode_status, settings, stack.public_url, "q-second")
    assert (body["status"], body["queue"]) == ("PENDING_TRANSCODE", {"position": 2, "length": 3})

    # The first starts encoding: the others move up, and it has no place any more.
    started = TranscodeProgress(
        event_id="start-1",
        video_id="q-first",
        job_id="q-first:etag-q-first",
        attempt=1,
        step="ENCODING",
        percent=10.0,
        ts=NOW + timedelta(seconds=10),
    )
    await produce(settings, catalogue.TRANSCODE_PROGRESS.name, [("q-first", codec.encode(started))])
    moved = await until(lambda: queue_of(settings, "q-second") == QueuePosition("q-second", 1, 2))
    assert moved
    assert await asyncio.to_thread(queue_of, settings, "q-first") is None
    body = await asyncio.to_thread(transcode_status, settings, stack.public_url, "q-first")
    assert body["status"] == "TRANSCODING" and "queue" not in body
