"""The query models (``tritontube.queries``) on their own: what a query string and what a
typed transport (gRPC hands over real integers) may send, and the OpenAPI document built
from them."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from tritontube.http.openapi import build_document
from tritontube.queries import QueryModel, RecommendationsParams, SearchParams


def locations(model: type[QueryModel], data: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return [".".join(str(p) for p in e["loc"]) for e in caught.value.errors()]


@pytest.mark.parametrize(
    "value",
    [
        "\u0661\u0662",
        " 5",
        "5 ",
        "+5",
        "-5",
        "5_0",
        "5.0",
        "0x5",
        "\u00b3",
        "",
        "1" * 10,
        True,
        5.0,
    ],
)
def test_page_size_is_digits_or_an_integer_never_anything_int_would_read(value: Any) -> None:
    assert locations(SearchParams, {"pageSize": value}) == ["pageSize"]


def test_page_size_from_text_and_from_a_typed_transport() -> None:
    assert SearchParams.model_validate({"pageSize": "007"}).page_size == 7
    assert SearchParams.model_validate({"pageSize": 7}).page_size == 7
    assert RecommendationsParams.model_validate({"pageSize": 50}).page_size == 50
    assert locations(RecommendationsParams, {"pageSize": 51}) == ["pageSize"]


def test_tags_split_trim_lowercase_and_dedupe() -> None:
    params = SearchParams.model_validate({"tags": ["Cats, dogs", "cats", " Birds "]})
    assert params.tags == ("cats", "dogs", "birds")
    assert SearchParams.model_validate({"tags": "a,b"}).tags == ("a", "b")
    assert locations(SearchParams, {"tags": ["a,,b"]}) == ["tags"]
    assert locations(SearchParams, {"tags": [",".join(f"t{i}" for i in range(11))]}) == ["tags"]
    assert locations(SearchParams, {"tags": ["x" * 65]}) == ["tags"]


def test_blank_optional_parameters_are_absent_ones() -> None:
    assert SearchParams.model_validate({"pageToken": ""}).page_token is None
    assert RecommendationsParams.model_validate({"videoId": ""}).video_id is None
    assert locations(RecommendationsParams, {"videoId": "../x"}) == ["videoId"]


def test_owner_me_is_the_signed_in_user() -> None:
    query = SearchParams.model_validate({"owner": " me "}).to_search_query("alice")
    assert query.owner == "alice"
    assert SearchParams.model_validate({"owner": "bob"}).to_search_query("alice").owner == "bob"
    assert locations(SearchParams, {"owner": "   "}) == ["owner"]


def test_models_are_immutable_and_ignore_unknown_parameters() -> None:
    params = SearchParams.model_validate({"q": "cats", "_": "1712"})
    with pytest.raises(ValidationError):
        params.q = "dogs"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("path", "model"),
    [("/v1/videos:search", SearchParams), ("/v1/videos:recommendations", RecommendationsParams)],
)
def test_the_openapi_document_states_the_models_rules(path: str, model: type[QueryModel]) -> None:
    documented = {p["name"]: p for p in build_document()["paths"][path]["get"]["parameters"]}
    fields = {f.alias or n: f for n, f in model.model_fields.items()}
    assert set(documented) == set(fields)
    size = documented["pageSize"]["schema"]
    assert size["type"] == "integer"
    assert (size["minimum"], size["maximum"]) == (1, 100 if model is SearchParams else 50)
