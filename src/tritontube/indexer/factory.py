"""Build the configured search backend behind the :class:`SearchIndex` port."""

from __future__ import annotations

import hashlib
import hmac

from tritontube.indexer.opensearch_index import OpenSearchIndex
from tritontube.indexer.port import SearchIndex
from tritontube.indexer.tantivy_index import TantivyIndex
from tritontube.settings import Settings


def cursor_secret(settings: Settings) -> bytes:
    """Page tokens are signed with a key derived from the auth secret, so every API process
    accepts the tokens any other one issued."""
    key = settings.auth.secret.get_secret_value().encode()
    return hmac.new(key, b"tritontube search cursor", hashlib.sha256).digest()


def build_search_index(settings: Settings, *, read_only: bool) -> SearchIndex:
    """The worker's indexer writes (``read_only=False``); the API only reads."""
    search = settings.search
    if search.backend == "opensearch":
        return OpenSearchIndex(
            [search.opensearch_url], index=search.index_name, cursor_secret=cursor_secret(settings)
        )
    return TantivyIndex(search.path, cursor_secret=cursor_secret(settings), read_only=read_only)
