"""The SPA is served without authentication, with versioned assets and a strict CSP."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from helpers import problem
from tritontube.deps import build_deps
from tritontube.http.app import create_http_app
from tritontube.http.problems import problem_middleware
from tritontube.http.spa import STATIC_DIR
from tritontube.settings import S3Settings, Settings

ClientFactory = Callable[..., Any]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
async def client(
    aiohttp_client: ClientFactory, make_settings: Callable[..., Settings]
) -> TestClient:  # type: ignore[type-arg]
    settings = make_settings(
        s3=S3Settings(
            endpoint_url="http://127.0.0.1:9", public_endpoint_url="http://media.example:4569"
        )
    )
    return await aiohttp_client(create_http_app(settings, build_deps(settings)))


async def test_index_needs_no_token_and_versions_its_assets(client: TestClient) -> None:  # type: ignore[type-arg]
    resp = await client.get("/")
    assert resp.status == 200
    assert resp.content_type == "text/html"
    html = await resp.text()
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert len(assets) == 3
    assert all(re.search(r"\?v=[0-9a-f]{12}$", a) for a in assets), assets
    for asset in assets:
        got = await client.get(asset)
        assert got.status == 200, asset
        assert len(await got.read()) > 100


async def test_csp_allows_the_object_store_for_uploads_only_where_needed(
    client: TestClient,  # type: ignore[type-arg]
) -> None:
    csp = (await client.get("/")).headers["Content-Security-Policy"]
    policy = dict(part.strip().split(" ", 1) for part in csp.split(";"))
    assert policy["script-src"] == "'self'"
    assert policy["connect-src"] == "'self' http://media.example:4569"
    assert "blob:" in policy["media-src"]


async def test_api_routes_still_need_a_token(client: TestClient) -> None:  # type: ignore[type-arg]
    assert (await client.get("/v1/videos?owner=me")).status == 401


async def test_static_files_cannot_escape_their_folder(client: TestClient) -> None:  # type: ignore[type-arg]
    resp = await client.get("/static/..%2f..%2fsettings.py")
    assert resp.status in (403, 404)


@pytest.mark.parametrize(
    "path",
    [
        "/static/" + "a" * 300,  # longer than a file name may be (was a 500 and a traceback)
        "/static/" + "a" * 300 + "%0aFORGED LINE",
        "/static/" + "/".join(["d" * 200] * 30),  # longer than a path may be
        "/static/nope.js",  # was an empty application/octet-stream 404
        "/static/vendor",
        "/static/vendor/",
        "/static/vendor/nope.js",
        "/static/%00",
        "/static/..%2f..%2fsettings.py",
    ],
)
async def test_every_static_miss_is_a_404_problem_and_no_error(
    client: TestClient,  # type: ignore[type-arg]
    caplog: pytest.LogCaptureFixture,
    path: str,
) -> None:
    resp = await client.get(path)
    body = await problem(resp, 404)
    assert body["code"] == "NOT_FOUND"
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_static_files_still_serve_ranges_and_heads(client: TestClient) -> None:  # type: ignore[type-arg]
    resp = await client.get("/static/app.js", headers={"Range": "bytes=0-9"})
    assert resp.status == 206
    assert len(await resp.read()) == 10
    head = await client.head("/static/vendor/dash.all.min.js")
    assert head.status == 200
    assert int(head.headers["Content-Length"]) > 100_000


async def test_logs_never_carry_a_request_path_with_control_characters(
    aiohttp_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """An error on a path with ``%0a`` must not let the client write its own log line."""

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("a bug")

    app = web.Application(middlewares=[problem_middleware])
    app.router.add_get("/boom/{rest}", boom)
    client = await aiohttp_client(app)
    forged = "%0a2030-01-01 INFO tritontube: FORGED%0d%1b[31m%e2%80%a8"
    caplog.set_level(logging.INFO)
    resp = await client.get(f"/boom/{forged}")
    await problem(resp, 500)
    messages = [r.getMessage() for r in caplog.records]
    assert any("/boom/" in m for m in messages), messages
    for message in messages:
        assert not re.search(r"[\x00-\x1f\x7f\u2028]", message), repr(message)


def test_vendored_dashjs_matches_the_pinned_npm_package() -> None:
    npm = REPO / "node_modules" / "dashjs" / "dist" / "modern" / "umd" / "dash.all.min.js"
    if not npm.is_file():
        pytest.skip("node_modules not installed (make setup runs npm ci)")
    assert (STATIC_DIR / "vendor" / "dash.all.min.js").read_bytes() == npm.read_bytes(), (
        "run `make vendor` after changing the dashjs version"
    )
