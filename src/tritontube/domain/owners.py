"""Each owner's videos, newest first: the fold behind ``GET /v1/videos?owner=me``.

The VideoState table is keyed by video id, so "every video of one owner" is not a key read
there. The video-state agent forwards each new video (and each removal) keyed by its owner;
the owner-index agent folds them into :class:`OwnerVideos`, a table keyed by owner, so a
listing is one routed read on one worker however many workers share the videos.

Pages use a cursor (the last item's creation time and id), not an offset: a video uploaded
while someone pages goes to the front and never shifts or repeats the pages after it.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, replace
from datetime import datetime

CURSOR_VERSION = "v1"


class InvalidPageTokenError(ValueError):
    """A page token that no listing issued."""


@dataclass(frozen=True)
class OwnedVideo:
    video_id: str
    created_at: datetime


@dataclass(frozen=True)
class OwnerVideos:
    owner: str
    videos: tuple[OwnedVideo, ...] = ()  # newest first; ties by video id


def _order(v: OwnedVideo) -> tuple[int, str]:
    return -_ms(v.created_at), v.video_id


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def add_video(
    index: OwnerVideos | None, owner: str, video_id: str, created_at: datetime
) -> OwnerVideos:
    """The index with the video in it; the same object when it is already there."""
    current = index or OwnerVideos(owner=owner)
    if any(v.video_id == video_id for v in current.videos):
        return current
    videos = sorted((*current.videos, OwnedVideo(video_id, created_at)), key=_order)
    return replace(current, videos=tuple(videos))


def remove_video(index: OwnerVideos | None, video_id: str) -> OwnerVideos | None:
    """The index without the video; the same object when it was not there."""
    if index is None or all(v.video_id != video_id for v in index.videos):
        return index
    return replace(index, videos=tuple(v for v in index.videos if v.video_id != video_id))


@dataclass(frozen=True)
class Cursor:
    """Where a page ends: the last item's creation time (ms) and id."""

    created_ms: int
    video_id: str


def page(
    index: OwnerVideos | None, size: int, after: Cursor | None = None
) -> tuple[tuple[OwnedVideo, ...], Cursor | None]:
    """Up to ``size`` videos after ``after`` (newest first) and the cursor of the next page."""
    videos = () if index is None else index.videos
    if after is not None:
        bound = (-after.created_ms, after.video_id)
        videos = tuple(v for v in videos if _order(v) > bound)
    items = videos[:size]
    if len(videos) <= size or not items:
        return items, None
    last = items[-1]
    return items, Cursor(_ms(last.created_at), last.video_id)


def encode_cursor(cursor: Cursor) -> str:
    raw = f"{CURSOR_VERSION}:{cursor.created_ms}:{cursor.video_id}".encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(token: str) -> Cursor:
    """The cursor of a page token; :class:`InvalidPageTokenError` for anything else."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidPageTokenError("not a page token") from None
    version, _, rest = raw.partition(":")
    ms, _, video_id = rest.partition(":")
    negative = ms.startswith("-")
    digits = ms[1:] if negative else ms
    if (
        version != CURSOR_VERSION
        or not (digits.isascii() and digits.isdigit())
        or len(digits) > 16
        or not video_id
        or len(video_id) > 64
    ):
        raise InvalidPageTokenError("not a page token")
    return Cursor(-int(digits) if negative else int(digits), video_id)
