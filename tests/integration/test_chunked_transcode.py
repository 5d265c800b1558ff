"""Chunked transcoding through the real pipeline: broker, object store, worker, ffmpeg.

A video enters the way production does (UploadSessionCreated + UploadCompleted); a source
longer than ``chunk_threshold_seconds`` is cut by its job's owner into chunks that the
chunk agent encodes, and the owner joins them into one DASH package. One stack serves
every test of the module (each test uses its own videos); sources are 90 s at 320x240
(one rendition at the source's size) so that the suite stays fast: the media properties of
the joined package across renditions are proven on the adapter in
``test_chunked_media.py``, and played in a browser in ``tests/e2e``.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import helpers
from helpers import (
    decode_errors,
    download_prefix,
    ffmpeg,
    frame_gaps,
    of,
    produce,
    publish_upload,
    read_streams,
    scratch_leftovers,
    source_key,
    source_seconds,
    terminal,
    wait_for,
    wait_for_state,
)
from tritontube.deps import build_deps
from tritontube.devstack.process import ManagedProcess, free_port
from tritontube.devstack.seaweedfs import Credentials
from tritontube.devstack.stack import EmbeddedStack, worker_name
from tritontube.domain import transcode as tx
from tritontube.domain.events import (
    ChunkEncoded,
    ChunkFailed,
    ChunkProgress,
    RenditionReady,
    TranscodeChunk,
    TranscodeChunked,
    TranscodeFailed,
    TranscodeJob,
    TranscodeProgress,
    TranscodeSucceeded,
)
from tritontube.domain.manifest import read_tracks
from tritontube.settings import (
    ArchiveSettings,
    AuthSettings,
    HttpSettings,
    KafkaSettings,
    S3Settings,
    SearchSettings,
    Settings,
    TranscodeSettings,
    WorkerSettings,
)
from tritontube.storage.s3 import S3ObjectStore
from tritontube.streams import catalogue
from tritontube.streams.records import EventCodec

pytestmark = pytest.mark.integration

FFMPEG = shutil.which("ffmpeg")
if FFMPEG is None:  # pragma: no cover - the dev image installs it
    pytest.skip("ffmpeg is required", allow_module_level=True)

WORKERS = 2
SOURCE_SECONDS = 90
CHUNK_SECONDS = 20.0  # 90 s -> 4 chunks (round(90 / 20))


def long_clip(path: Path, seconds: int = SOURCE_SECONDS, *, audio: bool = True) -> Path:
    """A 320x240 25 fps H.264 clip with a keyframe every 2 s (and an AAC tone)."""
    video = ["-f", "lavfi", "-i", f"testsrc2=size=320x240:rate=25:duration={seconds}"]
    sound = ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"] if audio else []
    codecs = ["-c:v", "libx264", "-preset", "veryfast", "-g", "50", "-pix_fmt", "yuv420p"]
    codecs += ["-c:a", "aac", "-shortest"] if audio else []
    ffmpeg(*video, *sound, *codecs, str(path))
    return path


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return long_clip(tmp_path_factory.mktemp("media") / "long.mp4")


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("chunked")
    worker_port = free_port()
    keys = Credentials.generate()  # the stack's object store takes the app's keys from here
    return Settings(
        kafka=KafkaSettings(
            bootstrap_servers=f"127.0.0.1:{free_port()}", embedded_broker_compat=True, partitions=2
        ),
        s3=S3Settings(
            endpoint_url=f"http://127.0.0.1:{free_port()}",
            access_key_id=keys.access_key_id,
            secret_access_key=keys.secret_access_key,  # type: ignore[arg-type]
        ),
        http=HttpSettings(port=free_port()),
        worker=WorkerSettings(web_port=worker_port, data_dir=root / "worker"),
        search=SearchSettings(path=root / "search"),
        archive=ArchiveSettings(web_port=free_port()),
        transcode=TranscodeSettings(
            scratch_dir=root / "scratch",
            chunk_threshold_seconds=30.0,
            chunk_seconds=CHUNK_SECONDS,
            max_attempts=3,
            backoff_base_seconds=0.5,
            backoff_max_seconds=1.0,
        ),
        data_dir=root / "data",
        auth=AuthSettings(secret=secrets.token_urlsafe(32)),  # the worker refuses the placeholder
    )


@pytest.fixture(scope="module")
def stack(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStack]:
    """Two workers: every job's parts spread over both (the partitions of transcode-chunks)."""
    logs = tmp_path_factory.mktemp("logs")
    stack = EmbeddedStack(settings=settings, log_dir=logs, with_api=False, workers=WORKERS)
    try:
        stack.start_infrastructure()
        stack.start_workers()
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def store(settings: Settings, stack: EmbeddedStack) -> Iterator[S3ObjectStore]:
    client = S3ObjectStore.from_settings(settings.s3)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="module")
