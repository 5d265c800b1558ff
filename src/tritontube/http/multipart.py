"""REST adapters of resumable uploads (``tritontube.uploads``): pre-signed part URLs and the
parts already stored.

1. ``POST /v1/videos:uploadURL`` with ``resumable: true`` and a size above the threshold
   answers ``multipart: {uploadId, partSizeBytes, partCount}`` (an S3 multipart upload);
2. ``POST /v1/videos/{video_id}/uploadParts`` signs PUT URLs for the part numbers asked for
   (a batch at a time; the client PUTs them to the object store in parallel);
3. ``GET /v1/videos/{video_id}/uploadParts?uploadId=`` lists the parts the store holds, so a
   client resumes after a reload or a dropped connection without sending them again;
4. ``POST /v1/videos:completeUpload`` with ``uploadId`` joins the parts (every one there, each
   of its planned size) and verifies the object as for a form upload.

Only the session's owner, while the session is ``UPLOAD_PENDING`` and not expired; the upload
id must be the one of the session's key (the store answers NoSuchUpload otherwise). An
abandoned multipart upload is aborted when its session expires (the video-state agent).
"""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from tritontube import uploads
from tritontube.domain.multipart import PartPlan
from tritontube.http.auth import current_user
from tritontube.http.keys import services
from tritontube.http.uploads import read_json
from tritontube.uploads import SignPartsRequest

__all__ = ["SignPartsRequest", "list_parts", "sign_parts"]


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _plan_json(plan: PartPlan) -> dict[str, int]:
    return {"sizeBytes": plan.size_bytes, "partSizeBytes": plan.part_size, "partCount": plan.count}


async def sign_parts(request: web.Request) -> web.Response:
    """POST /v1/videos/{video_id}/uploadParts: pre-signed PUT URLs for some parts."""
    user = current_user(request)
    video_id = request.match_info["video_id"]
    await uploads.open_session(services(request), user, video_id)  # 404/409/410 before 422
    body: SignPartsRequest = await read_json(request, SignPartsRequest)
    signed = await uploads.sign_parts(services(request), user, video_id, body)
    return web.json_response(
        {
            "videoId": signed.video_id,
            "uploadId": signed.upload_id,
            **_plan_json(signed.plan),
            "parts": [
                {"partNumber": p.number, "sizeBytes": p.size_bytes, "url": p.url}
                for p in signed.parts
            ],
            "expiresAt": _iso(signed.expires_at),
        },
        headers={"Cache-Control": "no-store"},
    )


async def list_parts(request: web.Request) -> web.Response:
    """GET /v1/videos/{video_id}/uploadParts?uploadId=: the parts the store holds."""
    state, plan, parts = await uploads.list_parts(
        services(request),
        current_user(request),
        request.match_info["video_id"],
        request.query.get("uploadId", ""),
    )
    return web.json_response(
        {
            "videoId": state.video_id,
            "uploadId": request.query.get("uploadId", ""),
            **_plan_json(plan),
            "parts": [
                {"partNumber": p.part_number, "sizeBytes": p.size, "etag": p.etag} for p in parts
            ],
        },
        headers={"Cache-Control": "no-store"},
    )
