"""The video-state agent: folds upload and transcode events into the VideoState table.

Every change is written to the table (its changelog is the durable copy), published on the
public ``video-state`` topic, and, when an upload has just completed, turned into exactly one
``TranscodeJob``: the job id is derived from the session, and the fold ignores redelivered
events, so duplicates of UploadCompleted never start a second job.
"""

from __future__ import annotations

import logging
import uuid

import faust
from faust.types import StreamT

from tritontube import metrics
from tritontube.agents.dlq import dead_letter
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
    raw = topology.video_state.get(video_id.encode())
    return None if raw is None else deps.codec.decode(raw, expect=("VideoState",))


def register(app: faust.App, topology: Topology, deps: Deps, settings: Settings) -> None:
    ladder = tuple(settings.transcode.ladder)

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
            key = after.video_id.encode()
            encoded = deps.codec.encode(after)
            topology.video_state[key] = encoded
            await topology.topic(catalogue.VIDEO_STATE).send(key=key, value=encoded)
            job = video.job_to_start(before, after, ladder, deps.clock.now())
            if job is not None:
                await topology.topic(catalogue.TRANSCODE_JOBS).send(
                    key=key, value=deps.codec.encode(job)
                )
            if after.status == video.Status.EXPIRED:
                await _remove_partial_upload(deps, after)

    @app.timer(interval=settings.upload.expiry_scan_seconds, name="upload-session-expiry")
    async def expire_sessions() -> None:
        """Abandoned sessions become EXPIRED (an event, folded like any other)."""
        now = deps.clock.now()
        for raw in list(topology.video_state.values()):
            state = deps.codec.decode(raw, expect=("VideoState",))
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
