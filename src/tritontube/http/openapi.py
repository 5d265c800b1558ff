"""The OpenAPI 3.1 document of the whole HTTP API, served at ``GET /openapi.json``.

Request bodies and query parameters come from the pydantic models that validate them (one
source of truth: ``tritontube/uploads.py``, ``watch.py``, ``manage.py``, ``queries.py``, the
same models the gRPC servicer validates with); responses are written out here.
``tests/fuzz/test_openapi_schemathesis.py`` drives the API from this document and checks every
answer against it, and ``tests/contract/test_api_contract.py`` checks that every RPC of
``proto/web.proto`` is a route of ``create_http_app`` described here.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from aiohttp import web
from pydantic.json_schema import models_json_schema

from tritontube.http.media_tokens import MEDIA_TYPES
from tritontube.manage import VideoPatchRequest
from tritontube.queries import (
    VIDEO_ID_PATTERN,
    HistoryParams,
    ListVideosParams,
    QueryModel,
    RecommendationsParams,
    SearchParams,
    TrendingParams,
)
from tritontube.uploads import (
    MAX_TAG_LENGTH,
    MAX_TAGS,
    UPLOAD_ID_PATTERN,
    CompleteUploadRequest,
    SignPartsRequest,
    UploadUrlRequest,
)
from tritontube.watch import MAX_BATCH, WatchEventBatch, WatchEventIn

JSON = "application/json"
PROBLEM = "application/problem+json"
VIDEO_ID = {"type": "string", "pattern": VIDEO_ID_PATTERN}
NULLABLE_STR = {"type": ["string", "null"]}
NULLABLE_NUM = {"type": ["number", "null"]}
TIMESTAMP = {"type": "string"}
STATUS = {
    "type": "string",
    "enum": [
        "UPLOAD_PENDING",
        "UPLOADED",
        "PENDING_TRANSCODE",
        "TRANSCODING",
        "READY",
        "FAILED",
        "EXPIRED",
    ],
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(required: list[str], props: dict[str, Any], *, extra: bool = True) -> dict[str, Any]:
    return {
        "type": "object",
        "required": required,
        "properties": props,
        "additionalProperties": extra,
    }


_RENDITION = _obj(
    ["name", "width", "height", "bandwidth"],
    {
        "name": {"type": "string"},
        "width": {"type": "integer"},
        "height": {"type": "integer"},
        "bandwidth": {"type": "integer"},
    },
)

_HIT = _obj(
    ["videoId", "title", "tags", "owner", "views"],
    {
        "videoId": VIDEO_ID,
        "title": {"type": "string"},
        "description": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "owner": {"type": "string"},
        "views": {"type": "integer", "minimum": 0},
        "durationSeconds": NULLABLE_NUM,
        "readyAt": NULLABLE_STR,
        "score": {"type": ["number", "null"]},
        "reasons": {"type": "array", "items": {"type": "string"}},
    },
)

_RESPONSES: dict[str, dict[str, Any]] = {
    "Problem": _obj(
        ["type", "title", "status"],
        {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string"},
            "code": {"type": "string"},
            "instance": {"type": "string"},
            "errors": {
                "type": "array",
                "items": _obj(
                    ["field", "message"],
                    {"field": {"type": "string"}, "message": {"type": "string"}},
                ),
            },
        },
    ),
    "UploadSession": {
        **_obj(
            ["videoId", "expiresAt", "etag"],
            {
                "videoId": VIDEO_ID,
                "upload": _obj(
                    ["url", "fields"],
                    {
                        "url": {"type": "string"},
                        "fields": {"type": "object", "additionalProperties": {"type": "string"}},
                    },
                ),
                "multipart": _obj(
                    ["uploadId", "partSizeBytes", "partCount"],
                    {
                        "uploadId": {"type": "string"},
                        "partSizeBytes": {"type": "integer", "minimum": 1},
                        "partCount": {"type": "integer", "minimum": 1, "maximum": 10000},
                    },
                ),
                "expiresAt": TIMESTAMP,
                "etag": {"type": "string"},
            },
        ),
        "description": "`upload` (a pre-signed form POST) or, for a `resumable` request above "
        "the threshold, `multipart` (sign parts with `uploadParts`, then `completeUpload` "
        "with the `uploadId`).",
    },
    "UploadParts": _obj(
        ["videoId", "uploadId", "sizeBytes", "partSizeBytes", "partCount", "parts"],
        {
            "videoId": VIDEO_ID,
            "uploadId": {"type": "string"},
            "sizeBytes": {"type": "integer"},
            "partSizeBytes": {"type": "integer"},
            "partCount": {"type": "integer"},
            "parts": {
                "type": "array",
                "items": _obj(
                    ["partNumber", "sizeBytes"],
                    {
                        "partNumber": {"type": "integer", "minimum": 1, "maximum": 10000},
                        "sizeBytes": {"type": "integer", "minimum": 0},
                        "url": {"type": "string", "description": "Pre-signed PUT (signing)"},
                        "etag": {"type": "string", "description": "Stored part (listing)"},
                    },
                ),
            },
            "expiresAt": TIMESTAMP,
        },
    ),
    "CompleteUploadResponse": _obj(
        ["videoId", "status", "jobId", "currentStatus"],
        {
            "videoId": VIDEO_ID,
            "status": {"type": "string", "enum": ["PENDING_TRANSCODE"]},
            "jobId": NULLABLE_STR,
            "currentStatus": STATUS,
        },
    ),
    "TranscodeStatus": _obj(
        ["videoId", "status", "progress", "renditions", "version", "updatedAt"],
        {
            "videoId": VIDEO_ID,
            "status": STATUS,
            "progress": {"type": "number", "minimum": 0, "maximum": 100},
            "step": NULLABLE_STR,
            "etaSeconds": NULLABLE_NUM,
            "attempt": {"type": "integer", "minimum": 0},
            "renditions": {
                "type": "array",
                "items": _obj(
                    ["name", "status", "progress"],
                    {
                        "name": {"type": "string"},
                        "status": {"type": "string"},
                        "progress": {"type": "number"},
                    },
                ),
            },
            "version": {"type": "integer", "minimum": 1},
            "updatedAt": TIMESTAMP,
            "error": _obj(
                ["code", "message"], {"code": {"type": "string"}, "message": {"type": "string"}}
            ),
            "queue": _obj(
                ["position", "length"],
                {
                    "position": {"type": "integer", "minimum": 1},
                    "length": {"type": "integer", "minimum": 1},
                },
            ),
        },
    ),
    "VideoMetadata": _obj(
        ["videoId", "title", "owner", "status", "playable"],
        {
            "videoId": VIDEO_ID,
            "title": {"type": "string"},
            "description": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "owner": {"type": "string"},
            "visibility": {"type": "string", "enum": ["public", "unlisted", "private"]},
            "status": STATUS,
            "playable": {"type": "boolean"},
            "durationSeconds": NULLABLE_NUM,
            "renditions": {"type": "array", "items": _RENDITION},
            "createdAt": NULLABLE_STR,
            "updatedAt": NULLABLE_STR,
            "progress": {"type": "number"},
            "etag": {
                "type": "string",
                "description": "The owner only: the video's etag, PATCH's If-Match.",
            },
        },
    ),
    "DeletionAccepted": _obj(
        ["videoId", "status"],
        {"videoId": VIDEO_ID, "status": {"type": "string", "const": "DELETING"}},
    ),
    "VideoList": _obj(
        ["videos", "nextPageToken"],
        {
            "videos": {"type": "array", "items": _ref("VideoMetadata")},
            "nextPageToken": NULLABLE_STR,
        },
    ),
    "PlaybackInfo": _obj(
        ["videoId", "status", "manifestUrl", "renditions", "expiresAt"],
        {
            "videoId": VIDEO_ID,
            "title": {"type": "string"},
            "status": STATUS,
            "manifestUrl": {"type": "string"},
            "thumbnailUrl": NULLABLE_STR,
            "durationSeconds": NULLABLE_NUM,
            "renditions": {"type": "array", "items": _RENDITION},
            "subtitles": {"type": "array"},
            "drm": {"type": ["object", "null"]},
            "expiresAt": TIMESTAMP,
        },
    ),
    "TrendingPage": _obj(
        ["results"],
        {
            "results": {
                "type": "array",
                "items": {
                    "allOf": [
                        _HIT,
                        _obj(["trendingScore"], {"trendingScore": {"type": "number"}}),
                    ]
                },
            }
        },
    ),
    "VideoStats": _obj(
        ["videoId", "views", "viewers", "watchSeconds", "averageCompletion", "trendingScore"],
        {
            "videoId": VIDEO_ID,
            "views": {"type": "integer", "minimum": 0},
            "viewers": {"type": "integer", "minimum": 0},
            "watchSeconds": {"type": "number", "minimum": 0},
            "averageCompletion": {"type": "number", "minimum": 0, "maximum": 1},
            "trendingScore": {"type": "number", "minimum": 0},
            "version": {"type": "integer", "minimum": 0},
            "updatedAt": NULLABLE_STR,
        },
    ),
    "WatchHistory": _obj(
        ["entries"],
        {
            "entries": {
                "type": "array",
                "items": _obj(
                    ["videoId", "lastWatchedAt", "positionSeconds", "completed"],
                    {
                        "videoId": VIDEO_ID,
                        "lastWatchedAt": TIMESTAMP,
                        "positionSeconds": {"type": "number", "minimum": 0},
                        "completed": {"type": "boolean"},
                    },
                ),
            }
        },
    ),
    "SearchPage": _obj(
        ["results", "nextPageToken"],
        {"results": {"type": "array", "items": _HIT}, "nextPageToken": NULLABLE_STR},
    ),
    "Recommendations": _obj(
        ["results", "coldStart"],
        {"results": {"type": "array", "items": _HIT}, "coldStart": {"type": "boolean"}},
    ),
    "WatchEventsAccepted": _obj(
        ["accepted", "eventIds"],
        {
            "accepted": {"type": "integer", "minimum": 1, "maximum": MAX_BATCH},
            "eventIds": {"type": "array", "items": {"type": "string"}},
        },
    ),
    "Health": _obj(["status"], {"status": {"type": "string", "const": "ok"}}),
    "Readiness": _obj(
        ["ready", "checks", "failing"],
        {
            "ready": {"type": "boolean"},
            "checks": {"type": "object", "additionalProperties": {"type": "string"}},
            "failing": {"type": "array", "items": {"type": "string"}},
        },
    ),
}

_DESCRIPTIONS = {
    400: "Malformed request (unparsable JSON, nesting too deep, a malformed HTTP message).",
    401: "Missing, invalid or expired bearer token.",
    403: "Forbidden: an invalid or expired signed media URL, or another user's video.",
    404: "No such video, or not visible to the caller.",
    409: "Conflict with the video's current state (not playable, not FAILED, no upload).",
    410: "The upload session has expired.",
    412: "If-Match does not match the current etag (of the session, or of the video).",
    413: "Body or declared upload size too large.",
    414: "Request line (path and query) longer than the server reads.",
    415: "Unsupported media type.",
    416: "Range not satisfiable.",
    422: "Invalid field or parameter; `errors` names each one.",
    428: "If-Match is required.",
    429: "Rate limit exceeded; retry after `Retry-After` seconds.",
    431: "A request header longer than the server reads.",
    503: "A backing service is unavailable; retry after `Retry-After` seconds.",
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    }
}


def _problems(*codes: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for code in codes:
        entry: dict[str, Any] = {
            "description": _DESCRIPTIONS[code],
            "content": {PROBLEM: {"schema": _ref("Problem")}},
        }
        if code in (429, 503):
            entry["headers"] = _RETRY_AFTER
        out[str(code)] = entry
    return out


def _ok(
    name: str,
    status: int = 200,
    description: str = "OK",
    links: dict[str, Any] | None = None,
) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {JSON: {"schema": _ref(name)}},
    }
    if links:
        response["links"] = links
    return {str(status): response}


# What a client does next with an upload session (OpenAPI links; schemathesis's stateful
# phase follows them: tests/fuzz/test_openapi_stateful.py).
_SESSION_LINKS: dict[str, Any] = {
    "CompleteUpload": {
        "operationId": "completeUpload",
        "requestBody": {"videoId": "$response.body#/videoId"},
        "parameters": {"header.If-Match": '"{$response.body#/etag}"'},
        "description": "Complete the upload once the file is in the store.",
    },
    "TranscodeStatus": {
        "operationId": "transcodeStatus",
        "parameters": {"path.video_id": "$response.body#/videoId"},
    },
    "PlaybackInfo": {
        "operationId": "playbackInfo",
        "parameters": {"path.video_id": "$response.body#/videoId"},
    },
}
_VIDEO_LINKS: dict[str, Any] = {
    "TranscodeStatus": _SESSION_LINKS["TranscodeStatus"],
    "PlaybackInfo": _SESSION_LINKS["PlaybackInfo"],
}


def _json_body(name: str) -> dict[str, Any]:
    return {"required": True, "content": {JSON: {"schema": _ref(name)}}}


def _path_video_id() -> dict[str, Any]:
    return {"name": "video_id", "in": "path", "required": True, "schema": VIDEO_ID}


def _if_match(description: str, *, required: bool) -> dict[str, Any]:
    return {
        "name": "If-Match",
        "in": "header",
        "required": required,
        "schema": {"type": "string"},
        "description": description,
    }


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def query_parameters(model: type[QueryModel]) -> list[dict[str, Any]]:
    """The query parameters of an endpoint, from its query model (the rules it enforces)."""
    schema = model.model_json_schema(by_alias=True)
    required = set(schema.get("required", ()))
    out = []
    for name, prop in schema["properties"].items():
        prop = {k: v for k, v in prop.items() if k not in ("title", "description")}
        # A query string has no null: "absent" is how a client leaves it out.
        variants = [v for v in prop.pop("anyOf", []) if v.get("type") != "null"]
        if variants:
            prop.update(variants[0])
        if prop.get("default") is None:
            prop.pop("default", None)
        param: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": prop,
            "description": schema["properties"][name].get("description", ""),
        }
        if prop.get("type") == "array":
            param["explode"] = True
        out.append(param)
    return out


_AUTHED = (401, 429, 503)


def _paths() -> dict[str, Any]:
    write = (400, 401, 413, 415, 422, 429, 503)
    return {
        "/healthz": {
            "get": {
                "operationId": "healthz",
                "summary": "Liveness",
                "security": [],
                "responses": _ok("Health"),
            }
        },
        "/readyz": {
            "get": {
                "operationId": "readyz",
                "summary": "Readiness of broker, object store, search and worker",
                "security": [],
                "responses": {
                    **_ok("Readiness", description="Every dependency answers."),
                    "503": {
                        "description": "Some dependency fails; `failing` names them.",
                        "headers": _RETRY_AFTER,
                        "content": {JSON: {"schema": _ref("Readiness")}},
                    },
                },
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics",
                "security": [],
                "responses": {
                    "200": {
                        "description": "Prometheus text format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "security": [],
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.1",
                        "content": {JSON: {"schema": {"type": "object"}}},
                    }
                },
            }
        },
        "/v1/videos:uploadURL": {
            "post": {
                "operationId": "createUploadUrl",
                "summary": "Start an upload session: a pre-signed POST to the object store",
                "requestBody": _json_body("UploadUrlRequest"),
                "responses": {**_ok("UploadSession", links=_SESSION_LINKS), **_problems(*write)},
            }
        },
        "/v1/videos:completeUpload": {
            "post": {
                "operationId": "completeUpload",
                "summary": "Verify the uploaded object and queue the transcode (idempotent)",
                "parameters": [
                    {
                        "name": "If-Match",
                        "in": "header",
                        "required": True,
                        "schema": {"type": "string"},
                        "description": "The session's etag.",
                    }
                ],
                "requestBody": _json_body("CompleteUploadRequest"),
                "responses": {
                    **_ok("CompleteUploadResponse", links=_VIDEO_LINKS),
                    **_problems(*write, 404, 409, 410, 412, 428),
                },
            }
        },
        "/v1/videos/{video_id}/uploadParts": {
            "post": {
                "operationId": "signUploadParts",
                "summary": "Pre-signed PUT URLs for parts of a multipart upload (the owner)",
                "parameters": [_path_video_id()],
                "requestBody": _json_body("SignPartsRequest"),
                "responses": {**_ok("UploadParts"), **_problems(*write, 404, 409, 410)},
            },
            "get": {
                "operationId": "listUploadParts",
                "summary": "The parts of a multipart upload the store holds (to resume)",
                "parameters": [
                    _path_video_id(),
                    {
                        "name": "uploadId",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "string", "pattern": UPLOAD_ID_PATTERN},
                    },
                ],
                "responses": {**_ok("UploadParts"), **_problems(*_AUTHED, 404, 409, 410, 422)},
            },
        },
        "/v1/videos/{video_id}/transcodeStatus": {
            "get": {
                "operationId": "transcodeStatus",
                "summary": "Transcode progress (the owner only)",
                "parameters": [_path_video_id()],
                "responses": {**_ok("TranscodeStatus"), **_problems(*_AUTHED, 404)},
            }
        },
        "/v1/videos/{video_id}/playbackInfo": {
            "get": {
                "operationId": "playbackInfo",
                "summary": "Signed manifest URL and renditions of a playable video",
                "parameters": [_path_video_id()],
                "responses": {**_ok("PlaybackInfo"), **_problems(*_AUTHED, 404, 409)},
            }
        },
        "/v1/videos/{video_id}": {
            "get": {
                "operationId": "videoMetadata",
                "summary": "A video's public metadata (and progress and etag for its owner)",
                "parameters": [_path_video_id()],
                "responses": {**_ok("VideoMetadata"), **_problems(*_AUTHED, 404)},
            },
            "patch": {
                "operationId": "updateVideo",
                "summary": "Edit title, description, tags or visibility (the owner only)",
                "parameters": [_path_video_id(), _if_match("The video's etag.", required=True)],
                "requestBody": {
                    "required": True,
                    "content": {
                        media: {"schema": _ref("VideoPatchRequest")}
                        for media in (JSON, "application/merge-patch+json")
                    },
                },
                "responses": {
                    **_ok("VideoMetadata"),
                    **_problems(*write, 403, 404, 412, 428),
                },
            },
            "delete": {
                "operationId": "deleteVideo",
                "summary": "Delete a video, its media and its source (the owner only)",
                "parameters": [
                    _path_video_id(),
                    _if_match("The video's etag; checked when given.", required=False),
                ],
                "responses": {
                    "204": {"description": "Deleted: gone everywhere, its objects removed"},
                    **_ok(
                        "DeletionAccepted",
                        202,
                        "Gone for every reader; its objects are still being removed",
                    ),
                    **_problems(*_AUTHED, 403, 404, 412),
                },
            },
        },
        "/v1/videos/{video_id}:retryTranscode": {
            "post": {
                "operationId": "retryTranscode",
                "summary": "Transcode a FAILED video again, as a new job (the owner only)",
                "parameters": [_path_video_id()],
                "responses": {
                    **_ok("TranscodeStatus", 202, "Queued: the new job's status"),
                    **_problems(*_AUTHED, 403, 404, 409),
                },
            }
        },
        "/v1/videos": {
            "get": {
                "operationId": "listVideos",
                "summary": "The caller's own uploads, newest first (cursor pagination)",
                "parameters": query_parameters(ListVideosParams),
                "responses": {**_ok("VideoList"), **_problems(*_AUTHED, 422)},
            }
        },
        "/v1/videos:search": {
            "get": {
                "operationId": "searchVideos",
                "summary": "Full-text search over READY public videos (cursor pagination)",
                "parameters": query_parameters(SearchParams),
                "responses": {**_ok("SearchPage"), **_problems(*_AUTHED, 422)},
            }
        },
        "/v1/videos:recommendations": {
            "get": {
                "operationId": "recommendations",
                "summary": "Videos to watch next (for the caller, optionally after a video)",
                "parameters": query_parameters(RecommendationsParams),
                "responses": {**_ok("Recommendations"), **_problems(*_AUTHED, 404, 422)},
            }
        },
        "/v1/videos:trending": {
            "get": {
                "operationId": "trendingVideos",
                "summary": "READY public videos by trending score, best first (all partitions)",
                "parameters": query_parameters(TrendingParams),
                "responses": {**_ok("TrendingPage"), **_problems(*_AUTHED, 422)},
            }
        },
        "/v1/videos/{video_id}/stats": {
            "get": {
                "operationId": "videoStats",
                "summary": "A video's watch statistics (for anyone who may watch it)",
                "parameters": [_path_video_id()],
                "responses": {**_ok("VideoStats"), **_problems(*_AUTHED, 404)},
            }
        },
        "/v1/users/me/history": {
            "get": {
                "operationId": "myHistory",
                "summary": "What the caller watched, most recent first",
                "parameters": query_parameters(HistoryParams),
                "responses": {**_ok("WatchHistory"), **_problems(*_AUTHED, 422)},
            }
        },
        "/v1/videos/{video_id}/watchEvents": {
            "post": {
                "operationId": "postWatchEvents",
                "summary": "Ingest one watch event or a batch (deduplicated by eventId)",
                "parameters": [_path_video_id()],
                "requestBody": {
                    "required": True,
                    "content": {
                        JSON: {"schema": {"oneOf": [_ref("WatchEventIn"), _ref("WatchEventBatch")]}}
                    },
                },
                "responses": {
                    **_ok("WatchEventsAccepted", 202, "Accepted and acknowledged by the log"),
                    **_problems(*write, 404, 409),
                },
            }
        },
        "/media/{token}/{video_id}/{path}": {
            "get": {
                "operationId": "media",
                "summary": "A manifest, segment or thumbnail through a signed, expiring URL",
                "security": [],
                "parameters": [
                    {"name": "token", "in": "path", "required": True, "schema": {"type": "string"}},
                    {
                        "name": "video_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    },
                    {"name": "path", "in": "path", "required": True, "schema": {"type": "string"}},
                    {
                        "name": "Range",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string"},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "The object, with its fixed media type (other file "
                        "types are 404), nosniff, a sandbox CSP and "
                        "`Access-Control-Allow-Origin: *`",
                        "content": {t: {} for t in MEDIA_TYPES.values()},
                    },
                    "206": {
                        "description": "A byte range",
                        "content": {t: {} for t in MEDIA_TYPES.values()},
                    },
                    "304": {"description": "Not modified"},
                    **_problems(403, 404, 416, 503),
                },
            }
        },
        "/": {
            "get": {
                "operationId": "spa",
                "summary": "The single-page app",
                "security": [],
                "responses": {
                    "200": {
                        "description": "HTML",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/static/{path}": {
            "get": {
                "operationId": "static",
                "summary": "The SPA's static files",
                "security": [],
                "parameters": [
                    {"name": "path", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {
                    "200": {"description": "A file", "content": {"*/*": {}}},
                    "403": {"description": "Forbidden"},
                    "404": {"description": "No such file"},
                },
            }
        },
    }


def _request_schemas() -> dict[str, Any]:
    models = [
        (UploadUrlRequest, "validation"),
        (CompleteUploadRequest, "validation"),
        (SignPartsRequest, "validation"),
        (WatchEventIn, "validation"),
        (WatchEventBatch, "validation"),
        (VideoPatchRequest, "validation"),
    ]
    _, defs = models_json_schema(models, ref_template="#/components/schemas/{model}", by_alias=True)  # type: ignore[arg-type]
    schemas: dict[str, Any] = defs.get("$defs", {})
    upload = schemas["UploadUrlRequest"]
    upload["properties"]["tags"]["items"] = {"type": "string", "maxLength": MAX_TAG_LENGTH}
    upload["properties"]["tags"]["maxItems"] = MAX_TAGS
    patch = schemas["VideoPatchRequest"]
    for prop in patch["properties"].values():
        # Optional, never null: a field is either changed or left out.
        variants = [v for v in prop.pop("anyOf", []) if v.get("type") != "null"]
        if variants:
            prop.update(variants[0])
        prop.pop("default", None)
    patch["properties"]["tags"]["items"] = {"type": "string", "maxLength": MAX_TAG_LENGTH}
    patch["minProperties"] = 1
    return schemas


# What the HTTP server itself answers to any request it cannot parse (``http/server.py``).
_PROTOCOL_ERRORS = (400, 414, 431)


def _with_protocol_errors(paths: dict[str, Any]) -> dict[str, Any]:
    """Every operation may meet a request the HTTP parser refuses: a malformed header, a
    request line or header over the parser's limits. Those answers are problems too."""
    for operations in paths.values():
        for operation in operations.values():
            for code, response in _problems(*_PROTOCOL_ERRORS).items():
                operation["responses"].setdefault(code, response)
    return paths


@cache
def build_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "TritonTube API",
            "version": "1.0.0",
            "description": (
                "Upload, transcode, play, search and recommend videos. Every `/v1` call needs "
                "`Authorization: Bearer <token>`; errors are RFC 9457 `application/problem+json`."
            ),
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": _with_protocol_errors(_paths()),
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
            "schemas": {**_request_schemas(), **_RESPONSES},
        },
    }


@cache
def _document_bytes() -> bytes:
    return json.dumps(build_document(), indent=1).encode()


async def openapi_json(request: web.Request) -> web.Response:
    """GET /openapi.json"""
    return web.Response(
        body=_document_bytes(),
        content_type=JSON,
        headers={"Cache-Control": "public, max-age=300"},
    )
