"""Validation of search, recommendations and watch-event requests: problem+json naming the
parameter, answered before any dependency (worker, broker, search) is contacted; and 503s
when a dependency is down (nothing listens on the configured ports)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from helpers import auth, problem
from tritontube.settings import Settings


def good_event(**change: Any) -> dict[str, Any]:
    return {
        "eventId": "e-1",
        "kind": "HEARTBEAT",
        "positionSeconds": 12.5,
        "occurredAt": datetime.now(UTC).isoformat(),
        **change,
    }


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"sort": "oldest"}, "sort"),
        ({"pageSize": "0"}, "pageSize"),
        ({"pageSize": "101"}, "pageSize"),
        ({"pageSize": "ten"}, "pageSize"),
        ({"q": "x" * 300}, "q"),
        ({"q": " ".join(["w"] * 17)}, "q"),
        ({"tags": ",".join(f"t{i}" for i in range(11))}, "tags"),
        ({"tags": "a,,b"}, "tags"),
        ({"owner": "  "}, "owner"),
        ({"pageToken": "x" * 3000}, "pageToken"),
        # int() reads all of these; a page size is written with the digits 0-9 only.
        ({"pageSize": "\u0661\u0662"}, "pageSize"),  # Arabic-Indic 12
        ({"pageSize": " 5"}, "pageSize"),
        ({"pageSize": "5 "}, "pageSize"),
        ({"pageSize": "+5"}, "pageSize"),
        ({"pageSize": "5_0"}, "pageSize"),
        ({"pageSize": "5.0"}, "pageSize"),
        ({"pageSize": "\u00b3"}, "pageSize"),  # superscript three
        ({"pageSize": ""}, "pageSize"),
        ({"pageSize": "1" * 40}, "pageSize"),
        # A malformed token is reported against pageToken, whatever the index's state.
        ({"pageToken": "no-dot-here"}, "pageToken"),
        ({"pageToken": "a.b\n"}, "pageToken"),
        ({"pageToken": "\u00e9.x"}, "pageToken"),
    ],
)
async def test_search_parameters_are_validated_and_named(
    client: TestClient,  # type: ignore[type-arg]
    settings: Settings,
    params: dict[str, str],
    field: str,
) -> None:
    resp = await client.get("/v1/videos:search", params=params, headers=auth(settings))
    body = await problem(resp, 422)
    assert [e["field"] for e in body["errors"]] == [field]


async def test_a_parameter_given_twice_is_refused_unless_it_may_repeat(
    client: TestClient,  # type: ignore[type-arg]
    settings: Settings,
) -> None:
    resp = await client.get("/v1/videos:search?pageSize=5&pageSize=6", headers=auth(settings))
    body = await problem(resp, 422)
    assert [e["field"] for e in body["errors"]] == ["pageSize"]
    # tags repeat; an unknown parameter (a cache buster) is ignored.
    resp = await client.get("/v1/videos:search?tags=a&tags=b&_=17", headers=auth(settings))
    assert resp.status in (200, 503), await resp.text()


async def test_search_needs_a_signed_in_user(client: TestClient) -> None:  # type: ignore[type-arg]
    await problem(await client.get("/v1/videos:search"), 401)
    await problem(await client.get("/v1/videos:recommendations"), 401)


async def test_search_without_a_backend_is_503_with_retry_after(
    client: TestClient,  # type: ignore[type-arg]
    settings: Settings,
) -> None:
    """The embedded index directory does not exist (no worker ever created it)."""
    resp = await client.get("/v1/videos:search", params={"q": "x"}, headers=auth(settings))
    if resp.status == 200:  # the index opened empty: still a well-formed answer
        assert await resp.json() == {"results": [], "nextPageToken": None}
        return
    await problem(resp, 503)
    assert resp.headers["Retry-After"]


async def test_foreign_page_tokens_are_rejected_naming_page_token(
    client: TestClient,  # type: ignore[type-arg]
    settings: Settings,
) -> None:
    resp = await client.get(
        "/v1/videos:search", params={"pageToken": "abc.def"}, headers=auth(settings)
    )
    if resp.status == 503:
        pytest.skip("no index to decode tokens against")  # pragma: no cover
    body = await problem(resp, 422)
    assert body["errors"][0]["field"] == "pageToken"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"videoId": "../etc"}, "videoId"),
        ({"pageSize": "51"}, "pageSize"),
        ({"pageSize": "\u0661\u0662"}, "pageSize"),
        ({"pageSize": " 5"}, "pageSize"),
        ({"pageSize": "0"}, "pageSize"),
    ],
)
async def test_recommendation_parameters_are_validated(
    client: TestClient,  # type: ignore[type-arg]
    settings: Settings,
    params: dict[str, str],
    field: str,
) -> None:
    resp = await client.get("/v1/videos:recommendations", params=params, headers=auth(settings))
    body = await problem(resp, 422)
    assert body["errors"][0]["field"] == field


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (good_event(eventId=""), "eventId"),
        (good_event(eventId="a b"), "eventId"),
        (good_event(kind="REWIND"), "kind"),
        (good_event(positionSeconds=-1), "positionSeconds"),
        (good_event(positionSeconds="12"), "positionSeconds"),  # a JSON number only
        (good_event(positionSeconds=True), "positionSeconds"),
        (good_event(positionSeconds=12), None),  # an integer is a number
        (good_event(occurredAt="2026-01-01T00:00:00"), "occurredAt"),  # naive
        (good_event(occurredAt="yesterday"), "occurredAt"),
        (good_event(surprise=1), "surprise"),
        ({"eventId": "e", "kind": "PLAY", "positionSeconds": 0}, "occurredAt"),
        ({"events": []}, "events"),
        ({"events": [good_event()] * 101}, "events"),
        ({"events": [good_event(), good_event(kind="NOPE")]}, "events.1.kind"),
    ],
)
async def test_watch_events_are_validated_before_any_dependency(
    client: TestClient,  # type: ignore[type-arg]
    settings: Settings,
    body: dict[str, Any],
    field: str | None,
) -> None:
    resp = await client.post("/v1/videos/v1/watchEvents", json=body, headers=auth(settings))
    if field is None:
        # Valid: the next step asks the worker, which is not running.
        await problem(resp, 503)
        return
    problem_body = await problem(resp, 422)
    assert field in [e["field"] for e in problem_body["errors"]]


@pytest.mark.parametrize("delta", [timedelta(hours=1), -timedelta(days=8)])
async def test_implausible_event_times_are_refused(
    client: TestClient,  # type: ignore[type-arg]
    settings: Settings,
    delta: timedelta,
) -> None:
    when = (datetime.now(UTC) + delta).isoformat()
    body = {"events": [good_event(), good_event(eventId="e-2", occurredAt=when)]}
    resp = await client.post("/v1/videos/v1/watchEvents", json=body, headers=auth(settings))
    problem_body = await problem(resp, 422)
    assert [e["field"] for e in problem_body["errors"]] == ["events.1.occurredAt"]


async def test_watch_events_need_json_and_a_user(
    client: TestClient,  # type: ignore[type-arg]
    settings: Settings,
) -> None:
    await problem(await client.post("/v1/videos/v1/watchEvents", json=good_event()), 401)
    resp = await client.post("/v1/videos/v1/watchEvents", data="not json", headers=auth(settings))
    await problem(resp, 415)
    resp = await client.post(
        "/v1/videos/v1/watchEvents",
        data="{",
        headers={**auth(settings), "Content-Type": "application/json"},
    )
    await problem(resp, 400)


async def test_worker_down_means_503_with_retry_after(
    client: TestClient,  # type: ignore[type-arg]
    settings: Settings,
) -> None:
    resp = await client.post("/v1/videos/v1/watchEvents", json=good_event(), headers=auth(settings))
    await problem(resp, 503)
    assert resp.headers["Retry-After"]
