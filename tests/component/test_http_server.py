"""The API's HTTP server below the middlewares (``http/server.py``): requests aiohttp's parser
refuses are problem+json and no ERROR in the log; client faults (a body cut off or
mis-encoded) are not logged as our errors; slow clients are cut off at the header timeout.

Raw sockets, because an HTTP client library would not send what these tests send.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from helpers import auth
from tritontube.deps import build_deps
from tritontube.http.app import create_http_app
from tritontube.http.auth import mint_token
from tritontube.http.server import HardenedAppRunner
from tritontube.settings import HttpSettings, Settings

HEADER_TIMEOUT = 1.0
ClientFactory = Callable[..., Any]


class HardenedTestServer(TestServer):
    """aiohttp's TestServer running the app the way `tritontube api` does (no handler
    cancellation on disconnect, which TestServer would turn on)."""

    async def _make_runner(self, **kwargs: Any) -> HardenedAppRunner:
        kwargs.pop("handler_cancellation", None)
        return HardenedAppRunner(self.app, header_timeout=HEADER_TIMEOUT, **kwargs)


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    base = make_settings()
    return make_settings(
        http=HttpSettings(
            port=base.http.port,
            header_timeout_seconds=HEADER_TIMEOUT,
            body_timeout_seconds=HEADER_TIMEOUT,
        ),
        worker=base.worker,
    )


@pytest.fixture
async def server(settings: Settings) -> Any:
    srv = HardenedTestServer(create_http_app(settings, build_deps(settings)), host="127.0.0.1")
    await srv.start_server()
    try:
        yield srv
    finally:
        await srv.close()


async def exchange(port: int, raw: bytes, wait: float = 5.0) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        await writer.drain()
        chunks = []
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                chunk = await asyncio.wait_for(reader.read(65536), deadline - time.monotonic())
            except TimeoutError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        writer.close()


def parse(answer: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, body


def assert_problem(answer: bytes, status: int) -> dict[str, Any]:
    got, headers, body = parse(answer)
    assert got == status, answer[:500]
    assert headers["content-type"].startswith("application/problem+json"), answer[:500]
    doc: dict[str, Any] = json.loads(body)
    assert doc["status"] == status
    return doc


def no_errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert bad == [], [r.getMessage()[:300] for r in bad]


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n", 431),
        (b"POST /v1/videos:uploadURL HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: foo\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nBad Header\r\n\r\n", 400),
    ],
    ids=["long-request-line", "long-header", "unknown-transfer-encoding", "negative-length",
         "tls-on-http", "malformed-header"],
)  # fmt: skip
async def test_requests_the_parser_refuses_are_problems_not_errors(
    server: TestServer, caplog: pytest.LogCaptureFixture, raw: bytes, status: int
) -> None:
    caplog.set_level(logging.INFO)
    doc = assert_problem(await exchange(server.port, raw), status)
    assert doc["code"] == "BAD_REQUEST"
    assert "Traceback" not in json.dumps(doc)
    no_errors_logged(caplog)


async def test_a_body_in_a_broken_encoding_is_a_400_problem(
    server: TestServer, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    token = auth(settings)["Authorization"].encode()
    for encoding, body in ((b"gzip", b"{}"), (b"deflate", b"not deflate"), (b"br", b"\xff\xfe")):
        raw = (
            b"POST /v1/videos:uploadURL HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Authorization: " + token + b"\r\n"
            b"Content-Type: application/json\r\nContent-Encoding: " + encoding + b"\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        assert_problem(await exchange(server.port, raw), 400)
    # A correct encoding still works: the next step (validation) answers.
    good = gzip.compress(b'{"title": ""}')
    raw = (
        b"POST /v1/videos:uploadURL HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Authorization: " + token + b"\r\n"
        b"Content-Type: application/json\r\nContent-Encoding: gzip\r\n"
        b"Content-Length: " + str(len(good)).encode() + b"\r\n\r\n" + good
    )
    assert_problem(await exchange(server.port, raw), 422)
    await asyncio.sleep(0.2)  # the protocol's lingering read of the refused bodies
    no_errors_logged(caplog)


async def test_a_client_leaving_mid_body_is_not_logged_as_an_error(
    server: TestServer, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    token = auth(settings)["Authorization"].encode()
    _, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(
        b"POST /v1/videos:uploadURL HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Authorization: " + token + b"\r\n"
        b'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"title": "'
    )
    await writer.drain()
    await asyncio.sleep(0.3)  # the handler is waiting for the rest of the body
    writer.transport.abort()
    await asyncio.sleep(0.5)
    no_errors_logged(caplog)
    assert any("client fault" in r.getMessage() for r in caplog.records)


async def test_slow_headers_are_cut_off_at_the_header_timeout(server: TestServer) -> None:
    """slowloris: a header line every 0.3 s keeps the connection busy, never complete."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    started = time.monotonic()
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    closed_after = None
    try:
        for i in range(40):  # 12 s at most
            await asyncio.sleep(0.3)
            try:
                writer.write(f"X-Slow-{i}: y\r\n".encode())
                await writer.drain()
            except ConnectionError:
                closed_after = time.monotonic() - started
                break
            if reader.at_eof():
                closed_after = time.monotonic() - started
                break
            try:
                if await asyncio.wait_for(reader.read(1), 0.01) == b"":
                    closed_after = time.monotonic() - started
                    break
            except TimeoutError:
                pass
    finally:
        writer.close()
    assert closed_after is not None, "the slow connection is still open after 12 s"
    assert HEADER_TIMEOUT <= closed_after < HEADER_TIMEOUT + 2.5


async def test_a_body_sent_too_slowly_is_a_408_problem(
    server: TestServer, settings: Settings
) -> None:
    """slowloris on the body: complete headers, then a byte of the declared body now and
    then; the handler waits for it at most the body timeout."""
    token = mint_token(settings.auth, "alice")
    body = b'{"title": "slow", "fileName": "c.mp4", "contentType": "video/mp4", "sizeBytes": 9}'
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    started = time.monotonic()
    writer.write(
        b"POST /v1/videos:uploadURL HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: Bearer " + token.encode() + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
    )
    answer = b""
    try:
        for byte in body:
            writer.write(bytes([byte]))
            await writer.drain()
            try:
                answer = await asyncio.wait_for(reader.read(65536), 0.5)
            except TimeoutError:
                continue
            if answer:
                break
    except ConnectionError:
        pass
    finally:
        writer.close()
    took = time.monotonic() - started
    head, _, rest = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), answer[:300]
    assert b"application/problem+json" in head
    assert json.loads(rest)["code"] == "BODY_TIMEOUT"
    assert HEADER_TIMEOUT <= took < HEADER_TIMEOUT + 2.5


async def test_a_silent_connection_is_closed_and_a_normal_one_is_served(
    server: TestServer,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    started = time.monotonic()
    assert await asyncio.wait_for(reader.read(), HEADER_TIMEOUT + 3) == b""
    assert time.monotonic() - started >= HEADER_TIMEOUT * 0.9
    writer.close()
    # Keep-alive: two requests on one connection, the second after the first's timeout.
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        for _ in range(2):
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 200"), head
            length = int(next(
                line.split(b":")[1] for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            ))  # fmt: skip
            await reader.readexactly(length)
            await asyncio.sleep(HEADER_TIMEOUT * 0.6)
    finally:
        writer.close()
