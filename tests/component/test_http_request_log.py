"""Every request is one JSON log line with its id, route template, video id, status and time,
and every line written while handling it carries the same id."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from helpers import auth
from tritontube import logs
from tritontube.settings import Settings


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logs.formatter("json"))
    logger = logging.getLogger("tritontube")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield buffer
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def parsed(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


async def test_a_request_is_logged_with_its_id_route_and_video(
    client: TestClient,  # type: ignore[type-arg]
    settings: Settings,
    log_lines: io.StringIO,
) -> None:
    resp = await client.get(
        "/v1/videos/abc123/transcodeStatus",
        headers={**auth(settings), "X-Request-Id": "trace-0001"},
    )
    assert resp.status == 503  # no worker: still logged, still answered with the id
    assert resp.headers["X-Request-Id"] == "trace-0001"
    records = parsed(log_lines)
    (access,) = [r for r in records if r["event"] == "request"]
    assert access["request_id"] == "trace-0001"
    assert access["route"] == "/v1/videos/{video_id}/transcodeStatus"
    assert access["video_id"] == "abc123"
    assert access["status"] == 503 and access["duration_ms"] >= 0
    assert all(r.get("request_id") == "trace-0001" for r in records)


@pytest.mark.parametrize("given", [None, "short", "has space in it", "x" * 65])
async def test_a_missing_or_odd_request_id_is_replaced(
    client: TestClient,  # type: ignore[type-arg]
    log_lines: io.StringIO,
    given: str | None,
) -> None:
    headers = {"X-Request-Id": given} if given else {}
    resp = await client.get("/healthz", headers=headers)
    made = resp.headers["X-Request-Id"]
    assert made != given and len(made) == 32
    (access,) = [r for r in parsed(log_lines) if r["event"] == "request"]
    assert access["request_id"] == made and "video_id" not in access


async def test_unmatched_paths_are_logged_by_template_not_by_raw_path(
    client: TestClient,  # type: ignore[type-arg]
    log_lines: io.StringIO,
) -> None:
    await client.get("/no/such/%0aFORGED")
    (access,) = [r for r in parsed(log_lines) if r["event"] == "request"]
    assert access["route"] == "unmatched" and access["status"] == 404
    assert "FORGED" not in log_lines.getvalue()
