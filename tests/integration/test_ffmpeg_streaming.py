"""FfmpegTranscoder streaming its source from the real object store (SeaweedFS) over HTTP.

The transcode agent hands ffmpeg a pre-signed GET URL instead of downloading the upload:
these tests cover what that changes — range requests for an MP4 whose index is at the end,
an object deleted while the job waited, a store that is down, and signatures kept out of
error details.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import StoreBucket, ffmpeg, server_store
from tritontube.devstack.seaweedfs import SeaweedFSServer
from tritontube.domain.media import LADDER, FailureReason, MediaError, plan_renditions
from tritontube.media.ffmpeg import FfmpegTranscoder
from tritontube.media.port import RemoteSource
from tritontube.storage.s3 import S3ObjectStore

pytestmark = pytest.mark.integration

KEY = "uploads/v1/source.mp4"


@pytest.fixture
def store(object_store: StoreBucket) -> Iterator[S3ObjectStore]:
    adapter = server_store(object_store)
    yield adapter
    adapter.close()


@pytest.fixture
def transcoder() -> FfmpegTranscoder:
    return FfmpegTranscoder(preset="ultrafast", timeout_seconds=60, probe_timeout_seconds=20)


@pytest.fixture(scope="module")
def index_at_end(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3 s 480x270 H.264/AAC MP4 written without faststart: the moov box comes last."""
    path = tmp_path_factory.mktemp("media") / "clip.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=size=480x270:rate=25:duration=3",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=3",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
        str(path),
    )  # fmt: skip
    data = path.read_bytes()
    assert data.rfind(b"moov") > data.find(b"mdat") > 0
    return path


async def remote(store: S3ObjectStore, key: str = KEY, size: int = 1) -> RemoteSource:
    return RemoteSource(await store.presign_get(key, 600, internal=True), size)


async def test_a_streamed_source_is_probed_packaged_and_postered(
    store: S3ObjectStore, transcoder: FfmpegTranscoder, index_at_end: Path, tmp_path: Path
) -> None:
    await store.upload_file(index_at_end, KEY, "video/mp4")
    info = await store.head(KEY)
    assert info is not None
    source = await remote(store, size=info.size)
    probe = await transcoder.probe(source)
    assert (probe.width, probe.height, probe.has_audio) == (480, 270, True)
    assert probe.duration_seconds == pytest.approx(3.0, abs=0.1)
    plan = plan_renditions(probe, LADDER)
    output = await transcoder.transcode(source, tmp_path / "dash", plan, probe)
    assert [r.height for r in output.renditions] == [270] and output.audio is not None
    await transcoder.thumbnail(source, tmp_path / "poster.jpg", probe)
    assert (tmp_path / "poster.jpg").read_bytes()[:3] == b"\xff\xd8\xff"
    assert "?" not in str(source) and "Signature" not in repr(source)


async def test_an_object_deleted_from_the_store_is_source_missing(
    store: S3ObjectStore, transcoder: FfmpegTranscoder, index_at_end: Path
) -> None:
    await store.upload_file(index_at_end, KEY, "video/mp4")
    source = await remote(store)
    await store.delete([KEY])
    with pytest.raises(MediaError) as caught:
        await transcoder.probe(source)
    assert caught.value.reason is FailureReason.SOURCE_MISSING
    assert not caught.value.transient
    assert "Signature=" not in (caught.value.detail or "")


async def test_a_store_that_is_down_is_a_transient_failure(
    private_object_store: SeaweedFSServer, transcoder: FfmpegTranscoder, index_at_end: Path
) -> None:
    store = server_store(private_object_store)
    try:
        await store.upload_file(index_at_end, KEY, "video/mp4")
        source = await remote(store)
    finally:
        store.close()
    private_object_store.stop()
    with pytest.raises(MediaError) as caught:
        await transcoder.probe(source)
    assert caught.value.transient, caught.value.detail
    assert "Signature=" not in (caught.value.detail or "")