def codec() -> EventCodec:
    return build_deps(Settings()).codec


async def upload(
    store: S3ObjectStore, settings: Settings, codec: EventCodec, video_id: str, path: Path
) -> None:
    await store.upload_file(path, source_key(video_id), "video/mp4")
    await publish_upload(settings, codec, video_id)


async def stored_package(store: S3ObjectStore, prefix: str) -> tuple[str, dict[str, int]]:
    """The stored manifest and every stored object (name -> size) under ``prefix``."""
    manifest = (await store.get_bytes(prefix + tx.MANIFEST_NAME)).decode()
    objects = {info.key[len(prefix) :]: info.size for info in await store.list(prefix)}
    return manifest, objects


async def read_all(settings: Settings, topic: str, codec: EventCodec) -> list[tuple[str, Any]]:
    """Every decodable record of ``topic`` (the dead-letter test puts garbage on them)."""
    return await helpers.read_all(settings, topic, codec, skip_undecodable=True)


def results(records: list[tuple[str, Any]], video_id: str, kind: type) -> list[Any]:
    return of(records, video_id, kind)


# --------------------------------------------------------------------------- tests


async def test_a_long_source_is_cut_encoded_in_chunks_and_joined_into_one_package(
    settings: Settings,
    stack: EmbeddedStack,
    store: S3ObjectStore,
    codec: EventCodec,
    source: Path,
    tmp_path: Path,
) -> None:
    await upload(store, settings, codec, "long", source)
    state = await wait_for_state(settings, "long", terminal, timeout=240)
    assert state.status == "READY", state
    assert state.attempt == 1
    assert state.duration_seconds == pytest.approx(SOURCE_SECONDS, abs=0.05)
    assert state.thumbnail_key == "media/long/dash/poster.jpg"

    chunk_results = await read_all(settings, catalogue.TRANSCODE_CHUNK_RESULTS.name, codec)
    plan, dispatched = results(chunk_results, "long", TranscodeChunked)
    assert (plan.dispatched, dispatched.dispatched) == (False, True)  # sent, then every part
    assert len(plan.chunk_seconds) >= 4 and plan.has_audio
    assert sum(plan.chunk_seconds) == pytest.approx(SOURCE_SECONDS, abs=0.05)
    encoded = results(chunk_results, "long", ChunkEncoded)
    parts = sorted((e.kind, e.index) for e in encoded)
    assert parts == sorted([("VIDEO", i) for i in range(len(plan.chunk_seconds))] + [("AUDIO", 0)])
    assert results(chunk_results, "long", ChunkFailed) == []
    assert len({e.worker for e in encoded}) == WORKERS, "the parts spread over both workers"
    assert results(chunk_results, "long", ChunkProgress), "parts report their progress"

    # The parts are spread over the partitions of transcode-chunks, keyed by part.
    chunk_jobs = await read_all(settings, catalogue.TRANSCODE_CHUNKS.name, codec)
    keys = {
        key
        for key, value in chunk_jobs
        if isinstance(value, TranscodeChunk) and value.video_id == "long"
    }
    assert keys == {f"long/{k.lower()}/{i}" for k, i in parts}

    # One manifest over every part's segments, and every file it lists is stored.
    manifest, objects = await stored_package(store, "media/long/dash/")
    tracks = read_tracks(manifest)
    names = {name for t in tracks for name in (t.init, *(s.name for s in t.segments))}
    assert names | {"manifest.mpd", "poster.jpg"} == set(objects)
    video = [t for t in tracks if t.content_type == "video"]
    assert len(video) == 1 and video[0].segments[0].start == 0
    assert [s.number for s in video[0].segments] == list(range(1, len(video[0].segments) + 1))
    for before, after in zip(video[0].segments, video[0].segments[1:], strict=False):
        assert after.start == before.end  # no gap, no overlap, chunk boundaries included

    # The stored package, read back by ffmpeg's own DASH demuxer: it decodes without an
    # error, the video is continuous at 25 fps across every chunk boundary, and video and
    # audio last what the source lasts (within 50 ms).
    folder = await download_prefix(store, "media/long/dash/", tmp_path / "long")
    assert await asyncio.to_thread(decode_errors, folder / "manifest.mpd") == ""
    streams = await asyncio.to_thread(read_streams, folder / "manifest.mpd")
    expected = await asyncio.to_thread(source_seconds, source)
    for stream in streams:
        assert stream.end - stream.frames[0] == pytest.approx(expected[stream.kind], abs=0.05)
    (picture,) = [s for s in streams if s.kind == "video"]
    assert frame_gaps(picture, 25.0) == [] and len(picture.frames) == 25 * SOURCE_SECONDS

    # The same renditions metadata as the one pass: checksums over the stored files.
    progress = await read_all(settings, catalogue.TRANSCODE_PROGRESS.name, codec)
    (done,) = results(progress, "long", TranscodeSucceeded)
    (rendition,) = done.renditions
    assert rendition.segment_count == len(video[0].segments)
    assert rendition.size_bytes == sum(
        objects[n] for n in (video[0].init, *(s.name for s in video[0].segments))
    )
    assert [e.rendition.name for e in results(progress, "long", RenditionReady)] == [rendition.name]
    assert done.duration_seconds == pytest.approx(SOURCE_SECONDS, abs=0.05)
    assert results(progress, "long", TranscodeFailed) == []

    # Progress from the parts: QUEUED, then ENCODING with rendition percents and an ETA.
    updates = results(progress, "long", TranscodeProgress)
    steps = [u.step for u in updates]
    assert {"PROBING", "QUEUED", "ENCODING", "FINALIZING"} <= set(steps)
    encoding = [u for u in updates if u.step == "ENCODING"]
    assert any(u.eta_seconds is not None for u in encoding)
    assert all({r.name for r in u.renditions} == {rendition.name} for u in encoding)
    assert scratch_leftovers(settings) == []

    # A rerun after success changes nothing: the job comes again (as after a crash before
    # its offset was committed), and so does a part. Both are skipped, nothing is written.
    jobs = await read_all(settings, catalogue.TRANSCODE_JOBS.name, codec)
    (job,) = of(jobs, "long", TranscodeJob)
    part = next(v for _, v in chunk_jobs if isinstance(v, TranscodeChunk) and v.video_id == "long")
    await produce(settings, catalogue.TRANSCODE_JOBS.name, [("long", codec.encode(job))])
    await produce(settings, catalogue.TRANSCODE_CHUNKS.name, [("long/video/0", codec.encode(part))])
    before = {i.key: (i.size, i.etag) for i in await store.list("media/long/")}
    await asyncio.sleep(5)
    after = {i.key: (i.size, i.etag) for i in await store.list("media/long/")}
    assert after == before
    again = await read_all(settings, catalogue.TRANSCODE_CHUNK_RESULTS.name, codec)
    assert len(results(again, "long", ChunkEncoded)) == len(encoded)
    final = await read_all(settings, catalogue.TRANSCODE_PROGRESS.name, codec)
    assert len(results(final, "long", TranscodeSucceeded)) == 1
    assert (await wait_for_state(settings, "long", terminal)).version == state.version


