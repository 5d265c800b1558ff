import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Rendition(_message.Message):
    __slots__ = ("name", "width", "height", "bandwidth")
    NAME_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    BANDWIDTH_FIELD_NUMBER: _ClassVar[int]
    name: str
    width: int
    height: int
    bandwidth: int
    def __init__(self, name: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., bandwidth: _Optional[int] = ...) -> None: ...

class Failure(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class Video(_message.Message):
    __slots__ = ("video_id", "title", "description", "tags", "owner", "visibility", "status", "playable", "duration_seconds", "renditions", "created_at", "updated_at", "progress", "error", "etag")
    VIDEO_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    VISIBILITY_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PLAYABLE_FIELD_NUMBER: _ClassVar[int]
    DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RENDITIONS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    video_id: str
    title: str
    description: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    owner: str
    visibility: str
    status: str
    playable: bool
    duration_seconds: float
    renditions: _containers.RepeatedCompositeFieldContainer[Rendition]
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    progress: float
    error: Failure
    etag: str
    def __init__(self, video_id: _Optional[str] = ..., title: _Optional[str] = ..., description: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., owner: _Optional[str] = ..., visibility: _Optional[str] = ..., status: _Optional[str] = ..., playable: _Optional[bool] = ..., duration_seconds: _Optional[float] = ..., renditions: _Optional[_Iterable[_Union[Rendition, _Mapping]]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., progress: _Optional[float] = ..., error: _Optional[_Union[Failure, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...

class VideoSummary(_message.Message):
    __slots__ = ("video_id", "title", "description", "tags", "owner", "views", "duration_seconds", "ready_at", "score", "reasons", "trending_score")
    VIDEO_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    VIEWS_FIELD_NUMBER: _ClassVar[int]
    DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    READY_AT_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    TRENDING_SCORE_FIELD_NUMBER: _ClassVar[int]
    video_id: str
    title: str
    description: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    owner: str
    views: int
    duration_seconds: float
    ready_at: _timestamp_pb2.Timestamp
    score: float
    reasons: _containers.RepeatedScalarFieldContainer[str]
    trending_score: float
    def __init__(self, video_id: _Optional[str] = ..., title: _Optional[str] = ..., description: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., owner: _Optional[str] = ..., views: _Optional[int] = ..., duration_seconds: _Optional[float] = ..., ready_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., score: _Optional[float] = ..., reasons: _Optional[_Iterable[str]] = ..., trending_score: _Optional[float] = ...) -> None: ...

class CreateUploadURLRequest(_message.Message):
    __slots__ = ("title", "description", "tags", "file_name", "content_type", "size_bytes", "visibility", "resumable")
    TITLE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    VISIBILITY_FIELD_NUMBER: _ClassVar[int]
    RESUMABLE_FIELD_NUMBER: _ClassVar[int]
    title: str
    description: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    file_name: str
    content_type: str
    size_bytes: int
    visibility: str
    resumable: bool
    def __init__(self, title: _Optional[str] = ..., description: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., file_name: _Optional[str] = ..., content_type: _Optional[str] = ..., size_bytes: _Optional[int] = ..., visibility: _Optional[str] = ..., resumable: _Optional[bool] = ...) -> None: ...

class UploadForm(_message.Message):
    __slots__ = ("url", "fields")
    class FieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    URL_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    url: str
    fields: _containers.ScalarMap[str, str]
    def __init__(self, url: _Optional[str] = ..., fields: _Optional[_Mapping[str, str]] = ...) -> None: ...

class MultipartUpload(_message.Message):
    __slots__ = ("upload_id", "part_size_bytes", "part_count")
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    PART_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    PART_COUNT_FIELD_NUMBER: _ClassVar[int]
    upload_id: str
    part_size_bytes: int
    part_count: int
    def __init__(self, upload_id: _Optional[str] = ..., part_size_bytes: _Optional[int] = ..., part_count: _Optional[int] = ...) -> None: ...

class UploadSession(_message.Message):
    __slots__ = ("video_id", "upload", "expires_at", "etag", "multipart")
    VIDEO_ID_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    MULTIPART_FIELD_NUMBER: _ClassVar[int]
    video_id: str
    upload: UploadForm
    expires_at: _timestamp_pb2.Timestamp
    etag: str
    multipart: MultipartUpload
    def __init__(self, video_id: _Optional[str] = ..., upload: _Optional[_Union[UploadForm, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., etag: _Optional[str] = ..., multipart: _Optional[_Union[MultipartUpload, _Mapping]] = ...) -> None: ...

class CompleteUploadRequest(_message.Message):
    __slots__ = ("video_id", "etag", "upload_id")
    VIDEO_ID_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    video_id: str
    etag: str
    upload_id: str
    def __init__(self, video_id: _Optional[str] = ..., etag: _Optional[str] = ..., upload_id: _Optional[str] = ...) -> None: ...

class SignUploadPartsRequest(_message.Message):
    __slots__ = ("video_id", "upload_id", "part_numbers")
    VIDEO_ID_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    PART_NUMBERS_FIELD_NUMBER: _ClassVar[int]
    video_id: str
    upload_id: str
    part_numbers: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, video_id: _Optional[str] = ..., upload_id: _Optional[str] = ..., part_numbers: _Optional[_Iterable[int]] = ...) -> None: ...

class ListUploadPartsRequest(_message.Message):
    __slots__ = ("video_id", "upload_id")
    VIDEO_ID_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    video_id: str
    upload_id: str
    def __init__(self, video_id: _Optional[str] = ..., upload_id: _Optional[str] = ...) -> None: ...

class UploadPart(_message.Message):
    __slots__ = ("part_number", "size_bytes", "url", "etag")
    PART_NUMBER_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    part_number: int
    size_bytes: int
    url: str
    etag: str
    def __init__(self, part_number: _Optional[int] = ..., size_bytes: _Optional[int] = ..., url: _Optional[str] = ..., etag: _Optional[str] = ...) -> None: ...

class UploadParts(_message.Message):
    __slots__ = ("video_id", "upload_id", "size_bytes", "part_size_bytes", "part_count", "parts", "expires_at")
    VIDEO_ID_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    PART_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    PART_COUNT_FIELD_NUMBER: _ClassVar[int]
    PARTS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    video_id: str
    upload_id: str
    size_bytes: int
    part_size_bytes: int
    part_count: int
    parts: _containers.RepeatedCompositeFieldContainer[UploadPart]
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, video_id: _Optional[str] = ..., upload_id: _Optional[str] = ..., size_bytes: _Optional[int] = ..., part_size_bytes: _Optional[int] = ..., part_count: _Optional[int] = ..., parts: _Optional[_Iterable[_Union[UploadPart, _Mapping]]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CompleteUploadResponse(_message.Message):
    __slots__ = ("video_id", "status", "job_id", "current_status")
    VIDEO_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    CURRENT_STATUS_FIELD_NUMBER: _ClassVar[int]
    video_id: str
    status: str
    job_id: str
    current_status: str
    def __init__(self, video_id: _Optional[str] = ..., status: _Optional[str] = ..., job_id: _Optional[str] = ..., current_status: _Optional[str] = ...) -> None: ...

class GetTranscodeStatusRequest(_message.Message):
    __slots__ = ("video_id",)
    VIDEO_ID_FIELD_NUMBER: _ClassVar[int]
    video_id: str
    def __init__(self, video_id: _Optional[str] = ...) -> None: ...

class RenditionProgress(_message.Message):
    __slots__ = ("name", "status", "progress")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    name: str
    status: str
    progress: float
    def __init__(self, name: _Optional[str] = ..., status: _Optional[str] = ..., progress: _Optional[float] = ...) -> None: ...

class TranscodeStatus(_message.Message):
    __slots__ = ("video_id", "status", "progress", "step", "eta_seconds", "attempt", "renditions", "version", "updated_at", "error", "queue")
    VIDEO_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    ETA_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    RENDITIONS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    video_id: str
    status: str
    progress: float
    step: str
    eta_seconds: float
    attempt: int
    renditions: _containers.RepeatedCompositeFieldContainer[RenditionProgress]
    version: int
    updated_at: _timestamp_pb2.Timestamp
    error: Failure
    queue: QueuePosition
    def __init__(self, video_id: _Optional[str] = ..., status: _Optional[str] = ..., progress: _Optional[float] = ..., step: _Optional[str] = ..., eta_seconds: _Optional[float] = ..., attempt: _Optional[int] = ..., renditions: _Optional[_Iterable[_Union[RenditionProgress, _Mapping]]] = ..., version: _Optional[int] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., error: _Optional[_Union[Failure, _Mapping]] = ..., queue: _Optional[_Union[QueuePosition, _Mapping]] = ...) -> None: ...

class QueuePosition(_message.Message):
    __slots__ = ("position", "length")
    POSITION_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    position: int
    length: int
    def __init__(self, position: _Optional[int] = ..., length: _Optional[int] = ...) -> None: ...

class RetryTranscodeRequest(_message.Message):
    __slots__ = ("video_id",)
    VIDEO_ID_FIELD_NUMBER: _ClassVar[int]
    video_id: str
    def __init__(self, video_id: _Optional[str] = ...) -> None: ...

class GetPlaybackInfoRequest(_message.Message):
    __slots__ = ("video_id",)
    VIDEO_ID_FIELD_NUMBER: _ClassVar[int]
    video_id: str
    def __init__(self, video_id: _Optional[str] = ...) -> None: ...

class PlaybackInfo(_message.Message):
    __slots__ = ("video_id", "title", "status", "manifest_url", "thumbnail_url", "duration_seconds", "renditions", "expires_at")
    VIDEO_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_URL_FIELD_NUMBER: _ClassVar[int]
    THUMBNAIL_URL_FIELD_NUMBER: _ClassVar[int]
    DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RENDITIONS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    video_id: str
    title: str
    status: str
    manifest_url: str
    thumbnail_url: str
    duration_seconds: float
    renditions: _containers.RepeatedCompositeFieldContainer[Rendition]
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, video_id: _Optional[str] = ..., title: _Optional[str] = ..., status: _Optional[str] = ..., manifest_url: _Optional[str] = ..., thumbnail_url: _Optional[str] = ..., duration_seconds: _Optional[float] = ..., renditions: _Optional[_Iterable[_Union[Rendition, _Mapping]]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetVideoRequest(_message.Message):
    __slots__ = ("video_id",)
    VIDEO_ID_FIELD_NUMBER: _ClassVar[int]
    video_id: str
    def __init__(self, video_id: _Optional[str] = ...) -> None: ...

class ListVideosRequest(_message.Message):
    __slots__ = ("owner", "page_size", "page_token")
    OWNER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    owner: str
    page_size: int
    page_token: str
    def __init__(self, owner: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListVideosResponse(_message.Message):
    __slots__ = ("videos", "next_page_token")
    VIDEOS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    videos: _containers.RepeatedCompositeFieldContainer[Video]
    next_page_token: str
    def __init__(self, videos: _Optional[_Iterable[_Union[Video, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class SearchVideosRequest(_message.Message):
    __slots__ = ("q", "tags", "owner", "sort", "page_size", "page_token")
    Q_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    SORT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    q: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    owner: str
    sort: str
    page_size: int
    page_token: str
    def __init__(self, q: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., owner: _Optional[str] = ..., sort: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class SearchVideosResponse(_message.Message):
    __slots__ = ("results", "next_page_token")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[VideoSummary]
    next_page_token: str
    def __init__(self, results: _Optional[_Iterable[_Union[VideoSummary, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RecommendVideosRequest(_message.Message):
    __slots__ = ("video_id", "page_size")
    VIDEO_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    video_id: str
    page_size: int
    def __init__(self, video_id: _Optional[str] = ..., page_size: _Optional[int] = ...) -> None: ...

class RecommendVideosResponse(_message.Message):
    __slots__ = ("results", "cold_start")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    COLD_START_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[VideoSummary]
    cold_start: bool
    def __init__(self, results: _Optional[_Iterable[_Union[VideoSummary, _Mapping]]] = ..., cold_start: _Optional[bool] = ...) -> None: ...

class WatchEvent(_message.Message):
    __slots__ = ("event_id", "kind", "position_seconds", "occurred_at")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    POSITION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    kind: str
    position_seconds: float
    occurred_at: _timestamp_pb2.Timestamp
    def __init__(self, event_id: _Optional[str] = ..., kind: _Optional[str] = ..., position_seconds: _Optional[float] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SendWatchEventsRequest(_message.Message):
    __slots__ = ("video_id", "events")
    VIDEO_ID_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    video_id: str
    events: _containers.RepeatedCompositeFieldContainer[WatchEvent]
    def __init__(self, video_id: _Optional[str] = ..., events: _Optional[_Iterable[_Union[WatchEvent, _Mapping]]] = ...) -> None: ...

class SendWatchEventsResponse(_message.Message):
    __slots__ = ("accepted", "event_ids")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    EVENT_IDS_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    event_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, accepted: _Optional[int] = ..., event_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ListTrendingVideosRequest(_message.Message):
    __slots__ = ("page_size",)
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    def __init__(self, page_size: _Optional[int] = ...) -> None: ...

class ListTrendingVideosResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[VideoSummary]
    def __init__(self, results: _Optional[_Iterable[_Union[VideoSummary, _Mapping]]] = ...) -> None: ...

class GetVideoStatsRequest(_message.Message):
    __slots__ = ("video_id",)
    VIDEO_ID_FIELD_NUMBER: _ClassVar[int]
    video_id: str
    def __init__(self, video_id: _Optional[str] = ...) -> None: ...

class VideoStats(_message.Message):
    __slots__ = ("video_id", "views", "viewers", "watch_seconds", "average_completion", "trending_score", "version", "updated_at")
    VIDEO_ID_FIELD_NUMBER: _ClassVar[int]
    VIEWS_FIELD_NUMBER: _ClassVar[int]
    VIEWERS_FIELD_NUMBER: _ClassVar[int]
    WATCH_SECONDS_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_COMPLETION_FIELD_NUMBER: _ClassVar[int]
    TRENDING_SCORE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    video_id: str
    views: int
    viewers: int
    watch_seconds: float
    average_completion: float
    trending_score: float
    version: int
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, video_id: _Optional[str] = ..., views: _Optional[int] = ..., viewers: _Optional[int] = ..., watch_seconds: _Optional[float] = ..., average_completion: _Optional[float] = ..., trending_score: _Optional[float] = ..., version: _Optional[int] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListWatchHistoryRequest(_message.Message):
    __slots__ = ("page_size",)
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    def __init__(self, page_size: _Optional[int] = ...) -> None: ...

class HistoryEntry(_message.Message):
    __slots__ = ("video_id", "last_watched_at", "position_seconds", "completed")
    VIDEO_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_WATCHED_AT_FIELD_NUMBER: _ClassVar[int]
    POSITION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    video_id: str
    last_watched_at: _timestamp_pb2.Timestamp
    position_seconds: float
    completed: bool
    def __init__(self, video_id: _Optional[str] = ..., last_watched_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., position_seconds: _Optional[float] = ..., completed: _Optional[bool] = ...) -> None: ...

class ListWatchHistoryResponse(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[HistoryEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[HistoryEntry, _Mapping]]] = ...) -> None: ...

class VideoPatch(_message.Message):
    __slots__ = ("title", "description", "tags", "visibility")
    TITLE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    VISIBILITY_FIELD_NUMBER: _ClassVar[int]
    title: str
    description: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    visibility: str
    def __init__(self, title: _Optional[str] = ..., description: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., visibility: _Optional[str] = ...) -> None: ...

class UpdateVideoRequest(_message.Message):
    __slots__ = ("video_id", "video", "update_mask", "etag")
    VIDEO_ID_FIELD_NUMBER: _ClassVar[int]
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    video_id: str
    video: VideoPatch
    update_mask: _field_mask_pb2.FieldMask
    etag: str
    def __init__(self, video_id: _Optional[str] = ..., video: _Optional[_Union[VideoPatch, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...

class DeleteVideoRequest(_message.Message):
    __slots__ = ("video_id", "etag")
    VIDEO_ID_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    video_id: str
    etag: str
    def __init__(self, video_id: _Optional[str] = ..., etag: _Optional[str] = ...) -> None: ...
