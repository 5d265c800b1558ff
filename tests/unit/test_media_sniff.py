"""looks_like_video: the first bytes of the containers uploads accept, and of what they refuse."""

from __future__ import annotations

import pytest

from tritontube.http.media_sniff import looks_like_video


def ts_packets(count: int, prefix: bytes = b"") -> bytes:
    return b"".join(prefix + b"\x47" + bytes(187) for _ in range(count))


@pytest.mark.parametrize(
    "head",
    [
        b"\x00\x00\x00\x20ftypisom" + bytes(24),  # MP4
        b"\x00\x00\x00\x14ftyp3gp5" + bytes(24),  # 3GP
        b"\x1a\x45\xdf\xa3" + bytes(28),  # Matroska / WebM
        b"RIFF\x00\x10\x00\x00AVI LIST",  # AVI
        b"\x00\x00\x01\xba\x44\x00\x04\x00",  # MPEG program stream
        b"\x00\x00\x01\xb3\x28\x01\x68\x15",  # MPEG video elementary stream
        b"\x30\x26\xb2\x75\x8e\x66\xcf\x11" + bytes(8),  # ASF / WMV
        ts_packets(2),  # MPEG-TS
        ts_packets(2, prefix=b"\x0e\xbf\x46\x22"),  # M2TS (AVCHD): timecode + packet
    ],
)
def test_video_containers_are_recognised(head: bytes) -> None:
    assert looks_like_video(head)


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"%PDF-1.4 " + bytes(400),
        b"\x89PNG\r\n\x1a\n" + bytes(400),
        b"this is not a video, just some text\n" * 20,
        b"\x47" + bytes(400),  # one sync byte is not a transport stream
        b"\x0e\xbf\x46\x22\x47" + bytes(150),  # too short to see a second packet
    ],
)
def test_other_files_are_not(head: bytes) -> None:
    assert not looks_like_video(head)
