"""REST adapters of managing a video (``tritontube.manage``), the owner only:

``PATCH /v1/videos/{video_id}``                  edit title, description, tags, visibility;
                                                 ``If-Match: "<etag>"`` required (428/412)
``DELETE /v1/videos/{video_id}``                 204 once purged (202 while its objects are
                                                 still being removed); ``If-Match`` optional
``POST /v1/videos/{video_id}:retryTranscode``    202 with the transcode status of the new job
"""

from __future__ import annotations

from aiohttp import web

from tritontube import manage
from tritontube.http.auth import current_user
from tritontube.http.keys import services
from tritontube.http.uploads import if_match, read_json
from tritontube.http.videos import transcode_status_body, video_response
from tritontube.manage import VideoPatchRequest
from tritontube.videos import VideoView, check_video_id


async def update_video(request: web.Request) -> web.Response:
    """PATCH /v1/videos/{video_id} (JSON merge patch of the editable fields)."""
    user = current_user(request)
    video_id = check_video_id(request.match_info["video_id"])
    etag = if_match(request)
    patch: VideoPatchRequest = await read_json(request, VideoPatchRequest)
    state = await manage.update_video(services(request), user, video_id, patch, etag)
    return video_response(VideoView(state, is_owner=True))


async def delete_video(request: web.Request) -> web.Response:
    """DELETE /v1/videos/{video_id}"""
    user = current_user(request)
    video_id = check_video_id(request.match_info["video_id"])
    done = await manage.delete_video(services(request), user, video_id, if_match(request))
    if done.purged:
        return web.Response(status=204)
    return web.json_response({"videoId": done.video_id, "status": "DELETING"}, status=202)


async def retry_transcode(request: web.Request) -> web.Response:
    """POST /v1/videos/{video_id}:retryTranscode"""
    user = current_user(request)
    video_id = check_video_id(request.match_info["video_id"])
    state = await manage.retry_transcode(services(request), user, video_id)
    return web.json_response(transcode_status_body(state), status=202)
