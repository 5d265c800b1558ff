"""Typed application keys (aiohttp ``web.AppKey``) for everything the handlers share."""

from __future__ import annotations

from aiohttp import ClientSession, web

from tritontube.deps import Deps
from tritontube.http.publisher import EventPublisher
from tritontube.http.worker_client import WorkerClient
from tritontube.indexer.port import SearchIndex
from tritontube.services import Services
from tritontube.settings import Settings
from tritontube.storage.port import ObjectStore

SETTINGS = web.AppKey("settings", Settings)
DEPS = web.AppKey("deps", Deps)
SERVICES = web.AppKey("services", Services)
PUBLISHER = web.AppKey("publisher", EventPublisher)
OBJECT_STORE = web.AppKey("object_store", ObjectStore)
WORKER = web.AppKey("worker", WorkerClient)
CLIENT_SESSION = web.AppKey("client_session", ClientSession)
SEARCH = web.AppKey("search", SearchIndex)


def services(request: web.Request) -> Services:
    """The use cases' collaborators (``tritontube.services``), opened with the app."""
    return request.app[SERVICES]
