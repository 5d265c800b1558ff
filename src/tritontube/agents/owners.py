"""The owner-index agent: ``video-state-by-owner`` -> the ``owner_videos`` table.

The video-state agent forwards each video's first state keyed by its owner, so all of one
owner's videos arrive in one partition of this topic, whichever partitions their states live
in. This agent folds them into one :class:`~tritontube.domain.owners.OwnerVideos` per owner
(``domain.owners``: newest first, idempotent under redelivery), which the owner listing reads
with one routed key read (``agents.queries``).

It works per batch: a value holds all of one owner's videos, so writing it per event would
put an owner's whole list on the changelog once for each of their uploads (an owner with
3,000 sessions: 3,000 values of up to 3,000 entries). Each owner's value is written once
per batch, attributed to the last event that changed it.
"""

from __future__ import annotations

import faust
from faust.types import EventT, StreamT

from tritontube import metrics
from tritontube.agents.dlq import dead_letter
from tritontube.agents.tables import TypedTable, attributed_to
from tritontube.agents.topology import OWNER_VIDEOS_TABLE, Topology
from tritontube.deps import Deps
from tritontube.domain import owners
from tritontube.domain.events import VideoState
from tritontube.streams import catalogue
from tritontube.streams.codec import CodecError

AGENT_NAME = "owner-index"
BATCH_SIZE = 1000
BATCH_SECONDS = 0.05


def register(app: faust.App, topology: Topology, deps: Deps) -> None:
    table = TypedTable(topology.tables[OWNER_VIDEOS_TABLE], deps.codec, owners.OwnerVideos)

    @app.agent(topology.topic(catalogue.VIDEO_STATE_BY_OWNER), name=AGENT_NAME)
    async def owner_index(stream: StreamT) -> None:
        async for events in stream.take_events(BATCH_SIZE, within=BATCH_SECONDS):  # type: ignore[attr-defined]
            indexes: dict[str, owners.OwnerVideos | None] = {}
            dirty: dict[str, tuple[EventT, owners.OwnerVideos]] = {}
            for event in events:
                metrics.observe_consumed(AGENT_NAME, event.message.topic, event.message.timestamp)
                try:
                    state = deps.codec.decode_as(event.value, VideoState)
                except CodecError as exc:
                    await dead_letter(topology, deps, event, exc)
                    continue
                if state.owner not in indexes:
                    indexes[state.owner] = table.get(state.owner)
                before = indexes[state.owner]
                after = owners.add_video(before, state.owner, state.video_id, state.created_at)
                if after is not before:
                    indexes[state.owner] = after
                    dirty[state.owner] = (event, after)
            for owner, (event, index) in dirty.items():
                with attributed_to(event):
                    table.put(owner, index)
