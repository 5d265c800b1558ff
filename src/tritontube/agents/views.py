"""The worker's web views: health, and video state read where the table lives.

``GET /videos/{video_id}`` is routed by Faust to the worker that owns the key's partition
(``app.table_route``), so the HTTP API reads state from its single source of truth.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.web import Request, Response, View

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


def register(app: faust.App, topology: Topology, deps: Deps) -> None:
    @app.page("/healthz")
    class Health(View):
        async def get(self, request: Request) -> Response:
            return self.json({"status": "ok", "id": app.conf.id})

    @app.page("/readyz")
    class Ready(View):
        async def get(self, request: Request) -> Response:
            recovering = not app.rebalancing and app.tables.recovery.completed.is_set()
            status = 200 if recovering else 503
            return self.json({"ready": recovering}, status=status)

    @app.page("/videos/{video_id}")
    class VideoStateView(View):
        @app.table_route(table=topology.video_state, match_info="video_id")
        async def get(self, request: Request, video_id: str) -> Response:
            state = video_state.read_state(topology, deps, video_id)
            if state is None:
                return self.json({"videoId": video_id, "found": False}, status=404)
            return self.json(state_json(state))
