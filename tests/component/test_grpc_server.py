"""The gRPC server with every backing service down: the degraded paths, in process, on a real
port (``grpc.serve``, as ``tritontube grpc`` runs it).

Health follows readiness (NOT_SERVING while the dependencies are down), a call whose worker
read fails is UNAVAILABLE with RetryInfo (the REST API's 503 + Retry-After), and a bug is
INTERNAL without a word of it leaking. The happy paths run against the embedded stack in
``tests/e2e/test_api_grpc.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from tritontube import videos
from tritontube.deps import build_deps
from tritontube.devstack.process import free_port
from tritontube.grpc import server
from tritontube.settings import GrpcSettings, Settings
from tritontube.tokens import mint_token
from tritontube.v1 import web_pb2 as pb
from tritontube.v1 import web_pb2_grpc


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    # make_settings: every service on a free port nobody listens on.
    return make_settings(grpc=GrpcSettings(port=free_port(), health_interval_seconds=0.2))


@pytest.fixture
async def channel(settings: Settings) -> AsyncIterator[grpc.aio.Channel]:
    deps = build_deps(settings)
    stopping = asyncio.Event()
    serving = asyncio.create_task(server.serve(settings, deps, stopping))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{settings.grpc.port}") as chan:
            await asyncio.wait_for(chan.channel_ready(), 10)
            yield chan
    finally:
        stopping.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(serving, 15)
        deps.close()


def metadata(settings: Settings) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {mint_token(settings.auth, 'alice')}"),)


def details(error: grpc.aio.AioRpcError) -> dict[str, Any]:
    status = rpc_status.from_call(error)
    assert status is not None
    found: dict[str, Any] = {}
    for kind in (error_details_pb2.ErrorInfo, error_details_pb2.RetryInfo):
        message = kind()
        if any(d.Unpack(message) for d in status.details):
            found[kind.__name__] = message
    return found


async def test_health_is_not_serving_while_the_dependencies_are_down(
    channel: grpc.aio.Channel,
) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    answer = await health.Check(health_pb2.HealthCheckRequest(service="tritontube.v1.Web"))
    assert answer.status == health_pb2.HealthCheckResponse.NOT_SERVING


async def test_a_read_the_workers_cannot_answer_is_unavailable_with_retry_info(
    channel: grpc.aio.Channel, settings: Settings
) -> None:
    web = web_pb2_grpc.WebStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await web.GetVideo(pb.GetVideoRequest(video_id="v1"), metadata=metadata(settings))
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    found = details(caught.value)
    assert found["ErrorInfo"].reason == "UNAVAILABLE"
    assert found["ErrorInfo"].metadata["httpStatus"] == "503"
    assert found["RetryInfo"].retry_delay.seconds >= 1


async def test_a_bug_is_internal_and_leaks_nothing(
    channel: grpc.aio.Channel, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: Any) -> Any:
        raise RuntimeError("secret detail of a bug")

    monkeypatch.setattr(videos, "get_video", broken)
    web = web_pb2_grpc.WebStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await web.GetVideo(pb.GetVideoRequest(video_id="v1"), metadata=metadata(settings))
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert caught.value.details() == "Internal Server Error"
    assert "secret" not in str(caught.value.trailing_metadata())
    assert details(caught.value)["ErrorInfo"].reason == "INTERNAL"