def first_worker(stack: EmbeddedStack) -> ManagedProcess:
    return next(p for p in stack.processes if p.name == worker_name(0))


def encoded_parts(records: list[tuple[str, Any]], video_id: str) -> list[tuple[str, int]]:
    return [(e.kind, e.index) for e in results(records, video_id, ChunkEncoded)]


def chunk_encoders(video_id: str) -> dict[int, str]:
    """The ffmpeg processes encoding a part of ``video_id`` now: pid -> command line."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "ffmpeg":
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if f"/uploads/{video_id}/" in cmdline and "/part/manifest.mpd" in cmdline:
            found[int(entry.name)] = cmdline
    return found


async def encoders_seen(video_id: str, count: int, timeout: float = 120.0) -> dict[int, str]:
    """Poll until ``count`` different part encoders of ``video_id`` have run; the ones
    running at that moment."""
    seen: set[str] = set()
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        running = chunk_encoders(video_id)
        seen.update(running.values())
        if len(seen) >= count and running:
            return running
        await asyncio.sleep(0.02)
    raise AssertionError(f"saw {len(seen)} part encoder(s) of {video_id}, wanted {count}")


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def through(stack: EmbeddedStack, index: int) -> Settings:
    """The stack's settings with worker ``index`` as the one the helpers ask."""
    url = f"http://{stack.settings.worker.web_host}:{stack.worker_ports[index]}"
    http = stack.settings.http.model_copy(update={"worker_urls": (url,)})
    return stack.settings.model_copy(update={"http": http})


