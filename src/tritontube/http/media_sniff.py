"""Recognise video containers by their first bytes (the declared content type is not trusted)."""

from __future__ import annotations

_ISO_BMFF_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot")


def looks_like_video(head: bytes) -> bool:
    """True when ``head`` starts like a container ffmpeg can demux as video."""
    if len(head) >= 8 and head[4:8] in _ISO_BMFF_BOXES:  # MP4, MOV, 3GP
        return True
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # Matroska, WebM
        return True
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return True
    if head.startswith((b"\x00\x00\x01\xba", b"FLV", b"OggS")):  # MPEG-PS, FLV, Ogg
        return True
    if head.startswith(b"\x00\x00\x01\xb3"):  # MPEG-1/2 video elementary stream
        return True
    if head.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"):  # ASF / WMV
        return True
    # MPEG-TS: 188-byte packets, or 192-byte ones behind a 4-byte timecode (M2TS, AVCHD).
    return _sync_bytes(head, 0, 188) or _sync_bytes(head, 4, 192)


def _sync_bytes(head: bytes, first: int, packet: int) -> bool:
    return len(head) > first + packet and head[first] == head[first + packet] == 0x47
