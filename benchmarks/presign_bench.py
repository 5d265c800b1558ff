"""Issue 3: pre-signed POST latency, in process.

* ``presign_post`` through our ``S3ObjectStore`` adapter (boto3 in a worker thread), 1000
  sequential calls, p50/p99; goal p99 < 5 ms. Reference: bare boto3
  ``generate_presigned_post`` called directly, same count, same run.
* The whole ``POST /v1/videos:uploadURL`` handler (validation, presign, publishing
  ``UploadSessionCreated`` to a real embedded broker) through aiohttp's test client, p50/p99;
  goal p99 < 100 ms (the seed's presign SLO). Reference: an aiohttp hello-world handler
  behind the same client.

    python -m benchmarks.presign_bench [--full]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import boto3
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from botocore.config import Config

from benchmarks.common import Figure, at_most, full_mode, percentile, render_table
from tritontube.deps import build_deps
from tritontube.devstack.broker import tansu_process
from tritontube.devstack.process import free_port
from tritontube.http.app import create_http_app
from tritontube.http.auth import mint_token
from tritontube.settings import (
    KafkaSettings,
    RateLimitSettings,
    S3Settings,
    SearchSettings,
    Settings,
)
from tritontube.storage.s3 import S3ObjectStore
from tritontube.streams.admin import ensure_topics

MODULE = "presign"
# Presigning is local computation; this endpoint is never contacted.
S3 = S3Settings(
    endpoint_url="http://127.0.0.1:9",
    access_key_id="bench",
    secret_access_key="bench-secret",  # type: ignore[arg-type]  # noqa: S106 - never sent
)


def _ms(values: list[float], q: float) -> float:
    return percentile(values, q) * 1000


async def adapter_latencies(calls: int) -> list[float]:
    store = S3ObjectStore.from_settings(S3)
    try:
        await store.presign_post("uploads/warm/source.mp4", "video/mp4", 1024, 900)
        out = []
        for i in range(calls):
            t0 = time.perf_counter()
            await store.presign_post(f"uploads/v{i}/source.mp4", "video/mp4", 10**9, 900)
            out.append(time.perf_counter() - t0)
        return out
    finally:
        store.close()


def boto3_latencies(calls: int) -> list[float]:
    client = boto3.client(
        "s3",
        endpoint_url=S3.endpoint_url,
        region_name=S3.region,
        aws_access_key_id=S3.access_key_id,
        aws_secret_access_key=S3.secret_access_key.get_secret_value(),
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    out = []
    for i in range(calls):
        t0 = time.perf_counter()
        client.generate_presigned_post(
            Bucket=S3.bucket,
            Key=f"uploads/v{i}/source.mp4",
            Fields={"Content-Type": "video/mp4"},
            Conditions=[{"Content-Type": "video/mp4"}, ["content-length-range", 1, 10**9]],
            ExpiresIn=900,
        )
        out.append(time.perf_counter() - t0)
    return out


async def _timed_posts(client: TestClient, path: str, calls: int, **kwargs: object) -> list[float]:  # type: ignore[type-arg]
    out = []
    for _ in range(calls):
        t0 = time.perf_counter()
        async with client.post(path, **kwargs) as resp:  # type: ignore[arg-type]
            await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"{path} answered {resp.status}: {await resp.text()}")
        out.append(time.perf_counter() - t0)
    return out


async def endpoint_latencies(calls: int, workdir: Path) -> tuple[list[float], list[float]]:
    """(uploadURL latencies, hello-world latencies) through the same in-process client."""
    broker = tansu_process("127.0.0.1", free_port(), workdir / "logs")
    broker.start()
    try:
        settings = Settings(
            kafka=KafkaSettings(
                bootstrap_servers=f"127.0.0.1:{broker.port}", embedded_broker_compat=True
            ),
            s3=S3,
            search=SearchSettings(path=workdir / "search"),
            # One user sends every request here; per-user limits would answer 429.
            rate_limit=RateLimitSettings(enabled=False),
        )
        await ensure_topics(settings.kafka)
        headers = {"Authorization": f"Bearer {mint_token(settings.auth, 'bench')}"}
        body = {
            "title": "bench",
            "fileName": "clip.mp4",
            "contentType": "video/mp4",
            "sizeBytes": 1_000_000,
        }
        async with TestClient(TestServer(create_http_app(settings, build_deps(settings)))) as c:
            await _timed_posts(c, "/v1/videos:uploadURL", 20, json=body, headers=headers)
            api = await _timed_posts(c, "/v1/videos:uploadURL", calls, json=body, headers=headers)

        async def hello(request: web.Request) -> web.Response:
            return web.Response(text="Hello, world")

        app = web.Application()
        app.router.add_post("/", hello)
        async with TestClient(TestServer(app)) as c:
            await _timed_posts(c, "/", 20, json=body)
            ref = await _timed_posts(c, "/", calls, json=body)
        return api, ref
    finally:
        broker.stop()


def run(quick: bool) -> list[Figure]:
    calls = 1000
    endpoint_calls = 300 if quick else 1000
    ours = asyncio.run(adapter_latencies(calls))
    bare = boto3_latencies(calls)
    with tempfile.TemporaryDirectory() as tmp:
        api, hello = asyncio.run(endpoint_latencies(endpoint_calls, Path(tmp)))
    figures = []
    for q in (50, 99):
        figures.append(
            Figure(
                f"presign_post p{q} ({calls} calls)",
                _ms(ours, q),
                "ms",
                goal=at_most(5.0) if q == 99 else None,
                reference_name=f"bare boto3 p{q}",
                reference_value=_ms(bare, q),
                module=MODULE,
            )
        )
    for q in (50, 99):
        figures.append(
            Figure(
                f"POST uploadURL p{q} ({endpoint_calls} calls)",
                _ms(api, q),
                "ms",
                goal=at_most(100.0) if q == 99 else None,
                reference_name=f"aiohttp hello p{q}",
                reference_value=_ms(hello, q),
                module=MODULE,
            )
        )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="issue-sized run")
    args = parser.parse_args()
    print(render_table(run(quick=not (args.full or full_mode()))))


if __name__ == "__main__":
    main()