@pytest.mark.timeout(300)
async def test_a_worker_killed_mid_chunk_costs_that_chunk_and_the_video_ends_ready(
    settings: Settings, stack: EmbeddedStack, store: S3ObjectStore, codec: EventCodec, source: Path
) -> None:
    await upload(store, settings, codec, "killed", source)
    running = await encoders_seen("killed", 2)  # parts under way
    encoder = next(iter(running))
    names = [worker_name(i) for i in range(WORKERS)]
    victim = next(p for p in stack.processes if p.name in names and p.pid == parent_of(encoder))
    index = names.index(victim.name)
    victim.kill()  # kill -9, mid-chunk; the other worker carries on alone
    stack.processes.remove(victim)
    try:
        survivor = through(stack, 1 - index)
        state = await wait_for_state(survivor, "killed", terminal, timeout=240)
        assert state.status == "READY", state
        assert state.attempt == 1  # a crash is a redelivery, not a retry
        records = await read_all(settings, catalogue.TRANSCODE_CHUNK_RESULTS.name, codec)
    finally:
        stack.start_worker(index)
    parts = encoded_parts(records, "killed")
    plans = results(records, "killed", TranscodeChunked)
    plan = plans[0]
    assert set(parts) == {("VIDEO", i) for i in range(len(plan.chunk_seconds))} | {("AUDIO", 0)}
    # The part that was running when its worker died is encoded again by the other. A part
    # that worker had finished just before it died comes back too (its offset was not
    # committed yet) and is skipped, as the owner has its result: unless the owner was the
    # dead worker and its table was still being recovered on the survivor, when nobody can
    # say and the part is encoded once more rather than risk never being encoded.
    assert len(parts) - len(set(parts)) <= 2, parts
    manifest, objects = await stored_package(store, "media/killed/dash/")
    listed = {n for t in read_tracks(manifest) for n in (t.init, *(s.name for s in t.segments))}
    assert listed | {"manifest.mpd", "poster.jpg"} == set(objects)
    progress = await read_all(settings, catalogue.TRANSCODE_PROGRESS.name, codec)
    succeeded = {e.event_id for e in results(progress, "killed", TranscodeSucceeded)}
    assert succeeded == {"killed:etag-killed#1:succeeded"}
    # The restarted worker swept the dead one's scratch directory.
    await wait_for(lambda: scratch_leftovers(settings) == [], timeout=30, what="the sweep")


