from __future__ import annotations

import pytest

from tritontube.indexer.query import (
    InvalidQueryError,
    SearchQuery,
    fingerprint,
    fuzziness,
    tokenize,
)


def test_defaults_are_a_first_relevance_page() -> None:
    query = SearchQuery(q="cats")
    assert (query.sort, query.page_size, query.page_token, query.tags) == (
        "relevance",
        20,
        None,
        (),
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"page_size": 0},
        {"page_size": 101},
        {"page_size": True},
        {"sort": "oldest"},
        {"q": "x" * 257},
        {"q": " ".join(["w"] * 17)},
        {"tags": ("",)},
        {"tags": ("x" * 65,)},
        {"tags": tuple(f"t{i}" for i in range(11))},
        {"tags": ["list-not-tuple"]},
        {"owner": "  "},
        {"page_token": ""},
        {"page_token": "x" * 2049},
    ],
)
def test_invalid_queries_are_rejected(kwargs: dict[str, object]) -> None:
    params: dict[str, object] = {"q": "cats", **kwargs}
    with pytest.raises(InvalidQueryError):
        SearchQuery(**params)  # type: ignore[arg-type]


@pytest.mark.parametrize("page_size", [1, 100])
def test_page_size_bounds_are_inclusive(page_size: int) -> None:
    assert SearchQuery(q="", page_size=page_size).page_size == page_size


def test_tokenize_folds_case_and_accents_and_keeps_inner_punctuation() -> None:
    assert tokenize("Crème BRÛLÉE, zebra-crossing don't 3.5") == [
        "creme",
        "brulee",
        "zebra",
        "crossing",
        "don't",
        "3.5",
    ]
    assert tokenize("  !!  ") == []


@pytest.mark.parametrize(
    ("term", "distance"), [("ab", 0), ("abc", 1), ("zebra", 1), ("crosing", 2)]
)
def test_fuzziness_follows_opensearch_auto(term: str, distance: int) -> None:
    assert fuzziness(term) == distance


def test_fingerprint_ignores_page_fields_and_normalisation_noise() -> None:
    base = fingerprint(SearchQuery(q="Zebra crossing", tags=("a", "b")))
    assert base == fingerprint(SearchQuery(q="zebra   CROSSING", tags=("b", "a"), page_size=5))
    assert base != fingerprint(SearchQuery(q="zebra crossing", tags=("a", "b"), sort="views"))
    assert base != fingerprint(SearchQuery(q="zebra crossing", tags=("a",)))
    assert base != fingerprint(SearchQuery(q="zebra crossing", tags=("a", "b"), owner="x"))
