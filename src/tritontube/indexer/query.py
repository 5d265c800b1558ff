"""Search queries and results: validation, tokenisation and the fuzziness rule.

Pure and synchronous. Both backends build their text query from :func:`tokenize` and
:func:`fuzziness` so that they agree on what matches; only the scores differ.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal, get_args

from tritontube.indexer.documents import VideoDocument

SortOrder = Literal["relevance", "views", "recent"]

SORT_ORDERS: Final[frozenset[str]] = frozenset(get_args(SortOrder))
MAX_PAGE_SIZE: Final = 100
MAX_QUERY_CHARS: Final = 256
MAX_QUERY_TERMS: Final = 16
MAX_TAGS: Final = 10
MAX_TAG_CHARS: Final = 64
MAX_TOKEN_CHARS: Final = 2048
MIN_PREFIX_CHARS: Final = 2

# Approximates the Unicode word rules of OpenSearch's standard tokenizer; the embedded
# index registers the same pattern (Rust regex syntax is compatible) as its tokenizer.
WORD_PATTERN: Final = r"\w+(?:['.]\w+)*"
_TOKEN_RE: Final = re.compile(WORD_PATTERN)


class InvalidQueryError(ValueError):
    """A query the caller must fix (bad page size, foreign or tampered page token, ...).

    ``field`` names the :class:`SearchQuery` field at fault (``page_token``, ``tags``, ...).
    """

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class SearchQuery:
    """What a caller asks for; validated on construction."""

    q: str
    tags: tuple[str, ...] = ()
    owner: str | None = None
    sort: SortOrder = "relevance"
    page_size: int = 20
    page_token: str | None = None

    def __post_init__(self) -> None:
        if len(self.q) > MAX_QUERY_CHARS:
            raise InvalidQueryError(f"q is longer than {MAX_QUERY_CHARS} characters", field="q")
        if len(tokenize(self.q)) > MAX_QUERY_TERMS:
            raise InvalidQueryError(f"q has more than {MAX_QUERY_TERMS} terms", field="q")
        _validate_tags(self.tags)
        if self.owner is not None and not self.owner.strip():
            raise InvalidQueryError("owner must not be blank", field="owner")
        if self.sort not in SORT_ORDERS:
            raise InvalidQueryError(f"sort must be one of {sorted(SORT_ORDERS)}", field="sort")
        if isinstance(self.page_size, bool) or not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise InvalidQueryError(
                f"page_size must be between 1 and {MAX_PAGE_SIZE}", field="page_size"
            )
        if self.page_token is not None and not 0 < len(self.page_token) <= MAX_TOKEN_CHARS:
            raise InvalidQueryError("page_token is empty or too long", field="page_token")

    @property
    def terms(self) -> list[str]:
        """The normalised terms of ``q``; empty means browse (match everything)."""
        return tokenize(self.q)


def _validate_tags(tags: tuple[str, ...]) -> None:
    if not isinstance(tags, tuple):
        raise InvalidQueryError("tags must be a tuple of strings", field="tags")
    if len(tags) > MAX_TAGS:
        raise InvalidQueryError(f"at most {MAX_TAGS} tags", field="tags")
    for tag in tags:
        if not isinstance(tag, str) or not tag.strip() or len(tag) > MAX_TAG_CHARS:
            raise InvalidQueryError(f"invalid tag {tag!r}", field="tags")


@dataclass(frozen=True)
class SearchHit:
    """One result; ``score`` is set only for ``sort=relevance``."""

    video_id: str
    title: str
    description: str
    tags: tuple[str, ...]
    owner: str
    views: int
    duration_seconds: float | None
    ready_at: datetime | None
    score: float | None


@dataclass(frozen=True)
class SearchPage:
    results: list[SearchHit]
    next_page_token: str | None


def to_hit(doc: VideoDocument, score: float | None) -> SearchHit:
    return SearchHit(
        video_id=doc.video_id,
        title=doc.title,
        description=doc.description,
        tags=doc.tags,
        owner=doc.owner,
        views=doc.views,
        duration_seconds=doc.duration_seconds,
        ready_at=doc.ready_at,
        score=score,
    )


def normalize(text: str) -> str:
    """Case- and accent-insensitive form (what lowercase + asciifolding produce)."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return stripped.casefold()


def tokenize(text: str) -> list[str]:
    """Normalised words of ``text``, in order."""
    return _TOKEN_RE.findall(normalize(text))


def fuzziness(term: str) -> int:
    """Allowed edit distance, OpenSearch's ``AUTO``: 0 up to 2 chars, 1 up to 5, else 2."""
    if len(term) <= 2:
        return 0
    if len(term) <= 5:
        return 1
    return 2


def fingerprint(query: SearchQuery) -> str:
    """Identity of a query for its page tokens: terms, filters and sort (not page size)."""
    canonical = json.dumps(
        {"t": query.terms, "g": sorted(set(query.tags)), "o": query.owner, "s": query.sort},
        separators=(",", ":"),
        sort_keys=True,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]
