"""Errors of the use cases, for every transport: RFC 9457 problems.

A use case raises :class:`Problem` with the HTTP status, a title and a stable ``code`` (the
problem's type, e.g. ``NOT_FOUND``, ``ETAG_MISMATCH``); the REST adapter answers it as
``application/problem+json`` (``http/problems.py``), the gRPC adapter as a status code with
``google.rpc.Status`` details (``grpc/errors.py``), one code for each problem type. Nothing
here knows either transport.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError


class Problem(Exception):
    """Raise to answer with a problem: ``status`` (HTTP), ``title``, ``code`` and details.

    ``errors`` names invalid fields (``[{"field", "message"}]``, wire names); ``headers`` are
    HTTP headers the answer carries (``Retry-After``, ``WWW-Authenticate``); ``extensions``
    are further members of the problem document (``videoStatus``).
    """

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        code: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
        extensions: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.code = code
        self.errors = errors
        self.headers = dict(headers or {})
        self.extensions = dict(extensions or {})

    @property
    def retry_after(self) -> int | None:
        """Seconds to wait before retrying, when the problem says so."""
        raw = self.headers.get("Retry-After")
        return int(raw) if raw is not None and raw.isdigit() else None


def not_found(detail: str = "no such video") -> Problem:
    return Problem(404, "Not Found", detail, code="NOT_FOUND")


def unavailable(what: str, exc: Exception | str, retry_after: int = 2) -> Problem:
    """503 + Retry-After: a backing service cannot answer (completely) now."""
    return Problem(
        503,
        "Service Unavailable",
        f"{what} unavailable: {exc}",
        code="UNAVAILABLE",
        headers={"Retry-After": str(retry_after)},
    )


def invalid(*fields: tuple[str, str]) -> Problem:
    """422 naming each ``(field, message)``."""
    errors = [{"field": f, "message": m} for f, m in fields]
    names = ", ".join(f for f, _ in fields)
    return Problem(
        422, "Invalid request", f"invalid field(s): {names}", code="VALIDATION", errors=errors
    )


def validation_problem(exc: ValidationError) -> Problem:
    """422 naming every field a pydantic model refused (by its wire name)."""
    fields = [
        (".".join(str(p) for p in err["loc"]) or "body", err["msg"])
        for err in exc.errors(include_url=False, include_input=False)
    ]
    return invalid(*fields)


def precondition_required(detail: str) -> Problem:
    return Problem(428, "Precondition Required", detail, code="IF_MATCH")


def etag_mismatch(detail: str) -> Problem:
    return Problem(412, "Precondition Failed", detail, code="ETAG_MISMATCH")
