"""Opaque, signed page tokens for search_after pagination.

A token is ``base64url(json payload) + "." + base64url(hmac)``. The payload holds the
sort values of the last hit of the previous page (sort key, video_id) and the query's
fingerprint, so a token only works with the query that produced it. Tokens signed with
another secret (another process, unless the secret is shared) are rejected.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tritontube.indexer.query import (
    InvalidQueryError,
    SearchHit,
    SearchPage,
    SearchQuery,
    fingerprint,
)

SortKey = int | float
_SIG_BYTES = 16


@dataclass(frozen=True)
class Cursor:
    """Where the previous page ended: results continue strictly after (key, video_id)."""

    key: SortKey
    video_id: str

    def precedes(self, key: SortKey, video_id: str) -> bool:
        """True when a hit with these sort values comes after the cursor (key desc, id asc)."""
        return key < self.key or (key == self.key and video_id > self.video_id)


class CursorCodec:
    """Encodes and verifies page tokens; pass a shared ``secret`` across processes."""

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret if secret is not None else secrets.token_bytes(32)

    def encode(self, query: SearchQuery, cursor: Cursor) -> str:
        payload = json.dumps(
            {"f": fingerprint(query), "k": cursor.key, "i": cursor.video_id},
            separators=(",", ":"),
        ).encode()
        return f"{_b64(payload)}.{_b64(self._sign(payload))}"

    def decode(self, query: SearchQuery) -> Cursor | None:
        """The cursor in ``query.page_token`` (None on the first page)."""
        if query.page_token is None:
            return None
        payload = self._verified_payload(query.page_token)
        data = _parse(payload)
        if data.get("f") != fingerprint(query):
            raise InvalidQueryError("page_token belongs to a different query", field="page_token")
        return Cursor(key=_sort_key(query, data.get("k")), video_id=_video_id(data.get("i")))

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()[:_SIG_BYTES]

    def _verified_payload(self, token: str) -> bytes:
        body, sep, signature = token.partition(".")
        if not sep:
            raise InvalidQueryError("malformed page_token", field="page_token")
        payload, sig = _unb64(body), _unb64(signature)
        if not hmac.compare_digest(sig, self._sign(payload)):
            raise InvalidQueryError("page_token signature does not match", field="page_token")
        return payload


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidQueryError("malformed page_token", field="page_token") from exc


def _parse(payload: bytes) -> dict[str, Any]:
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidQueryError("malformed page_token", field="page_token") from exc
    if not isinstance(data, dict):
        raise InvalidQueryError("malformed page_token", field="page_token")
    return data


def _sort_key(query: SearchQuery, value: object) -> SortKey:
    if isinstance(value, bool):
        raise InvalidQueryError("malformed page_token", field="page_token")
    if query.sort == "relevance" and isinstance(value, int | float):
        return float(value)
    if isinstance(value, int):
        return value
    raise InvalidQueryError("malformed page_token", field="page_token")


def _video_id(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidQueryError("malformed page_token", field="page_token")
    return value


def paginate(
    codec: CursorCodec, query: SearchQuery, rows: Sequence[tuple[SortKey, SearchHit]]
) -> SearchPage:
    """A page from rows already sorted (key desc, video_id asc) and fetched one past the
    page size: the extra row only tells that another page exists."""
    page = list(rows[: query.page_size])
    if len(rows) <= query.page_size or not page:
        return SearchPage(results=[hit for _, hit in page], next_page_token=None)
    last_key, last_hit = page[-1]
    token = codec.encode(query, Cursor(key=last_key, video_id=last_hit.video_id))
    return SearchPage(results=[hit for _, hit in page], next_page_token=token)