@pytest.mark.timeout(300)
async def test_a_part_whose_encoder_dies_is_retried_with_backoff(
    settings: Settings, stack: EmbeddedStack, store: S3ObjectStore, codec: EventCodec, source: Path
) -> None:
    await upload(store, settings, codec, "retried", source)
    running = await encoders_seen("retried", 1)
    # One encoder only: with two workers two parts may be under way at this moment.
    os.kill(min(running), signal.SIGKILL)

    state = await wait_for_state(settings, "retried", terminal, timeout=240)
    assert state.status == "READY", state
    assert state.attempt == 1  # the part was retried, not the job
    records = await read_all(settings, catalogue.TRANSCODE_CHUNK_RESULTS.name, codec)
    (failure,) = results(records, "retried", ChunkFailed)
    assert not failure.final and failure.reason == "TRANSCODE_FAILED"
    part = (failure.kind, failure.index)
    retried = [e for e in results(records, "retried", ChunkEncoded) if (e.kind, e.index) == part]
    assert [e.chunk_attempt for e in retried] == [2]
    jobs = await read_all(settings, catalogue.TRANSCODE_CHUNKS.name, codec)
    tries = [
        j
        for _, j in jobs
        if isinstance(j, TranscodeChunk) and j.video_id == "retried" and (j.kind, j.index) == part
    ]
    assert [t.chunk_attempt for t in tries] == [1, 2]
    wait = (tries[1].not_before - tries[1].created_at).total_seconds()
    assert 0.25 - 0.01 <= wait <= 0.5 + 0.01  # backoff_base 0.5 s with jitter in [0.5, 1] x base


@pytest.mark.timeout(300)
async def test_a_part_failing_for_good_fails_the_video_and_removes_its_output(
    settings: Settings, stack: EmbeddedStack, store: S3ObjectStore, codec: EventCodec, source: Path
) -> None:
    await upload(store, settings, codec, "doomed", source)
    await encoders_seen("doomed", 1)
    await store.delete([source_key("doomed")])  # the upload is gone while parts remain

    state = await wait_for_state(settings, "doomed", terminal, timeout=240)
    assert (state.status, state.error_code) == ("FAILED", "SOURCE_MISSING"), state
    assert state.error_message
    records = await read_all(settings, catalogue.TRANSCODE_CHUNK_RESULTS.name, codec)
    assert any(f.final for f in results(records, "doomed", ChunkFailed))
    # What the job stored (the poster, the parts encoded before) is removed, and a part
    # still running somewhere when it failed leaves nothing behind either.
    await wait_for(lambda: not chunk_encoders("doomed"), timeout=60, what="the encoders to end")
    await asyncio.sleep(2)
    assert await store.list("media/doomed/") == []
    progress = await read_all(settings, catalogue.TRANSCODE_PROGRESS.name, codec)
    assert [f.final for f in results(progress, "doomed", TranscodeFailed)] == [True]
    assert results(progress, "doomed", TranscodeSucceeded) == []


async def test_undecodable_parts_and_results_go_to_their_dead_letter_topics(
    settings: Settings, stack: EmbeddedStack, codec: EventCodec
) -> None:
    garbage = b"\xc3\x01not an avro message"
    await produce(settings, catalogue.TRANSCODE_CHUNKS.name, [("junk/video/0", garbage)])
    await produce(settings, catalogue.TRANSCODE_CHUNK_RESULTS.name, [("junk", garbage)])
    for spec in (catalogue.TRANSCODE_CHUNKS, catalogue.TRANSCODE_CHUNK_RESULTS):
        letters = await wait_for(
            lambda spec=spec: asyncio.run(read_all(settings, spec.dlq, codec)),
            timeout=60,
            what=f"a dead letter on {spec.dlq}",
        )
        (letter,) = [v for _, v in letters if v.value == garbage]
        assert letter.source_topic == spec.name and letter.error_type == "CodecError"


async def test_a_long_source_without_audio_is_chunked_without_an_audio_part(
    settings: Settings,
    stack: EmbeddedStack,
    store: S3ObjectStore,
    codec: EventCodec,
    tmp_path: Path,
) -> None:
    silent = long_clip(tmp_path / "silent.mp4", 60, audio=False)
    await upload(store, settings, codec, "silent", silent)
    state = await wait_for_state(settings, "silent", terminal, timeout=240)
    assert state.status == "READY", state
    records = await read_all(settings, catalogue.TRANSCODE_CHUNK_RESULTS.name, codec)
    assert {e.kind for e in results(records, "silent", ChunkEncoded)} == {"VIDEO"}
    folder = await download_prefix(store, "media/silent/dash/", tmp_path / "silent")
    assert await asyncio.to_thread(decode_errors, folder / "manifest.mpd") == ""
    streams = await asyncio.to_thread(read_streams, folder / "manifest.mpd")
    assert [s.kind for s in streams] == ["video"]
    assert frame_gaps(streams[0], 25.0) == [] and len(streams[0].frames) == 25 * 60
