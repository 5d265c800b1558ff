"""Domain results as ``tritontube.v1`` messages: the gRPC side of serialisation.

Field for field the REST JSON of ``http/*.py`` (the proto's field names are the JSON names in
snake_case); ``tests/contract/test_api_contract.py`` compares the two transports' answers.
"""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from tritontube import videos
from tritontube.domain import analytics as an
from tritontube.domain.events import VideoState
from tritontube.domain.queue import QueuePosition
from tritontube.domain.video import Status, is_playable, metadata_etag
from tritontube.indexer.query import SearchHit
from tritontube.v1 import web_pb2 as pb


def timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment.astimezone(UTC))
    return stamp


def to_datetime(stamp: Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)


def renditions(state: VideoState) -> list[pb.Rendition]:
    return [
        pb.Rendition(name=r.name, width=r.width, height=r.height, bandwidth=r.bandwidth_bps)
        for r in videos.ready_renditions(state)
    ]


def failure(state: VideoState) -> pb.Failure | None:
    failed = videos.failure(state)
    return None if failed is None else pb.Failure(code=failed[0], message=failed[1])


def video(state: VideoState, *, is_owner: bool) -> pb.Video:
    message = pb.Video(
        video_id=state.video_id,
        title=state.title,
        description=state.description,
        tags=list(state.tags),
        owner=state.owner,
        visibility=state.visibility,
        status=state.status,
        playable=is_playable(state),
        renditions=renditions(state),
        created_at=timestamp(state.created_at),
        updated_at=timestamp(state.updated_at),
    )
    if state.duration_seconds is not None:
        message.duration_seconds = state.duration_seconds
    if is_owner:
        message.progress = round(state.percent, 2)
        message.etag = metadata_etag(state)
        error = failure(state)
        if error is not None:
            message.error.CopyFrom(error)
    return message


def transcode_status(state: VideoState, queue: QueuePosition | None = None) -> pb.TranscodeStatus:
    message = pb.TranscodeStatus(
        video_id=state.video_id,
        status=state.status,
        progress=round(state.percent, 2),
        attempt=state.attempt,
        renditions=[
            pb.RenditionProgress(name=r.name, status=r.status, progress=round(r.percent, 2))
            for r in state.renditions
        ],
        version=state.version,
        updated_at=timestamp(state.updated_at),
    )
    if state.step is not None:
        message.step = state.step
    if state.eta_seconds is not None:
        message.eta_seconds = state.eta_seconds
    error = failure(state)
    if error is not None:
        message.error.CopyFrom(error)
    if queue is not None:
        message.queue.CopyFrom(pb.QueuePosition(position=queue.position, length=queue.length))
    return message


def complete_upload(state: VideoState) -> pb.CompleteUploadResponse:
    return pb.CompleteUploadResponse(
        video_id=state.video_id,
        status=Status.PENDING_TRANSCODE,
        job_id=state.job_id or "",
        current_status=state.status,
    )


def summary(
    hit: SearchHit,
    *,
    score: float | None = None,
    reasons: tuple[str, ...] = (),
    trending_score: float | None = None,
) -> pb.VideoSummary:
    message = pb.VideoSummary(
        video_id=hit.video_id,
        title=hit.title,
        description=hit.description,
        tags=list(hit.tags),
        owner=hit.owner,
        views=hit.views,
        reasons=list(reasons),
    )
    if hit.duration_seconds is not None:
        message.duration_seconds = hit.duration_seconds
    if hit.ready_at is not None:
        message.ready_at.CopyFrom(timestamp(hit.ready_at))
    if score is not None:
        message.score = score
    if trending_score is not None:
        message.trending_score = trending_score
    return message


def history_entry(entry: an.HistoryEntry) -> pb.HistoryEntry:
    return pb.HistoryEntry(
        video_id=entry.video_id,
        last_watched_at=timestamp(an.from_ms(entry.last_watched_ms)),
        position_seconds=entry.position_seconds,
        completed=entry.completed,
    )
