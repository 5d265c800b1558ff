"""The owner-index agent: ``video-state-by-owner`` -> the ``owner_videos`` table.

The video-state agent forwards each video's first state keyed by its owner, so all of one
owner's videos arrive in one partition of this topic, whichever partitions their states live
in. This agent folds them into one :class:`~tritontube.domain.owners.OwnerVideos` per owner
(``domain.owners``: newest first, idempotent under redelivery), which the owner listing reads
with one routed key read (``agents.queries``).
"""

from __future__ import annotations

import faust
from faust.types import StreamT

from tritontube import metrics
from tritontube.agents.dlq import dead_letter
from tritontube.agents.tables import TypedTable
from tritontube.agents.topology import OWNER_VIDEOS_TABLE, Topology
from tritontube.deps import Deps
from tritontube.domain import owners
from tritontube.domain.events import VideoState
from tritontube.streams import catalogue
from tritontube.streams.codec import CodecError

AGENT_NAME = "owner-index"


def register(app: faust.App, topology: Topology, deps: Deps) -> None:
    table = TypedTable(topology.tables[OWNER_VIDEOS_TABLE], deps.codec, owners.OwnerVideos)

    @app.agent(topology.topic(catalogue.VIDEO_STATE_BY_OWNER), name=AGENT_NAME)
    async def owner_index(stream: StreamT) -> None:
        async for event in stream.events():
            metrics.observe_consumed(AGENT_NAME, event.message.topic, event.message.timestamp)
            try:
                state = deps.codec.decode_as(event.value, VideoState)
            except CodecError as exc:
                await dead_letter(topology, deps, event, exc)
                continue
            before = table.get(state.owner)
            after = owners.add_video(before, state.owner, state.video_id, state.created_at)
            if after is not before:
                table.put(state.owner, after)
