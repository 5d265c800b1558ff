"""Typed query parameters: one pydantic model per endpoint, validated like request bodies.

Transport-neutral (no aiohttp or grpc import): the REST adapter (``http/params.py``) feeds a
model the query string, a gRPC servicer would feed it the request message's fields; both get
the same rules and the same error locations (the wire names, ``pageSize``, ``pageToken``).

Numbers in a query string are text, and Python's ``int()`` reads far more than digits
(``" 5"``, ``"+5"``, ``"5_0"``, ``"١٢"``): :data:`QueryInt` takes ASCII digits only, and
real integers (what a typed transport sends) strictly, never booleans.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    field_validator,
)

from tritontube.indexer.query import (
    MAX_PAGE_SIZE,
    MAX_QUERY_CHARS,
    MAX_QUERY_TERMS,
    MAX_TAG_CHARS,
    MAX_TAGS,
    MAX_TOKEN_CHARS,
    SearchQuery,
    SortOrder,
    tokenize,
)

DEFAULT_PAGE_SIZE = 20
MAX_RECOMMENDATIONS = 50
VIDEO_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
_ASCII_INT = re.compile(r"[0-9]{1,9}")
# A search page token as the indexer writes it: base64url(payload) "." base64url(mac).
_SEARCH_TOKEN = r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$"  # noqa: S105 - a pattern


def _ascii_int(value: Any) -> Any:
    if isinstance(value, str):
        if not _ASCII_INT.fullmatch(value):
            raise ValueError("must be a whole number written with the digits 0-9 only")
        return int(value)
    return value


QueryInt = Annotated[int, BeforeValidator(_ascii_int), Strict()]


def _blank_is_none(cls: type, value: Any) -> Any:
    """An empty parameter (``?pageToken=``) is an absent one."""
    return None if value == "" else value


VideoId = Annotated[str, StringConstraints(pattern=VIDEO_ID_PATTERN)]
SearchToken = Annotated[str, StringConstraints(max_length=MAX_TOKEN_CHARS, pattern=_SEARCH_TOKEN)]


class QueryModel(BaseModel):
    """Base of every query model: immutable, wire names only, unknown parameters ignored (a
    cache-busting ``_=...`` must not fail a request), repeats only where ``repeatable``."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=False)

    repeatable: ClassVar[frozenset[str]] = frozenset()


class SearchParams(QueryModel):
    """``GET /v1/videos:search``."""

    repeatable: ClassVar[frozenset[str]] = frozenset({"tags"})

    q: str = Field(
        "", max_length=MAX_QUERY_CHARS, description=f"Query text, at most {MAX_QUERY_TERMS} words."
    )
    tags: tuple[str, ...] = Field(
        (), description="Tags that must all match (repeat the parameter and/or comma-separate)."
    )
    owner: str | None = Field(None, max_length=128, description="`me` or a user name.")
    sort: SortOrder = Field("relevance", description="Ordering.")
    page_size: QueryInt = Field(
        DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE, alias="pageSize", description="Page size."
    )
    page_token: SearchToken | None = Field(
        None, alias="pageToken", description="`nextPageToken` of the previous page."
    )

    _blank_token = field_validator("page_token", mode="before")(_blank_is_none)

    @field_validator("q")
    @classmethod
    def _few_terms(cls, q: str) -> str:
        if len(tokenize(q)) > MAX_QUERY_TERMS:
            raise ValueError(f"at most {MAX_QUERY_TERMS} terms")
        return q

    @field_validator("tags", mode="before")
    @classmethod
    def _split_tags(cls, value: Any) -> Any:
        """Repeated and/or comma-separated; trimmed, lower-cased, each once."""
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            return value  # the tuple[str, ...] check names the problem
        tags: list[str] = []
        for raw in value:
            for part in raw.split(","):
                tag = part.strip().lower()
                if not tag:
                    raise ValueError("tags must not be empty")
                if len(tag) > MAX_TAG_CHARS:
                    raise ValueError(f"each tag has at most {MAX_TAG_CHARS} characters")
                if tag not in tags:
                    tags.append(tag)
        if len(tags) > MAX_TAGS:
            raise ValueError(f"at most {MAX_TAGS} tags")
        return tuple(tags)

    @field_validator("owner")
    @classmethod
    def _owner(cls, owner: str | None) -> str | None:
        if owner is None:
            return None
        if not owner.strip():
            raise ValueError("must not be blank")
        return owner.strip()

    def to_search_query(self, user: str) -> SearchQuery:
        """The index query; ``owner=me`` is the signed-in ``user``."""
        return SearchQuery(
            q=self.q,
            tags=self.tags,
            owner=user if self.owner == "me" else self.owner,
            sort=self.sort,
            page_size=self.page_size,
            page_token=self.page_token,
        )


# The wire name of each SearchQuery field, for an InvalidQueryError the index raises (a page
# token that is well-formed but forged, expired or from another query).
SEARCH_WIRE_NAMES = {name: field.alias or name for name, field in SearchParams.model_fields.items()}


class RecommendationsParams(QueryModel):
    """``GET /v1/videos:recommendations``."""

    video_id: VideoId | None = Field(None, alias="videoId", description="The video being watched.")
    page_size: QueryInt = Field(
        DEFAULT_PAGE_SIZE, ge=1, le=MAX_RECOMMENDATIONS, alias="pageSize", description="Results."
    )

    _blank_video = field_validator("video_id", mode="before")(_blank_is_none)


MAX_TRENDING = 50
MAX_HISTORY = 200
MAX_OWNED_PAGE = 100


class TrendingParams(QueryModel):
    """``GET /v1/videos:trending``."""

    page_size: QueryInt = Field(
        DEFAULT_PAGE_SIZE, ge=1, le=MAX_TRENDING, alias="pageSize", description="Results."
    )


class HistoryParams(QueryModel):
    """``GET /v1/users/me/history``."""

    page_size: QueryInt = Field(
        50, ge=1, le=MAX_HISTORY, alias="pageSize", description="Entries, most recent first."
    )


# An owner listing's page token (``domain.owners.encode_cursor``): base64url, no padding.
_OWNED_TOKEN = r"^[A-Za-z0-9_-]{1,200}$"  # noqa: S105 - a pattern


class ListVideosParams(QueryModel):
    """``GET /v1/videos?owner=me``."""

    owner: str = Field(
        max_length=128,
        description="`me` (or the caller's own id): the caller's uploads; public listings are "
        "search's job.",
    )
    page_size: QueryInt = Field(
        DEFAULT_PAGE_SIZE, ge=1, le=MAX_OWNED_PAGE, alias="pageSize", description="Page size."
    )
    page_token: Annotated[str, StringConstraints(pattern=_OWNED_TOKEN)] | None = Field(
        None, alias="pageToken", description="`nextPageToken` of the previous page."
    )

    _blank_token = field_validator("page_token", mode="before")(_blank_is_none)
