"""Hostile and malformed HTTP input against the in-process app, services down.

Everything here is refused before any backing service is contacted (or refused because they
are down), so the app's clients point at ports nobody listens on.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from helpers import auth, problem
from tritontube.deps import build_deps
from tritontube.http.app import MAX_BODY_BYTES, create_http_app
from tritontube.http.auth import mint_token
from tritontube.http.openapi import build_document
from tritontube.http.ratelimit import Rate, TokenBuckets
from tritontube.settings import HttpSettings, RateLimitSettings, Settings

ClientFactory = Callable[..., Any]
ORIGIN = "https://app.example.org"


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    base = make_settings()
    return make_settings(
        http=HttpSettings(port=base.http.port, cors_origins=(ORIGIN,)),
        worker=base.worker,
        rate_limit=RateLimitSettings(
            upload_per_minute=60, upload_burst=3, watch_events_per_minute=60, watch_events_burst=5
        ),
    )


@pytest.fixture
async def client(aiohttp_client: ClientFactory, settings: Settings) -> TestClient:  # type: ignore[type-arg]
    return await aiohttp_client(create_http_app(settings, build_deps(settings)))


GOOD_UPLOAD = {"title": "t", "fileName": "a.mp4", "contentType": "video/mp4", "sizeBytes": 10}


# -- the OpenAPI document covers the whole app ----------------------------------------------


def test_every_registered_route_is_in_the_openapi_document(settings: Settings) -> None:
    app = create_http_app(settings, build_deps(settings))
    paths = build_document()["paths"]
    missing = []
    for route in app.router.routes():
        if route.method in ("HEAD", "OPTIONS"):
            continue
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter") or info.get("prefix", "")
        path = path.replace("{path:.+}", "{path}")
        if "prefix" in info:  # the static route
            path = path.rstrip("/") + "/{path}"
        if route.method.lower() not in paths.get(path, {}):
            missing.append(f"{route.method} {path}")
    assert missing == []


async def test_openapi_json_is_served_without_auth(client: TestClient) -> None:  # type: ignore[type-arg]
    resp = await client.get("/openapi.json")
    assert resp.status == 200
    doc = await resp.json()
    assert doc["openapi"].startswith("3.1")
    assert "/v1/videos:uploadURL" in doc["paths"]


# -- bodies: size, JSON bombs, huge numbers, wrong types --------------------------------------


async def test_oversize_body_is_413_problem(client: TestClient, settings: Settings) -> None:  # type: ignore[type-arg]
    body = b'{"title":"' + b"x" * (MAX_BODY_BYTES + 1) + b'"}'
    resp = await client.post(
        "/v1/videos:uploadURL",
        data=body,
        headers={**auth(settings), "Content-Type": "application/json"},
    )
    await problem(resp, 413)


@pytest.mark.parametrize(
    "raw",
    [
        "[" * 100_000 + "]" * 100_000,  # nesting bomb (within the size limit)
        '{"a":' * 50_000 + "1" + "}" * 50_000,
        '{"title": "\ud800"}',
        "{",
        "",
        "\x00\x01\x02",
    ],
    ids=["deep-array", "deep-object", "lone-surrogate", "truncated", "empty", "binary"],
)
async def test_json_bombs_and_garbage_are_4xx_never_500(
    client: TestClient,  # type: ignore[type-arg]
    settings: Settings,
    raw: str,
) -> None:
    resp = await client.post(
        "/v1/videos:uploadURL",
        data=raw.encode("utf-8", "surrogatepass"),
        headers={**auth(settings), "Content-Type": "application/json"},
    )
    assert 400 <= resp.status < 500, await resp.text()
    await problem(resp, resp.status)


@pytest.mark.parametrize(
    "size",
    ["1" + "0" * 4000, "1e999999", "-0", "1.5", "NaN", "Infinity", "9" * 5000],
)
async def test_huge_or_odd_numbers_are_refused_cleanly(
    client: TestClient,  # type: ignore[type-arg]
    settings: Settings,
    size: str,
) -> None:
    raw = (
        '{"title":"t","fileName":"a.mp4","contentType":"video/mp4","sizeBytes":' + size + "}"
    ).encode()
    resp = await client.post(
        "/v1/videos:uploadURL",
        data=raw,
        headers={**auth(settings), "Content-Type": "application/json"},
    )
    assert resp.status in (400, 413, 422), await resp.text()
    await problem(resp, resp.status)


async def test_watch_event_bombs_are_refused(client: TestClient, settings: Settings) -> None:  # type: ignore[type-arg]
    events = [
        {"eventId": f"e{i}", "kind": "PLAY", "positionSeconds": 1e308, "occurredAt": "x"}
        for i in range(500)
    ]
    resp = await client.post(
        "/v1/videos/abc/watchEvents", json={"events": events}, headers=auth(settings)
    )
    body = await problem(resp, 422)
    assert body["code"] == "VALIDATION"


# -- names, keys and ids: path traversal ------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["../../etc/passwd", "..", "a/../../b.mp4", "..\\..\\win.ini", "x\x00.mp4", "a\r\nX: y.mp4"],
)
async def test_path_traversal_in_file_names_is_422(
    client: TestClient,  # type: ignore[type-arg]
    settings: Settings,
    name: str,
) -> None:
    resp = await client.post(
        "/v1/videos:uploadURL", json={**GOOD_UPLOAD, "fileName": name}, headers=auth(settings)
    )
    body = await problem(resp, 422)
    assert body["errors"][0]["field"] == "fileName"


@pytest.mark.parametrize(
    "path",
    [
        "/v1/videos/..%2F..%2Fetc%2Fpasswd/transcodeStatus",
        "/v1/videos/%2e%2e/playbackInfo",
        "/v1/videos/a%00b/transcodeStatus",
        "/v1/videos/" + "a" * 65 + "/playbackInfo",
        "/media/tok/..%2F..%2Fsecret/manifest.mpd",
        "/media/tok/vid/..%2F..%2F..%2Fetc%2Fpasswd",
        "/static/..%2F..%2F..%2Fsettings.py",
        "/static/../../../settings.py",
    ],
)
async def test_path_traversal_in_urls_never_reaches_a_file(
    client: TestClient,  # type: ignore[type-arg]
    settings: Settings,
    path: str,
) -> None:
    resp = await client.get(path, headers=auth(settings))
    assert resp.status in (400, 403, 404), await resp.text()
    text = await resp.text()
    assert "root:" not in text and "BaseSettings" not in text


# -- headers: CR/LF injection, security headers, CORS -----------------------------------------


async def _raw_http(host: str, port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(65536), 5)
    finally:
        writer.close()
        await writer.wait_closed()


async def test_crlf_in_request_headers_is_rejected_and_never_echoed(
    client: TestClient,  # type: ignore[type-arg]
    settings: Settings,
) -> None:
    token = mint_token(settings.auth, "alice")
    raw = (
        b"POST /v1/videos:completeUpload HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: Bearer " + token.encode() + b"\r\n"
        b'If-Match: "abc\rSet-Cookie: pwned=1"\r\n'
        b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    )
    answer = await _raw_http(client.host, client.port, raw)
    head = answer.split(b"\r\n\r\n", 1)[0]
    assert head.split(b"\r\n")[0].endswith(b" 400 Bad Request"), head
    assert b"pwned" not in head


async def test_etag_lookalike_with_encoded_newlines_is_not_reflected(
    client: TestClient,  # type: ignore[type-arg]
    settings: Settings,
) -> None:
    resp = await client.post(
        "/v1/videos:completeUpload",
        json={"videoId": "abc"},
        headers={**auth(settings), "If-Match": '"x%0d%0aSet-Cookie:%20pwned=1"'},
    )
    assert resp.status in (404, 503)
    assert "Set-Cookie" not in resp.headers
    assert all("pwned" not in v for v in resp.headers.values())


async def test_security_headers_on_json_problems_and_spa(client: TestClient) -> None:  # type: ignore[type-arg]
    for path, status in (("/healthz", 200), ("/v1/videos:search", 401), ("/nope", 404)):
        resp = await client.get(path)
        assert resp.status == status
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["X-Frame-Options"] == "DENY"
        assert resp.headers["Referrer-Policy"] == "no-referrer"
        assert "default-src 'none'" in resp.headers["Content-Security-Policy"]


async def test_cors_allows_only_configured_origins(
    client: TestClient,  # type: ignore[type-arg]
    settings: Settings,
) -> None:
    ok = await client.get("/healthz", headers={"Origin": ORIGIN})
    assert ok.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Origin" in ok.headers["Vary"]
    assert "Access-Control-Allow-Credentials" not in ok.headers
    evil = await client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert evil.status == 200
    assert "Access-Control-Allow-Origin" not in evil.headers
    pre = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization",
    }
    good_pre = await client.options("/v1/videos:uploadURL", headers={"Origin": ORIGIN, **pre})
    assert good_pre.status == 204
    assert good_pre.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Authorization" in good_pre.headers["Access-Control-Allow-Headers"]
    bad_pre = await client.options(
        "/v1/videos:uploadURL", headers={"Origin": "https://evil.example", **pre}
    )
    await problem(bad_pre, 403)
    assert "Access-Control-Allow-Origin" not in bad_pre.headers
    # "null" (sandboxed iframes, file://) and look-alike origins are not on the list either.
    for origin in ("null", ORIGIN + ".evil.example", ORIGIN.replace("https", "http")):
        resp = await client.get("/healthz", headers={"Origin": origin})
        assert "Access-Control-Allow-Origin" not in resp.headers


async def test_no_cors_headers_when_no_origin_is_configured(
    aiohttp_client: ClientFactory, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings()
    client = await aiohttp_client(create_http_app(settings, build_deps(settings)))
    resp = await client.get("/healthz", headers={"Origin": "http://127.0.0.1:1234"})
    assert "Access-Control-Allow-Origin" not in resp.headers


# -- rate limits -------------------------------------------------------------------------------


async def test_upload_rate_limit_is_per_user_with_retry_after(
    client: TestClient,  # type: ignore[type-arg]
    settings: Settings,
) -> None:
    bad = {**GOOD_UPLOAD, "sizeBytes": 0}  # refused by validation: never reaches a service
    statuses = []
    for _ in range(5):
        resp = await client.post("/v1/videos:uploadURL", json=bad, headers=auth(settings))
        statuses.append(resp.status)
        last = resp
    assert statuses == [422, 422, 422, 429, 429]
    body = await problem(last, 429)
    assert body["code"] == "RATE_LIMITED"
    assert 1 <= int(last.headers["Retry-After"]) <= 60
    # completeUpload shares the upload budget; another user has a budget of their own.
    resp = await client.post(
        "/v1/videos:completeUpload", json={}, headers={**auth(settings), "If-Match": '"x"'}
    )
    assert resp.status == 429
    other = await client.post("/v1/videos:uploadURL", json=bad, headers=auth(settings, "bob"))
    assert other.status == 422
    # Reads are not limited.
    search = await client.get("/v1/videos:search?sort=nope", headers=auth(settings))
    assert search.status == 422


async def test_watch_event_rate_limit(client: TestClient, settings: Settings) -> None:  # type: ignore[type-arg]
    statuses = [
        (await client.post("/v1/videos/abc/watchEvents", json={}, headers=auth(settings))).status
        for _ in range(7)
    ]
    assert statuses == [422] * 5 + [429] * 2


def test_token_bucket_refills_and_evicts() -> None:
    now = [0.0]
    buckets = TokenBuckets(Rate(per_second=2.0, burst=2), max_keys=2, clock=lambda: now[0])
    assert [buckets.take("a") for _ in range(2)] == [0.0, 0.0]
    assert buckets.take("a") == pytest.approx(0.5)
    now[0] += 0.5
    assert buckets.take("a") == 0.0
    buckets.take("b")
    buckets.take("c")
    assert len(buckets) == 2  # "a" was least recently used


async def test_unauthenticated_requests_do_not_spend_anyones_budget(
    client: TestClient,  # type: ignore[type-arg]
    settings: Settings,
) -> None:
    for _ in range(10):
        resp = await client.post("/v1/videos:uploadURL", json=GOOD_UPLOAD)
        await problem(resp, 401)
    resp = await client.post(
        "/v1/videos:uploadURL", json={**GOOD_UPLOAD, "sizeBytes": 0}, headers=auth(settings)
    )
    assert resp.status == 422


# -- slow clients --------------------------------------------------------------------------------


async def test_slowloris_connection_does_not_block_other_clients(
    settings: Settings,
) -> None:
    """A client trickling its headers holds one connection, not the server."""
    app = create_http_app(settings, build_deps(settings))
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    site = web.SockSite(runner, sock)
    await site.start()
    slow: list[asyncio.StreamWriter] = []
    try:
        for _ in range(20):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"POST /v1/videos:uploadURL HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            await writer.drain()
            slow.append(writer)
        started = time.monotonic()
        answer = await _raw_http("127.0.0.1", port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 200")
        assert time.monotonic() - started < 2.0
        # A body that never arrives: the handler waits for it without blocking the loop.
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"POST /v1/videos:uploadURL HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + mint_token(settings.auth, "slow").encode() + b"\r\n"
            b"Content-Length: 1000\r\n\r\n{"
        )
        await writer.drain()
        slow.append(writer)
        answer = await _raw_http("127.0.0.1", port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 200")
    finally:
        for writer in slow:
            writer.close()
        await runner.cleanup()
