"""RFC 9457 problem details: every error the API returns is ``application/problem+json``."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from pydantic import ValidationError

from tritontube.logs import printable

log = logging.getLogger(__name__)

PROBLEM_TYPE = "application/problem+json"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def loggable_path(request: web.BaseRequest) -> str:
    """The request's path as the client sent it (still percent-encoded), made printable.

    Never log ``request.path``: it is decoded, so ``%0a`` in a URL would write the attacker's
    own line into the log.
    """
    return printable(request.rel_url.raw_path)


class ProblemError(Exception):
    """Raise to answer with a problem document."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        code: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.code = code
        self.errors = errors
        self.headers = dict(headers or {})


def problem_response(
    status: int,
    title: str,
    detail: str | None = None,
    *,
    code: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
    instance: str | None = None,
) -> web.Response:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if code:
        body["code"] = code
    if errors:
        body["errors"] = errors
    if instance:
        body["instance"] = instance
    return web.Response(
        status=status,
        text=json.dumps(body),
        content_type=PROBLEM_TYPE,
        headers=headers,
    )


def validation_problem(exc: ValidationError) -> ProblemError:
    errors = []
    for err in exc.errors(include_url=False, include_input=False):
        field = ".".join(str(p) for p in err["loc"]) or "body"
        errors.append({"field": field, "message": err["msg"]})
    names = ", ".join(e["field"] for e in errors)
    return ProblemError(
        422, "Invalid request", f"invalid field(s): {names}", code="VALIDATION", errors=errors
    )


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ProblemError as exc:
        return problem_response(
            exc.status,
            exc.title,
            exc.detail,
            code=exc.code,
            errors=exc.errors,
            headers=exc.headers,
            instance=request.path,
        )
    except ValidationError as exc:
        p = validation_problem(exc)
        return problem_response(
            p.status, p.title, p.detail, code=p.code, errors=p.errors, instance=request.path
        )
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
        return problem_response(
            exc.status,
            exc.reason,
            exc.text if exc.text != f"{exc.status}: {exc.reason}" else None,
            headers=headers,
            instance=request.path,
        )
    except (ConnectionError, web.RequestPayloadError, HttpProcessingError) as exc:
        # The client went away mid-body or sent a body its own headers do not describe (a
        # bad Content-Encoding, a short Content-Length): its fault, not an error of ours.
        log.info(
            "client fault on %s %s: %s",
            request.method,
            loggable_path(request),
            printable(str(exc) or type(exc).__name__),
        )
        return problem_response(
            400, "Bad Request", "the request body could not be read", code="BAD_BODY"
        )
    except Exception:  # the HTTP error boundary: log it, never leak a traceback
        log.exception("unhandled error on %s %s", request.method, loggable_path(request))
        return problem_response(500, "Internal Server Error", instance=request.path)
