"""Typed application keys (aiohttp ``web.AppKey``) for everything the handlers share."""

from __future__ import annotations

from aiohttp import ClientSession, web

from tritontube.deps import Deps
from tritontube.http.publisher import EventPublisher
from tritontube.http.worker_client import WorkerClient
from tritontube.indexer.port import SearchIndex
from tritontube.settings import Settings
from tritontube.storage.port import ObjectStore

SETTINGS = web.AppKey("settings", Settings)
DEPS = web.AppKey("deps", Deps)
PUBLISHER = web.AppKey("publisher", EventPublisher)
OBJECT_STORE = web.AppKey("object_store", ObjectStore)
WORKER = web.AppKey("worker", WorkerClient)
CLIENT_SESSION = web.AppKey("client_session", ClientSession)
SEARCH = web.AppKey("search", SearchIndex)
