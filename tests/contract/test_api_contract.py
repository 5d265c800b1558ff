"""``proto/web.proto`` is the contract of both transports.

Every RPC's ``google.api.http`` annotation is a route the aiohttp app serves (method and
path template, ``{video_id}`` as the app names it) and an operation ``/openapi.json``
describes; every ``/v1`` route of the app is an RPC (nothing public is REST-only); every
problem type a use case can raise has exactly one gRPC status code. That the two transports
give the same answers on the same data is checked against a running stack in
``tests/e2e/test_api_grpc.py``.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import grpc
import pytest
from google.api import annotations_pb2, http_pb2

from tritontube.deps import build_deps
from tritontube.grpc.errors import STATUS_OF_PROBLEM, rich_status, status_code
from tritontube.http.app import create_http_app
from tritontube.http.openapi import build_document
from tritontube.problems import Problem
from tritontube.settings import Settings
from tritontube.v1 import web_pb2

SRC = Path(__file__).resolve().parents[2] / "src" / "tritontube"
SERVICE = web_pb2.DESCRIPTOR.services_by_name["Web"]
DESIGN_RPCS = {
    "CreateUploadURL",
    "CompleteUpload",
    "GetTranscodeStatus",
    "GetPlaybackInfo",
    "RecommendVideos",
    "SearchVideos",
}


@cache
def http_rules() -> dict[str, tuple[str, str, str]]:
    """RPC name -> (HTTP method, path template, body) of its annotation."""
    rules = {}
    for method in SERVICE.methods:
        rule = method.GetOptions().Extensions[annotations_pb2.http]
        assert isinstance(rule, http_pb2.HttpRule)
        verb = rule.WhichOneof("pattern")
        assert verb is not None, f"{method.name} has no google.api.http annotation"
        rules[method.name] = (verb.upper(), getattr(rule, verb), rule.body)
    return rules


@cache
def app_routes() -> frozenset[tuple[str, str]]:
    app = create_http_app(Settings(), build_deps(Settings()))
    return frozenset(
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    )


def test_the_service_has_the_designs_rpcs_each_with_a_rest_mapping() -> None:
    rules = http_rules()
    assert set(rules) >= DESIGN_RPCS
    assert {"UpdateVideo", "DeleteVideo", "RetryTranscode"} <= set(rules)
    assert rules["UpdateVideo"] == ("PATCH", "/v1/videos/{video_id}", "video")
    assert rules["DeleteVideo"] == ("DELETE", "/v1/videos/{video_id}", "")


@pytest.mark.parametrize("rpc", sorted(http_rules()))
def test_every_rpc_is_served_by_the_rest_app_and_described_in_openapi(rpc: str) -> None:
    verb, path, body = http_rules()[rpc]
    assert (verb, path) in app_routes(), f"{rpc}: the app serves no {verb} {path}"
    operations = build_document()["paths"].get(path, {})
    assert verb.lower() in operations, f"{rpc}: /openapi.json does not describe {verb} {path}"
    method = SERVICE.methods_by_name[rpc]
    # The path's variables are fields of the request message.
    for name in re.findall(r"{(\w+)}", path):
        assert name in method.input_type.fields_by_name, (rpc, name)
    if body not in ("", "*"):
        assert body in method.input_type.fields_by_name, (rpc, body)


def test_every_public_route_is_an_rpc() -> None:
    mapped = {(verb, path) for verb, path, _ in http_rules().values()}
    public = {(m, p) for m, p in app_routes() if p.startswith("/v1/")}
    assert public == mapped


def test_every_problem_type_raised_has_one_grpc_status() -> None:
    raised = set()
    for path in SRC.rglob("*.py"):
        raised |= set(re.findall(r'code="([A-Z_]+)"', path.read_text()))
        raised |= {f"MEDIA_URL_{r.upper()}" for r in ("invalid", "expired")}
    assert raised, "no problem codes found"
    assert raised <= set(STATUS_OF_PROBLEM), raised - set(STATUS_OF_PROBLEM)


@pytest.mark.parametrize(
    ("problem", "code"),
    [
        (Problem(404, "Not Found", code="NOT_FOUND"), grpc.StatusCode.NOT_FOUND),
        (Problem(412, "Precondition Failed", code="ETAG_MISMATCH"), grpc.StatusCode.ABORTED),
        (Problem(418, "Odd"), grpc.StatusCode.INTERNAL),
        (Problem(409, "Conflict"), grpc.StatusCode.FAILED_PRECONDITION),
    ],
)
def test_status_codes_by_problem_type_then_http_status(
    problem: Problem, code: grpc.StatusCode
) -> None:
    assert status_code(problem) == code
    status = rich_status(problem)
    assert status.code == code.value[0] and status.message == problem.title
