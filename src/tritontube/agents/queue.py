"""The transcode queue: which videos wait, and where one of them stands ("position 6 of 20").

The ``transcode-queue`` agent folds every ``VideoState`` of the public ``video-state`` topic
(whole fetched batches, ``agents.batching``, like the topic's other consumers) into the
``transcode_waiting`` table (``domain.queue.waiting_entry``; a deleted video's tombstone
removes its entry): one entry per video
that waits to be encoded, by video id, so a partition's waiting videos live with the
partition's owner and move with it on a rebalance. A video's place needs every waiting
video of every partition: ``/transcode/queue/{video_id}`` (any worker) fans out to every
member's ``/transcode/waiting`` (the partitions it owns as an active) and answers a
``QueuePosition`` only when the answers cover every partition; 404 when the video does not
wait; 503 while the group cannot answer completely. Both views are guarded like the query
views (``agents.queries``: the internal token, Avro answers).
"""

from __future__ import annotations

import asyncio
import hmac
import logging

from faust.web import Request, Response, View
from yarl import URL

from tritontube import metrics
from tritontube.agents import queries
from tritontube.agents.batching import Batch, BatchingApp, Checkpoint, Route
from tritontube.agents.tables import TypedTable
from tritontube.agents.topology import TRANSCODE_WAITING_TABLE, Topology
from tritontube.deps import Deps
from tritontube.domain import queue
from tritontube.domain.events import VideoState
from tritontube.settings import Settings
from tritontube.streams import catalogue
from tritontube.streams.codec import CodecError

log = logging.getLogger(__name__)

AGENT_NAME = "transcode-queue"
_RETRY = {"Retry-After": queries.RETRY_AFTER}


def register(app: BatchingApp, topology: Topology, deps: Deps, settings: Settings) -> None:
    """Add the waiting index and its two views."""
    waiting = TypedTable(topology.tables[TRANSCODE_WAITING_TABLE], deps.codec, queue.WaitingVideo)
    peers = queries.Queries(app, queries.QueryTables.of(topology, deps), deps, settings)
    token = settings.internal_token().get_secret_value().encode()
    partitions = settings.kafka.partitions

    async def on_states(batch: Batch, out: Checkpoint) -> None:
        """Fold the batch's VideoStates into the waiting index (the search join dead-letters
        an undecodable one: the topic's handlers share the decoded batch)."""
        records = batch.records
        metrics.observe_consumed_batch(
            AGENT_NAME, batch.tp.topic, len(records), records[0].timestamp
        )
        changed: dict[str, queue.WaitingVideo | None] = {}
        for record, state in zip(records, batch.decoded(deps.codec, VideoState), strict=True):
            if state is None:  # a deleted video's tombstone: it waits no more
                changed[bytes(record.key or b"").decode()] = None
                continue
            if isinstance(state, CodecError):
                continue
            before = (
                changed[state.video_id]
                if state.video_id in changed
                else waiting.get(state.video_id)
            )
            after = queue.waiting_entry(before, state)
            if after != before:
                changed[state.video_id] = after
        for video_id, entry in changed.items():
            if entry is None:
                out.delete(waiting, video_id)
            else:
                out.put(waiting, video_id, entry)

    app.batch_router.route(topology.topic(catalogue.VIDEO_STATE), Route(AGENT_NAME, on_states))

    def local() -> queue.WaitingVideos:
        mine = sorted(waiting.active_partitions(app))
        entries = tuple(entry for _, entry in waiting.active_items(app, partitions))
        return queue.WaitingVideos(partitions=tuple(mine), entries=entries)

    async def everywhere() -> list[queue.WaitingVideo]:
        members = list(app.router.table_metadata(TRANSCODE_WAITING_TABLE))
        me = _ident(URL(str(app.conf.canonical_url)))

        async def ask(url: str) -> queue.WaitingVideos:
            if _ident(URL(url)) == me:
                return local()
            body = await peers.fetch(URL(url), "/transcode/waiting", [])
            if body is None:
                raise queries.Unavailable(f"{url} has no waiting view")
            return deps.codec.decode_as(body, queue.WaitingVideos)

        answers = await asyncio.gather(*(ask(url) for url in members))
        missing = set(range(partitions)) - {p for a in answers for p in a.partitions}
        if missing:
            raise queries.Unavailable(f"partitions {sorted(missing)} have no owner now")
        return [entry for answer in answers for entry in answer.entries]

    def refused(view: View, request: Request) -> Response | None:
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, b"Bearer " + token):
            return view.json({"error": "internal token required"}, status=401)
        if not queries.is_ready(app):
            return view.json({"error": "rebalancing"}, status=503, headers=_RETRY)
        return None

    def avro(view: View, record: object, status: int = 200) -> Response:
        body = b"" if record is None else deps.codec.encode(record)
        return view.bytes(body, status=status, content_type=queries.AVRO_CONTENT_TYPE)

    @app.page("/transcode/waiting")
    class WaitingView(View):
        async def get(self, request: Request) -> Response:
            return refused(self, request) or avro(self, local())

    @app.page("/transcode/queue/{video_id}")
    class QueueView(View):
        async def get(self, request: Request, video_id: str) -> Response:
            if (refusal := refused(self, request)) is not None:
                return refusal
            try:
                entries = await everywhere()
            except queries.Unavailable as exc:
                return self.json({"error": str(exc)}, status=503, headers=_RETRY)
            place = queue.position(entries, video_id)
            return avro(self, place, 200) if place is not None else avro(self, None, 404)


def _ident(url: URL) -> tuple[str, int]:
    return (url.host or "", int(url.port or 80))
