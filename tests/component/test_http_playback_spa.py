"""The SPA is served without authentication, with versioned assets and a strict CSP."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tritontube.deps import build_deps
from tritontube.http.app import create_http_app
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


def test_vendored_dashjs_matches_the_pinned_npm_package() -> None:
    npm = REPO / "node_modules" / "dashjs" / "dist" / "modern" / "umd" / "dash.all.min.js"
    if not npm.is_file():
        pytest.skip("node_modules not installed (make setup runs npm ci)")
    assert (STATIC_DIR / "vendor" / "dash.all.min.js").read_bytes() == npm.read_bytes(), (
        "run `make vendor` after changing the dashjs version"
    )
