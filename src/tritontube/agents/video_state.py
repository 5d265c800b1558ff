"""The video-state agent: folds upload and transcode events into the VideoState table.

Every change is written to the table (its changelog is the durable copy), published on the
public ``video-state`` topic, and, when an upload has just completed, turned into exactly one
``TranscodeJob``: the job id is derived from the session, and the fold ignores redelivered
events, so duplicates of UploadCompleted never start a second job. A video's first state is
also forwarded, keyed by its owner, to ``video-state-by-owner`` (the owner listing's input,
``agents.owners``).

The expiry scan runs on every worker over the partitions that worker owns as an active, so
each session is looked at once per scan whatever the number of workers (standby copies of
other partitions are never acted on).
"""

from __future__ import annotations

import logging
import uuid

import faust
from faust.types import StreamT

from tritontube import metrics
from tritontube.agents.dlq import dead_letter
from tritontube.agents.tables import TypedTable
from tritontube.agents.topology import Topology
from tritontube.deps import Deps
from tritontube.domain import video
from tritontube.domain.events import VideoState
from tritontube.settings import Settings
from tritontube.storage.port import ObjectStoreError
from tritontube.streams import catalogue
from tritontube.streams.codec import CodecError

log = logging.getLogger(__name__)

INPUT_RECORDS = catalogue.UPLOADS.records + catalogue.TRANSCODE_PROGRESS.records
AGENT_NAME = "video-state"


def read_state(topology: Topology, deps: Deps, video_id: str) -> VideoState | None:
    return states_table(topology, deps).get(video_id)


def states_table(topology: Topology, deps: Deps) -> TypedTable[VideoState]:
    return TypedTable(topology.video_state, deps.codec, VideoState)


def register(app: faust.App, topology: Topology, deps: Deps, settings: Settings) -> None:
    ladder = tuple(settings.transcode.ladder)
    states = states_table(topology, deps)

    @app.agent(topology.video_state_input, name=AGENT_NAME)
    async def video_state_agent(stream: StreamT) -> None:
        async for event in stream.events():
            metrics.observe_consumed(AGENT_NAME, event.message.topic, event.message.timestamp)
            try:
                change = deps.codec.decode(event.value, expect=INPUT_RECORDS)
            except CodecError as exc:
                await dead_letter(topology, deps, event, exc)
                continue
            before = read_state(topology, deps, change.video_id)
            after = video.apply(before, change)
            if after is None or after is before:
                continue
            if before is None or before.status != after.status:
                log.info(
                    "video %s: %s -> %s",
                    after.video_id,
                    before.status if before is not None else "-",
                    after.status,
                    extra={"record": type(change).__name__},
                )
            key = after.video_id.encode()
            encoded = deps.codec.encode(after)
            topology.video_state[key] = encoded
            await topology.topic(catalogue.VIDEO_STATE).send(key=key, value=encoded)
            if before is None:
                await topology.topic(catalogue.VIDEO_STATE_BY_OWNER).send(
                    key=after.owner.encode(), value=encoded
                )
            job = video.job_to_start(before, after, ladder, deps.clock.now())
            if job is not None:
                await topology.topic(catalogue.TRANSCODE_JOBS).send(
                    key=key, value=deps.codec.encode(job)
                )
                log.info(
                    "queued transcode job %s for %s",
                    job.job_id,
                    after.video_id,
                    extra={"job_id": job.job_id},
                )
            if after.status == video.Status.EXPIRED:
                await _remove_partial_upload(deps, after)

    @app.timer(interval=settings.upload.expiry_scan_seconds, name="upload-session-expiry")
    async def expire_sessions() -> None:
        """Abandoned sessions become EXPIRED (an event, folded like any other)."""
        now = deps.clock.now()
        for _, state in states.active_items(app, settings.kafka.partitions):
            expired = video.expire_if_due(state, now, uuid.uuid4().hex)
            if expired is not None:
                await topology.topic(catalogue.UPLOADS).send(
                    key=state.video_id.encode(), value=deps.codec.encode(expired)
                )


async def _remove_partial_upload(deps: Deps, state: VideoState) -> None:
    """An expired session's leftovers: its unfinished multipart upload (the parts), any object."""
    prefix = video.upload_prefix(state.video_id)
    try:
        aborted = await deps.object_store.abort_multipart_uploads(prefix)
        if aborted:
            log.info("aborted %d abandoned multipart upload(s) under %s", aborted, prefix)
        removed = await deps.object_store.delete_prefix(prefix)
    except ObjectStoreError as exc:
        # The session is EXPIRED either way; a later expiry scan cannot retry a terminal
        # state, so say so loudly. Leftovers live under a prefix no session can reach.
        log.warning("could not remove partial upload %s: %s", prefix, exc)
        return
    if removed:
        log.info("removed %d partial upload object(s) under %s", removed, prefix)
