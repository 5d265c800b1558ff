"""Schemathesis's stateful phase against a real embedded stack: it follows the OpenAPI links
of the document (an upload session -> completeUpload -> transcodeStatus -> playbackInfo, and
the links it infers from the video paths), feeding each call the values the previous answer
returned, so the calls reach real sessions and videos instead of random ids.

Every answer must conform to the document (status code, content type, body, headers) and
no answer may be a 5xx other than a documented 503 with Retry-After. The stateless run over
every operation with the dependencies down is ``test_openapi_schemathesis.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck
from schemathesis import checks as st_checks

from tritontube.devstack.stack import EmbeddedStack
from tritontube.http.auth import mint_token
from tritontube.http.openapi import build_document
from tritontube.settings import RateLimitSettings, Settings

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(300)]

CHECKS = [
    st_checks.status_code_conformance,
    st_checks.content_type_conformance,
    st_checks.response_schema_conformance,
    st_checks.response_headers_conformance,
]


SESSION = {"contentType": "video/mp4", "fileName": "clip.mp4", "sizeBytes": 4096, "tags": []}


def _no_unexpected_5xx(response: Any) -> None:
    if response.status_code >= 500:
        assert response.status_code == 503, response.text
        assert response.headers.get("retry-after", [""])[0].isdigit(), response.headers


def test_linked_calls_against_a_real_stack_conform_and_never_fail(
    make_settings: Callable[..., Settings],
    stack_factory: Callable[..., EmbeddedStack],
) -> None:
    settings = make_settings(rate_limit=RateLimitSettings(enabled=False), transcode_agent=False)
    stack = stack_factory(settings, with_api=True)
    assert stack.wait_ready(timeout=90).get("ready")
    base_url = stack.public_url
    headers = {"Authorization": f"Bearer {mint_token(stack.settings.auth, 'stateful')}"}
    session = requests.Session()
    seen: dict[str, set[int]] = {}

    schema = schemathesis.openapi.from_dict(build_document())
    # Valid inputs and the signed-in user's own token: the point here is the chained calls
    # (the stateless run fuzzes inputs and tokens).
    schema.config.generation.update(
        modes=[schemathesis.GenerationMode.POSITIVE], with_security_parameters=False
    )

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def before_call(self, case: Any) -> None:
            case.headers = {**(case.headers or {}), **headers}
            if case.operation.label == "POST /v1/videos:uploadURL" and isinstance(case.body, dict):
                # The document allows any content type and file name the server may refuse
                # (415/422: the stateless run covers those); a session must start for the
                # chain to go on.
                case.body = {**case.body, **SESSION}

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": base_url, "session": session, "timeout": 20}

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            seen.setdefault(case.operation.label, set()).add(response.status_code)
            case.validate_response(response, checks=CHECKS)
            _no_unexpected_5xx(response)

    try:
        Workflow.run(
            settings=hypothesis.settings(
                max_examples=30,
                stateful_step_count=5,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
        )
    finally:
        session.close()
    print("\nstateful calls by operation and status:", {k: sorted(v) for k, v in seen.items()})
    # The links were followed: sessions were created and completed against real state (the
    # file was never uploaded, so completion answers 409), not only random ids' 404s.
    assert 200 in seen.get("POST /v1/videos:uploadURL", set()), seen
    completions = seen.get("POST /v1/videos:completeUpload", set())
    assert 409 in completions or 422 in completions, seen
