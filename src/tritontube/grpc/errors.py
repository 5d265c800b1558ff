"""Problems as gRPC statuses: one status code per problem type, the details in
``google.rpc.Status`` (``grpc-status-details-bin``), as AIP-193 describes.

Every problem a use case raises (``tritontube.problems.Problem``) has a stable ``code`` (its
type), and :data:`STATUS_OF_PROBLEM` gives each exactly one gRPC status code. The details say
the rest, the way the problem document does over REST:

* ``google.rpc.ErrorInfo``: ``reason`` = the problem's ``code``, ``domain`` = ``tritontube``,
  ``metadata`` = ``httpStatus``, ``title`` and any extension member (``videoStatus``);
* ``google.rpc.BadRequest``: one field violation per invalid field (the problem's ``errors``,
  by the same wire names: ``pageSize``, ``events.0.occurredAt``);
* ``google.rpc.RetryInfo``: the ``Retry-After`` of 429 and 503;
* ``google.rpc.PreconditionFailure``: for a stale or missing etag.
"""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from tritontube.problems import Problem

DOMAIN = "tritontube"

#: The gRPC status of each problem type (the REST problem's ``code``).
STATUS_OF_PROBLEM: dict[str, grpc.StatusCode] = {
    "UNAUTHORIZED": grpc.StatusCode.UNAUTHENTICATED,
    "NOT_FOUND": grpc.StatusCode.NOT_FOUND,
    "NOT_OWNER": grpc.StatusCode.PERMISSION_DENIED,
    "VALIDATION": grpc.StatusCode.INVALID_ARGUMENT,
    "BAD_REQUEST": grpc.StatusCode.INVALID_ARGUMENT,
    "BAD_BODY": grpc.StatusCode.INVALID_ARGUMENT,
    "MALFORMED_JSON": grpc.StatusCode.INVALID_ARGUMENT,
    "BODY_TIMEOUT": grpc.StatusCode.DEADLINE_EXCEEDED,
    "MEDIA_TYPE": grpc.StatusCode.INVALID_ARGUMENT,
    "CONTENT_TYPE": grpc.StatusCode.INVALID_ARGUMENT,
    "SIZE_MISMATCH": grpc.StatusCode.INVALID_ARGUMENT,
    "CONTENT_TYPE_MISMATCH": grpc.StatusCode.INVALID_ARGUMENT,
    "NOT_VIDEO": grpc.StatusCode.INVALID_ARGUMENT,
    "TOO_LARGE": grpc.StatusCode.OUT_OF_RANGE,
    "RANGE": grpc.StatusCode.OUT_OF_RANGE,
    "IF_MATCH": grpc.StatusCode.FAILED_PRECONDITION,
    "ETAG_MISMATCH": grpc.StatusCode.ABORTED,
    "SESSION_EXPIRED": grpc.StatusCode.FAILED_PRECONDITION,
    "OBJECT_MISSING": grpc.StatusCode.FAILED_PRECONDITION,
    "NOT_PLAYABLE": grpc.StatusCode.FAILED_PRECONDITION,
    "NOT_RETRYABLE": grpc.StatusCode.FAILED_PRECONDITION,
    "UPLOAD_COMPLETED": grpc.StatusCode.FAILED_PRECONDITION,
    "PARTS_INCOMPLETE": grpc.StatusCode.FAILED_PRECONDITION,
    "UPLOAD_NOT_FOUND": grpc.StatusCode.NOT_FOUND,
    "MEDIA_URL_INVALID": grpc.StatusCode.PERMISSION_DENIED,
    "MEDIA_URL_EXPIRED": grpc.StatusCode.PERMISSION_DENIED,
    "CORS_ORIGIN": grpc.StatusCode.PERMISSION_DENIED,
    "RATE_LIMITED": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "UNAVAILABLE": grpc.StatusCode.UNAVAILABLE,
    "INTERNAL": grpc.StatusCode.INTERNAL,
}

#: A problem without a code (there should be none but the 500): by its HTTP status.
_STATUS_OF_HTTP: dict[int, grpc.StatusCode] = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    408: grpc.StatusCode.DEADLINE_EXCEEDED,
    409: grpc.StatusCode.FAILED_PRECONDITION,
    410: grpc.StatusCode.FAILED_PRECONDITION,
    412: grpc.StatusCode.ABORTED,
    413: grpc.StatusCode.OUT_OF_RANGE,
    415: grpc.StatusCode.INVALID_ARGUMENT,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    428: grpc.StatusCode.FAILED_PRECONDITION,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
}

_PRECONDITIONS = frozenset({"IF_MATCH", "ETAG_MISMATCH"})


def status_code(problem: Problem) -> grpc.StatusCode:
    if problem.code is not None and problem.code in STATUS_OF_PROBLEM:
        return STATUS_OF_PROBLEM[problem.code]
    return _STATUS_OF_HTTP.get(problem.status, grpc.StatusCode.INTERNAL)


def _packed(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def rich_status(problem: Problem) -> status_pb2.Status:
    """The ``google.rpc.Status`` of a problem (code, message, details)."""
    code = status_code(problem)
    reason = problem.code or code.name
    metadata = {"httpStatus": str(problem.status), "title": problem.title}
    for name, value in problem.extensions.items():
        if isinstance(value, str | int | float | bool):
            metadata[name] = str(value)
    details = [
        _packed(error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata=metadata))
    ]
    if problem.errors:
        violations = [
            error_details_pb2.BadRequest.FieldViolation(
                field=str(e.get("field", "")), description=str(e.get("message", ""))
            )
            for e in problem.errors
        ]
        details.append(_packed(error_details_pb2.BadRequest(field_violations=violations)))
    if problem.retry_after is not None:
        delay = duration_pb2.Duration(seconds=problem.retry_after)
        details.append(_packed(error_details_pb2.RetryInfo(retry_delay=delay)))
    if problem.code in _PRECONDITIONS:
        violation = error_details_pb2.PreconditionFailure.Violation(
            type=problem.code, subject="etag", description=problem.detail or problem.title
        )
        details.append(_packed(error_details_pb2.PreconditionFailure(violations=[violation])))
    return status_pb2.Status(
        code=code.value[0], message=problem.detail or problem.title, details=details
    )


def to_grpc_status(problem: Problem) -> grpc.Status:
    """What ``context.abort_with_status`` takes: the code, the message and the details."""
    return rpc_status.to_status(rich_status(problem))


def internal_error() -> Problem:
    """The one answer to a bug: no detail leaks."""
    return Problem(500, "Internal Server Error", code="INTERNAL")


__all__ = ["STATUS_OF_PROBLEM", "internal_error", "rich_status", "status_code", "to_grpc_status"]
