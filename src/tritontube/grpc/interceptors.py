"""What every call of ``tritontube.v1.Web`` passes through before and after its servicer.

:class:`ApiInterceptor` wraps each method of the service (health checking and reflection are
left alone: load balancers and generic tools call them without a token):

* binds the call's log context (``request_id`` from ``x-request-id`` metadata when it is a
  plain token, else a new one; ``method``) and writes one ``request`` line with the status;
* checks the bearer token of the ``authorization`` metadata, exactly as the REST API checks
  its header (``tritontube.tokens``), and makes the user the servicer's :func:`current_user`;
* spends a token of the caller's rate-limit scope (``tritontube.ratelimit``);
* turns a :class:`~tritontube.problems.Problem` (or a pydantic ``ValidationError``, which is a
  422 problem) into its status code with ``google.rpc.Status`` details (``grpc/errors.py``), and
  anything else into INTERNAL without leaking it.
"""

from __future__ import annotations

import contextvars
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import structlog
from pydantic import ValidationError

from tritontube import tokens
from tritontube.grpc.errors import internal_error, status_code, to_grpc_status
from tritontube.problems import Problem, validation_problem
from tritontube.ratelimit import RateLimiter
from tritontube.settings import AuthSettings
from tritontube.v1 import web_pb2

log = logging.getLogger("tritontube.grpc.access")

SERVICE = web_pb2.DESCRIPTOR.services_by_name["Web"].full_name
#: Rate-limit scope of each method (as ``http/ratelimit.py`` has it for the routes).
SCOPED_METHODS: dict[str, str] = {
    "CreateUploadURL": "upload",
    "CompleteUpload": "upload",
    "UpdateVideo": "upload",
    "DeleteVideo": "upload",
    "RetryTranscode": "upload",
    "SendWatchEvents": "watch",
}
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")
_USER: contextvars.ContextVar[str] = contextvars.ContextVar("tritontube_grpc_user")

Behaviour = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]


def current_user() -> str:
    """The user whose token the running call carries (set by :class:`ApiInterceptor`)."""
    try:
        return _USER.get()
    except LookupError:
        raise tokens.unauthorized("missing bearer token") from None


def _metadata(context: grpc.aio.ServicerContext, name: str) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == name and isinstance(value, str):
            return value
    return ""


class ApiInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, auth: AuthSettings, limiter: RateLimiter) -> None:
        self._auth = auth
        self._limiter = limiter

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        service, _, name = details.method.lstrip("/").partition("/")
        if handler is None or service != SERVICE or handler.unary_unary is None:
            return handler
        return grpc.unary_unary_rpc_method_handler(
            self._wrap(name, handler.unary_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _wrap(self, name: str, inner: Behaviour) -> Behaviour:
        scope = SCOPED_METHODS.get(name)

        async def behaviour(request: Any, context: grpc.aio.ServicerContext) -> Any:
            given = _metadata(context, "x-request-id")
            structlog.contextvars.clear_contextvars()
            structlog.contextvars.bind_contextvars(
                request_id=given if _CLIENT_ID.match(given) else uuid.uuid4().hex,
                method=name,
                transport="grpc",
            )
            started = time.perf_counter()
            problem: Problem | None = None
            try:
                user = tokens.bearer_user(_metadata(context, "authorization"), self._auth)
                _USER.set(user)
                if scope is not None:
                    self._limiter.check(scope, user)
                response = await inner(request, context)
            except Problem as exc:
                problem = exc
            except ValidationError as exc:
                problem = validation_problem(exc)
            except Exception:  # the gRPC error boundary: log it, never leak it
                log.exception("unhandled error in %s", name)
                problem = internal_error()
            code = grpc.StatusCode.OK if problem is None else status_code(problem)
            elapsed = time.perf_counter() - started
            log.info(
                "request",
                extra={"status": code.name, "duration_ms": round(1000 * elapsed, 2)},
            )
            if problem is not None:
                await context.abort_with_status(to_grpc_status(problem))
            return response

        return behaviour
