"""``tritontube.v1.Web``: each RPC parses its request into the use case's input, calls the use
case the REST handler calls, and builds the response message. Nothing else happens here.

Proto3 scalars cannot be absent, so a zero value means "not given" where REST would leave the
parameter out (``page_size`` 0: the default; an empty ``page_token``: the first page); the
query models then apply exactly the REST API's rules and name the same fields when they
refuse one.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import grpc
from google.protobuf import empty_pb2

from tritontube import analytics, manage, recommend, search, uploads, videos, watch
from tritontube.grpc import messages
from tritontube.grpc.interceptors import current_user
from tritontube.manage import VideoPatchRequest
from tritontube.problems import invalid, precondition_required
from tritontube.queries import (
    HistoryParams,
    ListVideosParams,
    RecommendationsParams,
    SearchParams,
    TrendingParams,
)
from tritontube.services import Services
from tritontube.uploads import CompleteUploadRequest, SignPartsRequest, UploadUrlRequest
from tritontube.v1 import web_pb2 as pb
from tritontube.v1 import web_pb2_grpc
from tritontube.watch import WatchEventBatch

Context: TypeAlias = grpc.aio.ServicerContext
PATCHABLE = ("title", "description", "tags", "visibility")


def _given(**fields: Any) -> dict[str, Any]:
    """The fields a client set (proto3 zero values are "not given")."""
    return {name: value for name, value in fields.items() if value not in ("", 0, None, [])}


def _patch(request: pb.UpdateVideoRequest) -> VideoPatchRequest:
    """The fields the update mask names; without a mask, those the client set."""
    patch = request.video
    if request.HasField("update_mask") and request.update_mask.paths:
        unknown = [p for p in request.update_mask.paths if p not in PATCHABLE]
        if unknown:
            raise invalid(("updateMask", f"unknown field(s) {', '.join(unknown)}"))
        paths = list(request.update_mask.paths)
    else:
        paths = [p for p in ("title", "description", "visibility") if patch.HasField(p)]
        paths += ["tags"] if patch.tags else []
    values = {
        "title": patch.title,
        "description": patch.description,
        "tags": list(patch.tags),
        "visibility": patch.visibility,
    }
    return VideoPatchRequest.model_validate({p: values[p] for p in paths})


class WebServicer(web_pb2_grpc.WebServicer):
    def __init__(self, services: Services) -> None:
        self.services = services

    # -- uploads --------------------------------------------------------------------------
    async def CreateUploadURL(
        self, request: pb.CreateUploadURLRequest, context: Context
    ) -> pb.UploadSession:
        body = UploadUrlRequest.model_validate(
            {
                "title": request.title,
                "description": request.description,
                "tags": list(request.tags),
                "fileName": request.file_name,
                "contentType": request.content_type,
                "sizeBytes": request.size_bytes,
                "resumable": request.resumable,
                **_given(visibility=request.visibility),
            }
        )
        grant = await uploads.create_upload_url(self.services, current_user(), body)
        session = pb.UploadSession(
            video_id=grant.video_id,
            expires_at=messages.timestamp(grant.expires_at),
            etag=grant.etag,
        )
        if grant.post is not None:
            session.upload.CopyFrom(
                pb.UploadForm(url=grant.post.url, fields=dict(grant.post.fields))
            )
        if grant.multipart is not None:
            plan = grant.multipart.plan
            session.multipart.CopyFrom(
                pb.MultipartUpload(
                    upload_id=grant.multipart.upload_id,
                    part_size_bytes=plan.part_size,
                    part_count=plan.count,
                )
            )
        return session

    async def SignUploadParts(
        self, request: pb.SignUploadPartsRequest, context: Context
    ) -> pb.UploadParts:
        user = current_user()
        await uploads.open_session(self.services, user, request.video_id)
        body = SignPartsRequest.model_validate(
            {"uploadId": request.upload_id, "partNumbers": list(request.part_numbers)}
        )
        signed = await uploads.sign_parts(self.services, user, request.video_id, body)
        return pb.UploadParts(
            video_id=signed.video_id,
            upload_id=signed.upload_id,
            size_bytes=signed.plan.size_bytes,
            part_size_bytes=signed.plan.part_size,
            part_count=signed.plan.count,
            parts=[
                pb.UploadPart(part_number=p.number, size_bytes=p.size_bytes, url=p.url)
                for p in signed.parts
            ],
            expires_at=messages.timestamp(signed.expires_at),
        )

    async def ListUploadParts(
        self, request: pb.ListUploadPartsRequest, context: Context
    ) -> pb.UploadParts:
        state, plan, parts = await uploads.list_parts(
            self.services, current_user(), request.video_id, request.upload_id
        )
        return pb.UploadParts(
            video_id=state.video_id,
            upload_id=request.upload_id,
            size_bytes=plan.size_bytes,
            part_size_bytes=plan.part_size,
            part_count=plan.count,
            parts=[
                pb.UploadPart(part_number=p.part_number, size_bytes=p.size, etag=p.etag)
                for p in parts
            ],
        )

    async def CompleteUpload(
        self, request: pb.CompleteUploadRequest, context: Context
    ) -> pb.CompleteUploadResponse:
        if not request.etag:
            raise precondition_required("send the session's etag in etag")
        body = CompleteUploadRequest.model_validate(
            {"videoId": request.video_id, **_given(uploadId=request.upload_id)}
        )
        state = await uploads.complete_upload(
            self.services, current_user(), body.video_id, request.etag, body.upload_id
        )
        return messages.complete_upload(state)

    # -- reading videos -------------------------------------------------------------------
    async def GetTranscodeStatus(
        self, request: pb.GetTranscodeStatusRequest, context: Context
    ) -> pb.TranscodeStatus:
        view = await videos.transcode_status(self.services, current_user(), request.video_id)
        return messages.transcode_status(view.state, view.queue)

    async def GetPlaybackInfo(
        self, request: pb.GetPlaybackInfoRequest, context: Context
    ) -> pb.PlaybackInfo:
        grant = await videos.playback_info(self.services, current_user(), request.video_id)
        state = grant.state
        message = pb.PlaybackInfo(
            video_id=state.video_id,
            title=state.title,
            status=state.status,
            manifest_url=grant.manifest_url,
            renditions=messages.renditions(state),
            expires_at=messages.timestamp(grant.expires_at),
        )
        if grant.thumbnail_url is not None:
            message.thumbnail_url = grant.thumbnail_url
        if state.duration_seconds is not None:
            message.duration_seconds = state.duration_seconds
        return message

    async def GetVideo(self, request: pb.GetVideoRequest, context: Context) -> pb.Video:
        view = await videos.get_video(self.services, current_user(), request.video_id)
        return messages.video(view.state, is_owner=view.is_owner)

    async def ListVideos(
        self, request: pb.ListVideosRequest, context: Context
    ) -> pb.ListVideosResponse:
        params = ListVideosParams.model_validate(
            _given(owner=request.owner, pageSize=request.page_size, pageToken=request.page_token)
        )
        page = await videos.list_videos(self.services, current_user(), params)
        return pb.ListVideosResponse(
            videos=[messages.video(s, is_owner=True) for s in page.videos],
            next_page_token=page.next_page_token or "",
        )

    # -- search and recommendations -------------------------------------------------------
    async def SearchVideos(
        self, request: pb.SearchVideosRequest, context: Context
    ) -> pb.SearchVideosResponse:
        params = SearchParams.model_validate(
            _given(
                q=request.q,
                tags=list(request.tags),
                owner=request.owner,
                sort=request.sort,
                pageSize=request.page_size,
                pageToken=request.page_token,
            )
        )
        page = await search.search_videos(self.services, current_user(), params)
        return pb.SearchVideosResponse(
            results=[messages.summary(h, score=h.score) for h in page.results],
            next_page_token=page.next_page_token or "",
        )

    async def RecommendVideos(
        self, request: pb.RecommendVideosRequest, context: Context
    ) -> pb.RecommendVideosResponse:
        params = RecommendationsParams.model_validate(
            _given(videoId=request.video_id, pageSize=request.page_size)
        )
        found = await recommend.recommend_videos(self.services, current_user(), params)
        return pb.RecommendVideosResponse(
            results=[
                messages.summary(r.hit, score=r.score, reasons=r.reasons) for r in found.results
            ],
            cold_start=found.cold_start,
        )

    # -- watching and analytics -----------------------------------------------------------
    async def SendWatchEvents(
        self, request: pb.SendWatchEventsRequest, context: Context
    ) -> pb.SendWatchEventsResponse:
        video_id = videos.check_video_id(request.video_id)
        batch = WatchEventBatch.model_validate(
            {
                "events": [
                    {
                        "eventId": e.event_id,
                        "kind": e.kind,
                        "positionSeconds": e.position_seconds,
                        "occurredAt": messages.to_datetime(e.occurred_at),
                    }
                    for e in request.events
                ]
            }
        )
        events = [(f"events.{i}.", e) for i, e in enumerate(batch.events)]
        records = await watch.send_watch_events(self.services, current_user(), video_id, events)
        return pb.SendWatchEventsResponse(
            accepted=len(records), event_ids=[r.event_id for r in records]
        )

    async def ListTrendingVideos(
        self, request: pb.ListTrendingVideosRequest, context: Context
    ) -> pb.ListTrendingVideosResponse:
        params = TrendingParams.model_validate(_given(pageSize=request.page_size))
        current_user()  # authenticated, as every call; trending is the same for everyone
        found = await analytics.trending(self.services, params)
        return pb.ListTrendingVideosResponse(
            results=[messages.summary(t.hit, trending_score=t.score) for t in found]
        )

    async def GetVideoStats(
        self, request: pb.GetVideoStatsRequest, context: Context
    ) -> pb.VideoStats:
        stats = await analytics.video_stats(self.services, current_user(), request.video_id)
        public = stats.public
        message = pb.VideoStats(
            video_id=stats.video_id,
            views=public.views,
            viewers=public.viewers,
            watch_seconds=public.watch_seconds,
            average_completion=public.average_completion,
            trending_score=public.trending_score,
            version=public.version,
        )
        if stats.folded:
            message.updated_at.CopyFrom(messages.timestamp(public.updated_at))
        return message

    async def ListWatchHistory(
        self, request: pb.ListWatchHistoryRequest, context: Context
    ) -> pb.ListWatchHistoryResponse:
        params = HistoryParams.model_validate(_given(pageSize=request.page_size))
        entries = await analytics.history(self.services, current_user(), params)
        return pb.ListWatchHistoryResponse(entries=[messages.history_entry(e) for e in entries])

    # -- managing a video -----------------------------------------------------------------
    async def UpdateVideo(self, request: pb.UpdateVideoRequest, context: Context) -> pb.Video:
        video_id = videos.check_video_id(request.video_id)
        patch = _patch(request)
        state = await manage.update_video(
            self.services, current_user(), video_id, patch, request.etag or None
        )
        return messages.video(state, is_owner=True)

    async def DeleteVideo(
        self, request: pb.DeleteVideoRequest, context: Context
    ) -> empty_pb2.Empty:
        video_id = videos.check_video_id(request.video_id)
        await manage.delete_video(self.services, current_user(), video_id, request.etag or None)
        return empty_pb2.Empty()

    async def RetryTranscode(
        self, request: pb.RetryTranscodeRequest, context: Context
    ) -> pb.TranscodeStatus:
        state = await manage.retry_transcode(self.services, current_user(), request.video_id)
        return messages.transcode_status(state)
