"""The worker's web views: health, and video state read where the table lives.

``GET /videos/{video_id}`` is routed by Faust to the worker that owns the key's partition
(``app.table_route``), so the HTTP API reads state from its single source of truth.
"""

from __future__ import annotations

from typing import Any, cast

import faust
from faust.tables.manager import TableManager
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tritontube.agents import video_state
from tritontube.agents.topology import Topology
from tritontube.deps import Deps
from tritontube.streams.records import to_avro


def state_json(state: Any) -> dict[str, Any]:
    """VideoState as JSON-ready data (datetimes as ISO-8601)."""
    out = to_avro(state)
    for key, value in list(out.items()):
        if hasattr(value, "isoformat"):
            out[key] = value.isoformat()
    return out


def is_ready(app: faust.App) -> bool:
    """Partitions assigned and every table recovered: reads now see the full state."""
    return (
        not app.rebalancing
        and bool(app.consumer.assignment())
        and cast(TableManager, app.tables).recovery.completed.is_set()
        and not app.in_recovery
    )


def register(app: faust.App, topology: Topology, deps: Deps) -> None:
    @app.page("/healthz")
    class Health(View):
        async def get(self, request: Request) -> Response:
            return self.json({"status": "ok", "id": app.conf.id})

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            # A header, not content_type=: aiohttp refuses a charset inside content_type.
            return self.bytes(generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    @app.page("/readyz")
    class Ready(View):
        async def get(self, request: Request) -> Response:
            ready = is_ready(app)
            return self.json({"ready": ready}, status=200 if ready else 503)

    @app.page("/videos")
    class VideoList(View):
        async def get(self, request: Request) -> Response:
            """States held by this worker, optionally filtered by ``owner`` (one worker in dev)."""
            if not is_ready(app):
                return self.json({"error": "worker is recovering tables"}, status=503)
            owner = request.query.get("owner")
            items = []
            for raw in topology.video_state.values():
                state = deps.codec.decode(raw, expect=("VideoState",))
                if owner is None or state.owner == owner:
                    items.append(state_json(state))
            items.sort(key=lambda s: s["created_at"], reverse=True)
            return self.json({"videos": items, "count": len(items)})

    @app.page("/videos/{video_id}")
    class VideoStateView(View):
        async def get(self, request: Request, video_id: str) -> Response:
            if not is_ready(app):
                return self.json({"error": "worker is recovering tables"}, status=503)
            routed = cast(Any, self.routed)  # table_route's wrapper forwards the match info
            return cast(Response, await routed(request, video_id=video_id))

        @app.table_route(table=topology.video_state, match_info="video_id")  # type: ignore[arg-type]
        async def routed(self, request: Request, video_id: str) -> Response:
            state = video_state.read_state(topology, deps, video_id)
            if state is None:
                return self.json({"videoId": video_id, "found": False}, status=404)
            return self.json(state_json(state))
