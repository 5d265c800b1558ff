"""Signed media URLs: ``/media/{token}/{video_id}/{path}``, time-limited and bound to one video.

``token = "{expiry}.{mac}"`` with ``mac = HMAC-SHA256(key, "{video_id}\\n{expiry}")`` (first 16
bytes, base64url). The manifest and every segment share the token, so the relative segment URLs
in the MPD (``init-0.m4s``, ``chunk-0-00001.m4s``) resolve under the same signed prefix and the
player follows them without knowing about tokens. ``path`` maps to the object key
``media/{video_id}/{path}``: nothing outside the video's media folder (its upload source above
all) is reachable.

The token does not name the viewer: who may watch is decided once, when ``playbackInfo`` hands
the URL out (private videos only to their owner). Serving segments then needs no state lookup,
and every viewer of one video within an expiry bucket gets the same URLs, which a CDN can cache.
The price is that a URL handed out stays valid until it expires; the TTL bounds that.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from tritontube.settings import Settings

MEDIA_ROUTE = "/media"
#: The only file types a presentation has, each served with its fixed type whatever the
#: object store says: nothing under /media/ is ever HTML or script (an upload cannot be
#: fetched through it, and a stored object of another type answers 404).
MEDIA_TYPES = {
    ".mpd": "application/dash+xml",
    ".m3u8": "application/vnd.apple.mpegurl",
    ".m4s": "video/iso.segment",
    ".mp4": "video/mp4",
    ".vtt": "text/vtt",
    ".jpg": "image/jpeg",
    ".webp": "image/webp",
}

#: On every /media response, errors included. The signed URL is the authorisation (as on a
#: CDN), so any origin may read it: partners' players work without configuration. What is
#: served is data, never a document: no sniffing, and a sandbox with nothing allowed.
MEDIA_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "ETag, Content-Length, Content-Range, Accept-Ranges",
    "Cross-Origin-Resource-Policy": "cross-origin",
    "Content-Security-Policy": "default-src 'none'; sandbox; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}
_KEY_LABEL = b"tritontube media url v1"
_MAC_BYTES = 16
_TOKEN = re.compile(r"^(?P<expiry>[0-9]{1,12})\.(?P<mac>[A-Za-z0-9_-]{22})$")
# Path segments of letters, digits, '_', '-', '.', never starting with '.' (no '.', '..').
_SEGMENT = r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}"
_PATH = re.compile(rf"^{_SEGMENT}(?:/{_SEGMENT}){{0,7}}$")


class Refusal(StrEnum):
    """Why a media URL was refused (also the problem ``code`` suffix and a metric label)."""

    INVALID = "invalid"
    EXPIRED = "expired"
    BAD_PATH = "bad_path"


class MediaTokenError(Exception):
    def __init__(self, reason: Refusal) -> None:
        super().__init__(reason.value)
        self.reason = reason


def media_root(video_id: str) -> str:
    """The folder of a video's playable media; transcode output lives below it."""
    return f"media/{video_id}/"


def object_key(video_id: str, path: str) -> str:
    """The object key a media URL's path names; MediaTokenError(BAD_PATH) when it is unsafe."""
    if not _PATH.match(path):
        raise MediaTokenError(Refusal.BAD_PATH)
    return media_root(video_id) + path


@dataclass(frozen=True)
class MediaSigner:
    """Issues and checks media tokens. ``now`` always comes from the caller (the app's clock)."""

    key: bytes
    ttl_seconds: int
    bucket_seconds: int = 60

    @classmethod
    def from_settings(cls, settings: Settings) -> MediaSigner:
        p = settings.playback
        if p.media_secret is not None:
            key = p.media_secret.get_secret_value().encode()
        else:
            # Domain separation: a media MAC can never be mistaken for a JWT signature.
            secret = settings.auth.secret.get_secret_value().encode()
            key = hmac.new(secret, _KEY_LABEL, hashlib.sha256).digest()
        return cls(
            key=key, ttl_seconds=p.media_url_ttl_seconds, bucket_seconds=p.media_url_bucket_seconds
        )

    def issue(self, video_id: str, now: datetime) -> tuple[str, datetime]:
        """A token for ``video_id`` and when it expires (``now + ttl``, rounded up to a bucket)."""
        deadline = now.timestamp() + self.ttl_seconds
        expiry = math.ceil(deadline / self.bucket_seconds) * self.bucket_seconds
        return f"{expiry}.{self._mac(video_id, expiry)}", datetime.fromtimestamp(expiry, UTC)

    def verify(self, token: str, video_id: str, now: datetime) -> datetime:
        """The token's expiry when it is genuine for ``video_id`` and unexpired."""
        match = _TOKEN.match(token)
        if match is None:
            raise MediaTokenError(Refusal.INVALID)
        expiry = int(match["expiry"])
        if not hmac.compare_digest(match["mac"], self._mac(video_id, expiry)):
            raise MediaTokenError(Refusal.INVALID)
        if now.timestamp() >= expiry:
            raise MediaTokenError(Refusal.EXPIRED)
        return datetime.fromtimestamp(expiry, UTC)

    def url(self, base_url: str, token: str, video_id: str, key: str) -> str | None:
        """The signed URL of ``key``, or None when the key is outside the video's media folder."""
        root = media_root(video_id)
        if not key.startswith(root) or not _PATH.match(key[len(root) :]):
            return None
        return f"{base_url.rstrip('/')}{MEDIA_ROUTE}/{token}/{video_id}/{key[len(root) :]}"

    def _mac(self, video_id: str, expiry: int) -> str:
        digest = hmac.new(self.key, f"{video_id}\n{expiry}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:_MAC_BYTES]).rstrip(b"=").decode()
