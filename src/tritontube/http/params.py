"""Query strings into the typed query models of ``tritontube.queries`` (422 problems)."""

from __future__ import annotations

from typing import TypeVar

from aiohttp import web
from pydantic import ValidationError

from tritontube.http.problems import ProblemError, validation_problem
from tritontube.queries import QueryModel

Q = TypeVar("Q", bound=QueryModel)


def parse_query(request: web.Request, model: type[Q]) -> Q:
    """``model`` validated from the request's query string.

    A parameter the model declares ``repeatable`` passes every value as a list; any other
    given more than once is refused (which of two ``pageSize`` values is meant?). Parameters
    the model does not declare are left out.
    """
    declared = {field.alias or name for name, field in model.model_fields.items()}
    data: dict[str, object] = {}
    repeated: list[dict[str, str]] = []
    for name in request.query:
        if name in data or name not in declared:
            continue
        values = request.query.getall(name)
        if name in model.repeatable:
            data[name] = values
        elif len(values) > 1:
            repeated.append({"field": name, "message": "given more than once"})
        else:
            data[name] = values[0]
    if repeated:
        names = ", ".join(e["field"] for e in repeated)
        raise ProblemError(
            422, "Invalid request", f"invalid field(s): {names}", code="VALIDATION", errors=repeated
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_problem(exc) from None
