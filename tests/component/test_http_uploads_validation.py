"""Handler validation and errors of the upload endpoints: problem+json naming the field.

Validation happens before any dependency is contacted, so these run without services (the
app's clients point at ports nobody listens on and are never used by these requests).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from aiohttp.test_utils import TestClient

from helpers import auth, problem
from tritontube.settings import Settings, UploadSettings

GOOD = {
    "title": "Zebra crossing",
    "description": "",
    "tags": ["street"],
    "fileName": "clip.mp4",
    "contentType": "video/mp4",
    "sizeBytes": 1000,
}


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(upload=UploadSettings(max_size_bytes=10_000))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"title": ""}, "title"),
        ({"title": "   "}, "title"),
        ({"title": 42}, "title"),
        ({"sizeBytes": "1000"}, "sizeBytes"),
        ({"sizeBytes": 0}, "sizeBytes"),
        ({"sizeBytes": -5}, "sizeBytes"),
        ({"tags": ["x"] * 21}, "tags"),
        ({"tags": ["a" * 41]}, "tags"),
        ({"tags": "street"}, "tags"),
        ({"fileName": "../../etc/passwd"}, "fileName"),
        ({"fileName": ""}, "fileName"),
        ({"visibility": "secret"}, "visibility"),
        ({"surprise": True}, "surprise"),
    ],
)
async def test_invalid_fields_are_named_in_a_422_problem(
    client: TestClient,  # type: ignore[type-arg]
    settings: Settings,
    change: dict[str, Any],
    field: str,
) -> None:
    resp = await client.post(
        "/v1/videos:uploadURL", json={**GOOD, **change}, headers=auth(settings)
    )
    body = await problem(resp, 422)
    assert field in [e["field"] for e in body["errors"]]


async def test_missing_required_fields_are_all_named(
    client: TestClient, settings: Settings
) -> None:  # type: ignore[type-arg]
    resp = await client.post("/v1/videos:uploadURL", json={}, headers=auth(settings))
    body = await problem(resp, 422)
    assert {"title", "fileName", "contentType", "sizeBytes"} <= {e["field"] for e in body["errors"]}


async def test_oversize_upload_is_refused_with_413(client: TestClient, settings: Settings) -> None:  # type: ignore[type-arg]
    resp = await client.post(
        "/v1/videos:uploadURL", json={**GOOD, "sizeBytes": 10_001}, headers=auth(settings)
    )
    body = await problem(resp, 413)
    assert body["errors"][0]["field"] == "sizeBytes"


@pytest.mark.parametrize("ctype", ["application/pdf", "text/plain", "video/x-unknown", "image/png"])
async def test_disallowed_content_type_is_refused_with_415(
    client: TestClient,
    settings: Settings,
    ctype: str,  # type: ignore[type-arg]
) -> None:
    resp = await client.post(
        "/v1/videos:uploadURL", json={**GOOD, "contentType": ctype}, headers=auth(settings)
    )
    body = await problem(resp, 415)
    assert body["errors"][0]["field"] == "contentType"


@pytest.mark.parametrize(
    "raw", [b"{not json", b"", b"[1,2]", b'"text"', b"[" * 10000 + b"]" * 10000, b"\xff\xfe"]
)
async def test_malformed_bodies_are_4xx_problems(
    client: TestClient,
    settings: Settings,
    raw: bytes,  # type: ignore[type-arg]
) -> None:
    resp = await client.post(
        "/v1/videos:uploadURL",
        data=raw,
        headers={**auth(settings), "Content-Type": "application/json"},
    )
    assert 400 <= resp.status < 500
    assert resp.content_type == "application/problem+json"


async def test_wrong_content_type_is_415(client: TestClient, settings: Settings) -> None:  # type: ignore[type-arg]
    resp = await client.post("/v1/videos:uploadURL", data="title=x", headers=auth(settings))
    await problem(resp, 415)


async def test_body_larger_than_the_limit_is_413(client: TestClient, settings: Settings) -> None:  # type: ignore[type-arg]
    huge = {**GOOD, "description": "x" * 300_000}
    resp = await client.post("/v1/videos:uploadURL", json=huge, headers=auth(settings))
    assert resp.status == 413
    assert resp.content_type == "application/problem+json"


async def test_missing_token_is_401(client: TestClient) -> None:  # type: ignore[type-arg]
    resp = await client.post("/v1/videos:uploadURL", json=GOOD)
    body = await problem(resp, 401)
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert body["code"] == "UNAUTHORIZED"


@pytest.mark.parametrize("kind", ["garbage", "wrong-secret", "expired", "no-sub", "alg-none"])
async def test_invalid_tokens_are_401(
    client: TestClient,
    settings: Settings,
    kind: str,  # type: ignore[type-arg]
) -> None:
    now = int(time.time())
    secret = settings.auth.secret.get_secret_value()
    claims = {"sub": "alice", "iss": settings.auth.issuer, "iat": now, "exp": now + 60}
    token = {
        "garbage": "not.a.token",
        "wrong-secret": jwt.encode(claims, "another-secret-another-secret-xx", algorithm="HS256"),
        "expired": jwt.encode({**claims, "exp": now - 10}, secret, algorithm="HS256"),
        "no-sub": jwt.encode({k: v for k, v in claims.items() if k != "sub"}, secret, "HS256"),
        "alg-none": jwt.encode(claims, None, algorithm="none"),
    }[kind]
    resp = await client.post(
        "/v1/videos:uploadURL", json=GOOD, headers={"Authorization": f"Bearer {token}"}
    )
    await problem(resp, 401)


async def test_complete_upload_needs_if_match(client: TestClient, settings: Settings) -> None:  # type: ignore[type-arg]
    resp = await client.post(
        "/v1/videos:completeUpload", json={"videoId": "abc"}, headers=auth(settings)
    )
    body = await problem(resp, 428)
    assert body["code"] == "IF_MATCH"


@pytest.mark.parametrize("video_id", ["", "../x", "a" * 65, 5])
async def test_complete_upload_validates_the_video_id(
    client: TestClient,
    settings: Settings,
    video_id: object,  # type: ignore[type-arg]
) -> None:
    resp = await client.post(
        "/v1/videos:completeUpload",
        json={"videoId": video_id},
        headers={**auth(settings), "If-Match": '"tag"'},
    )
    body = await problem(resp, 422)
    assert body["errors"][0]["field"] == "videoId"


async def test_unknown_route_is_a_404_problem(client: TestClient, settings: Settings) -> None:  # type: ignore[type-arg]
    resp = await client.get("/v1/nothing-here", headers=auth(settings))
    await problem(resp, 404)


async def test_wrong_method_is_a_405_problem_with_allow(
    client: TestClient, settings: Settings
) -> None:  # type: ignore[type-arg]
    resp = await client.get("/v1/videos:uploadURL", headers=auth(settings))
    await problem(resp, 405)
    assert "POST" in resp.headers["Allow"]


async def test_healthz_needs_no_token(client: TestClient) -> None:  # type: ignore[type-arg]
    resp = await client.get("/healthz")
    assert resp.status == 200
    assert (await resp.json())["status"] == "ok"


async def test_readyz_names_every_failing_dependency(client: TestClient) -> None:  # type: ignore[type-arg]
    # No broker, object store or worker listens on this app's ports.
    resp = await client.get("/readyz")
    assert resp.status == 503
    body = await resp.json()
    assert {"broker", "objectStore", "worker"} <= set(body["failing"])
    assert resp.headers["Retry-After"]
