"""Component fixtures: a fresh in-process API app per test, its services down.

A module overrides ``settings`` (or ``client``) where it needs other ones; the app's clients
point at ports nobody listens on unless a test starts something there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tritontube.deps import build_deps
from tritontube.http.app import create_http_app
from tritontube.settings import Settings

ClientFactory = Callable[..., Any]


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
async def client(aiohttp_client: ClientFactory, settings: Settings) -> TestClient:  # type: ignore[type-arg]
    return await aiohttp_client(create_http_app(settings, build_deps(settings)))
