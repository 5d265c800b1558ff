"""Every process exposes its metrics: scrape the API's and the worker's /metrics of a real stack.

The stack (object store, broker, worker, API) runs as child processes on free ports; the scrapes are
parsed with prometheus_client's own parser.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tritontube.devstack.stack import EmbeddedStack
from tritontube.http.auth import mint_token
from tritontube.settings import Settings, WorkerSettings

pytestmark = pytest.mark.integration

API_FAMILIES = {
    "tritontube_http_request_duration_seconds",
    "tritontube_upload_presign_duration_seconds",
    "tritontube_uploads_started",
    "tritontube_uploads_rejected",
}
WORKER_FAMILIES = {
    "tritontube_stream_queue_latency_seconds",
    "tritontube_stream_events_consumed",
    "tritontube_stream_consumer_lag_records",
    "tritontube_stream_consumer_assigned_partitions",
    "tritontube_transcode_duration_seconds",
    "tritontube_transcode_failures",
    "tritontube_index_freshness_seconds",
    "tritontube_archive_lag_records",
}


async def scrape(session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with session.get(url) as resp:
        assert resp.status == 200, await resp.text()
        assert resp.headers["Content-Type"].startswith("text/plain")
        return {f.name: f for f in text_string_to_metric_families(await resp.text())}


def value(families: dict[str, Any], sample: str, **labels: str) -> float:
    family = families[sample.removesuffix("_count").removesuffix("_bucket").removesuffix("_sum")]
    return sum(
        s.value
        for s in family.samples
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items())
    )


@pytest.fixture
def stack(
    make_settings: Callable[..., Settings],
    stack_factory: Callable[..., EmbeddedStack],
    tmp_path: Any,
) -> EmbeddedStack:
    settings = make_settings()
    worker = settings.worker.model_copy(update={"lag_interval_seconds": 0.5})
    settings = settings.model_copy(update={"worker": WorkerSettings(**worker.model_dump())})
    return stack_factory(settings, with_api=True)


async def test_api_and_worker_expose_their_metrics(stack: EmbeddedStack) -> None:
    s = stack.settings
    api = stack.public_url
    worker = f"http://{s.worker.web_host}:{s.worker.web_port}"
    assert stack.wait_ready(timeout=60).get("ready") is True
    async with aiohttp.ClientSession() as session:
        for base in (api, worker):
            for path in ("/healthz", "/readyz"):
                async with session.get(base + path) as resp:
                    assert resp.status == 200, (base, path, await resp.text())

        before = await scrape(session, f"{api}/metrics")
        assert before.keys() >= API_FAMILIES, API_FAMILIES - before.keys()
        route = {"method": "POST", "route": "/v1/videos:uploadURL", "status": "200"}
        count_before = value(before, "tritontube_http_request_duration_seconds_count", **route)

        token = mint_token(s.auth, "observer")
        body = {"title": "metrics", "fileName": "a.mp4", "contentType": "video/mp4", "sizeBytes": 9}
        async with session.post(
            f"{api}/v1/videos:uploadURL", json=body, headers={"Authorization": f"Bearer {token}"}
        ) as resp:
            assert resp.status == 200, await resp.text()

        after = await scrape(session, f"{api}/metrics")
        assert value(after, "tritontube_http_request_duration_seconds_count", **route) == (
            count_before + 1
        )
        assert value(after, "tritontube_upload_presign_duration_seconds_count") >= 1

        # The worker consumed the UploadSessionCreated (queue latency from the record
        # timestamp) and reports the lag of the partitions it owns.
        deadline = time.monotonic() + 30
        while True:
            families = await scrape(session, f"{worker}/metrics")
            assert families.keys() >= WORKER_FAMILIES, WORKER_FAMILIES - families.keys()
            consumed = value(
                families, "tritontube_stream_queue_latency_seconds_count", agent="video-state"
            )
            lag_topics = {
                sample.labels["topic"]
                for sample in families["tritontube_stream_consumer_lag_records"].samples
            }
            if consumed >= 1 and "uploads" in lag_topics:
                break
            assert time.monotonic() < deadline, (consumed, lag_topics)
            await asyncio.sleep(0.5)
        assert not any(t.endswith("-changelog") for t in lag_topics)
        assigned = value(families, "tritontube_stream_consumer_assigned_partitions")
        assert assigned >= s.kafka.partitions
