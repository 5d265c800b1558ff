"""Plain helpers shared by the test modules: events in, effects out, polling, HTTP problems.

Import as ``from helpers import ...``: there is no ``tests/__init__.py``, so pytest's default
(prepend) import mode puts this folder on ``sys.path`` when it loads ``tests/conftest.py``,
the way it puts each test module's folder there.

Every function takes what it talks to explicitly (``Settings``, or bootstrap servers where a
test has only those); nothing here reads the environment or holds a connection between calls.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import ConsumerRecord

from tritontube.devstack.process import ManagedProcess
from tritontube.devstack.seaweedfs import SeaweedFSServer
from tritontube.devstack.stack import EmbeddedStack
from tritontube.domain.events import UploadCompleted, UploadSessionCreated, VideoState
from tritontube.domain.media import Probe
from tritontube.http.auth import mint_token
from tritontube.indexer.port import SearchIndex
from tritontube.indexer.query import SearchQuery
from tritontube.settings import S3Settings, Settings
from tritontube.storage.s3 import S3ObjectStore
from tritontube.streams import catalogue
from tritontube.streams.codec import AvroCodec, CodecError, SchemaRegistry
from tritontube.streams.records import EventCodec

#: Event time of the builders below: when the test session imported this module.
NOW = datetime.now(UTC).replace(microsecond=0)

Record = ConsumerRecord[bytes, bytes]


# --------------------------------------------------------------------------- upload events


def source_key(video_id: str) -> str:
    """Where the builders below say the upload's source object is."""
    return f"uploads/{video_id}/source.mp4"


def session(
    video_id: str, owner: str = "alice", *, ttl: timedelta = timedelta(minutes=15)
) -> UploadSessionCreated:
    """The ``UploadSessionCreated`` the API would publish for ``video_id`` (created at NOW)."""
    return UploadSessionCreated(
        event_id=f"c-{video_id}",
        video_id=video_id,
        owner=owner,
        title=f"Video {video_id}",
        file_name="clip.mp4",
        content_type="video/mp4",
        declared_size_bytes=100,
        source_key=source_key(video_id),
        etag=f"etag-{video_id}",
        created_at=NOW,
        expires_at=NOW + ttl,
    )


def completion(video_id: str, event_id: str | None = None, owner: str = "alice") -> UploadCompleted:
    """The ``UploadCompleted`` matching :func:`session` (same etag and source key)."""
    return UploadCompleted(
        event_id=event_id if event_id is not None else f"d-{video_id}",
        video_id=video_id,
        owner=owner,
        etag=f"etag-{video_id}",
        source_key=source_key(video_id),
        size_bytes=100,
        content_type="video/mp4",
        completed_at=NOW,
    )


# --------------------------------------------------------------------------- topics


def bootstrap_of(where: Settings | str) -> str:
    """Bootstrap servers: given as such, or those of ``where.kafka``."""
    return where if isinstance(where, str) else where.kafka.bootstrap_servers


async def create_topic(where: Settings | str, topic: str, partitions: int) -> None:
    """Create ``topic`` (replication 1) on the broker."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_of(where))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()


async def produce(where: Settings | str, topic: str, items: Iterable[tuple[str, bytes]]) -> None:
    """Send ``(key, value)`` pairs to ``topic`` in order and wait for every acknowledgement."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_of(where), linger_ms=20)
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key.encode()) for key, value in items]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def publish_upload(where: Settings | str, codec: EventCodec, video_id: str) -> None:
    """A session and its completion on ``uploads``, as the API publishes a finished upload."""
    events = (session(video_id), completion(video_id))
    await produce(where, catalogue.UPLOADS.name, [(video_id, codec.encode(e)) for e in events])


def _from_earliest(where: Settings | str, topic: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_of(where),
        auto_offset_reset="earliest",
        group_id=None,
        enable_auto_commit=False,
    )


async def read_topic(
    where: Settings | str, topic: str, expect: int, timeout: float = 20.0
) -> list[Record]:
    """Raw records of ``topic`` from the start: until ``expect`` arrived (or ``timeout``), then
    a further second, so that extra (unexpected) records are seen too."""
    consumer = _from_earliest(where, topic)
    await consumer.start()
    records: list[Record] = []
    try:
        deadline = time.monotonic() + timeout
        while len(records) < expect and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for msgs in batch.values():
                records.extend(msgs)
        batch = await consumer.getmany(timeout_ms=1000)
        for msgs in batch.values():
            records.extend(msgs)
    finally:
        await consumer.stop()
    return records


async def read_all(
    where: Settings | str, topic: str, codec: EventCodec, *, skip_undecodable: bool = False
) -> list[tuple[str, Any]]:
    """Every record on ``topic`` so far, as (key, decoded value), in partition order; read
    until three polls in a row bring nothing. ``skip_undecodable``: leave out records the
    codec refuses (a test put garbage on a topic others read)."""
    consumer = _from_earliest(where, topic)
    await consumer.start()
    out: list[tuple[str, Any]] = []
    try:
        quiet = 0
        while quiet < 3:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            records = [r for msgs in batch.values() for r in msgs]
            quiet = 0 if records else quiet + 1
            for r in records:
                try:
                    out.append((r.key.decode(), codec.decode(r.value)))
                except CodecError:
                    if not skip_undecodable:
                        raise
    finally:
        await consumer.stop()
    return out


def of(records: list[tuple[str, Any]], video_id: str, kind: type) -> list[Any]:
    """The values of :func:`read_all` output keyed ``video_id`` that are ``kind``s."""
    return [value for key, value in records if key == video_id and isinstance(value, kind)]


# --------------------------------------------------------------------------- worker, polling


_CODEC = EventCodec(AvroCodec(SchemaRegistry()))


def worker_get(settings: Settings, path: str, timeout: float = 10.0) -> tuple[int, Any]:
    """GET ``path`` on the worker's query views with the stack's internal token: (200, the
    Avro answer decoded into its domain type); (status, None) for an HTTP error; (0, None)
    when nothing answers. Blocking: call it off the loop."""
    url = f"{settings.worker_seed_urls()[0]}{path}"
    token = settings.internal_token().get_secret_value()
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})  # noqa: S310 - loopback test URL
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310 - loopback test URL
            return resp.status, _CODEC.decode(resp.read())
    except urllib.error.HTTPError as exc:
        with exc:  # an HTTPError holds the response's socket open until closed
            return exc.code, None
    except (urllib.error.URLError, OSError):
        return 0, None


def owned_videos(settings: Settings, owner: str = "alice") -> list[VideoState] | None:
    """Every video of ``owner`` through the worker's owner listing, newest first (all pages);
    None while the worker cannot answer. Blocking: call it off the loop."""
    videos: list[VideoState] = []
    token: str | None = None
    while True:
        query = "pageSize=100" + (f"&pageToken={token}" if token else "")
        status, page = worker_get(settings, f"/owners/{owner}/videos?{query}")
        if status != 200:
            return None
        videos.extend(page.videos)
        token = page.next_page_token
        if token is None:
            return videos


async def wait_for(
    check: Callable[[], Any], timeout: float = 30.0, what: str = "the condition"
) -> Any:
    """Poll a blocking ``check`` (off the loop) until it returns something truthy; return it."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await asyncio.to_thread(check)
        if last:
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what} not within {timeout}s (last: {last!r})")


async def wait_for_state(
    settings: Settings,
    video_id: str,
    check: Callable[[VideoState], bool],
    timeout: float = 60.0,
) -> VideoState:
    """The worker's state of ``video_id`` once ``check`` accepts it."""
    last: VideoState | None = None

    def reached() -> VideoState | None:
        nonlocal last
        status, body = worker_get(settings, f"/videos/{video_id}", timeout=5.0)
        last = body if status == 200 else last
        return body if status == 200 and check(body) else None

    try:
        state: VideoState = await wait_for(reached, timeout, f"{video_id}'s expected state")
    except AssertionError:
        raise AssertionError(f"{video_id} never reached the expected state; last: {last}") from None
    return state


def terminal(state: VideoState) -> bool:
    """A video state no further event moves on by itself."""
    return state.status in ("READY", "FAILED")


# --------------------------------------------------------------------------- media, processes


def ffmpeg(*args: str) -> None:
    """Run ffmpeg quietly (fixtures' media), failing the test on a non-zero exit."""
    binary = shutil.which("ffmpeg") or "ffmpeg"
    argv = [binary, "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args]
    subprocess.run(argv, check=True, timeout=60)


#: A small clip for every content type uploads accept: content type -> (file name, ffmpeg
#: output options). Tests assert that this covers ``UploadSettings.allowed_content_types``.
X264_FAST = ("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p")
CONTAINERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "video/mp4": ("clip.mp4", (*X264_FAST, "-c:a", "aac")),
    "video/x-m4v": ("clip.m4v", (*X264_FAST, "-c:a", "aac", "-f", "ipod")),
    "video/quicktime": ("phone.mov", ("-c:v", "libx265", "-x265-params", "log-level=error",
                                      "-tag:v", "hvc1", "-c:a", "aac")),
    "video/webm": ("browser.webm", ("-c:v", "libvpx-vp9", "-deadline", "realtime",
                                    "-c:a", "libopus")),
    "video/x-matroska": ("clip.mkv", (*X264_FAST, "-c:a", "flac")),
    "video/x-msvideo": ("old.avi", ("-c:v", "mpeg4", "-c:a", "libmp3lame")),
    "video/3gpp": ("phone.3gp", (*X264_FAST, "-c:a", "aac", "-ar", "16000", "-f", "3gp")),
    "video/3gpp2": ("phone.3g2", (*X264_FAST, "-c:a", "aac", "-f", "3g2")),
    "video/mpeg": ("dvd.mpg", ("-c:v", "mpeg2video", "-c:a", "mp2", "-f", "vob")),
    "video/mp2t": ("camera.m2ts", (*X264_FAST, "-c:a", "ac3", "-f", "mpegts",
                                   "-mpegts_m2ts_mode", "1")),
    "video/ogg": ("web.ogv", ("-c:v", "libtheora", "-c:a", "libvorbis", "-f", "ogg")),
    "video/x-flv": ("old.flv", ("-c:v", "flv1", "-c:a", "libmp3lame", "-ar", "44100")),
    "video/x-ms-wmv": ("office.wmv", ("-c:v", "wmv2", "-c:a", "wmav2", "-f", "asf")),
    "video/x-ms-asf": ("office.asf", ("-c:v", "msmpeg4", "-c:a", "wmav2", "-f", "asf")),
}  # fmt: skip


def container_clip(folder: Path, content_type: str) -> Path:
    """A 1 s 160x120 clip with a tone in the container ``CONTAINERS`` names for the type."""
    name, options = CONTAINERS[content_type]
    path = folder / name
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=15:duration=1",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=1",
        *options, str(path),
    )  # fmt: skip
    return path


def clip(path: Path, size: str, seconds: float, audio: bool = True) -> Path:
    """A testsrc2 H.264 clip at 25 fps, with a 440 Hz AAC tone unless ``audio`` is False."""
    video = ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration={seconds}"]
    sound = ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"] if audio else []
    codecs = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    codecs += ["-c:a", "aac", "-shortest"] if audio else []
    ffmpeg(*video, *sound, *codecs, str(path))
    return path


def restarted_clock_ts(
    folder: Path, parts: int = 2, seconds: int = 1, size: str = "320x240", rate: int = 25
) -> Path:
    """``parts`` MPEG-TS recordings of ``seconds`` each joined byte for byte (a camcorder's
    split files): the clock starts again at each join, and the container claims only one
    part's length."""
    names = [folder / f"part{i}.ts" for i in range(parts)]
    for part in names:
        ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds}",
               "-c:v", "libx264", "-preset", "ultrafast", "-f", "mpegts", str(part))  # fmt: skip
    joined = folder / "restarted_clock.ts"
    joined.write_bytes(b"".join(part.read_bytes() for part in names))
    return joined


@dataclasses.dataclass(frozen=True)
class StoreBucket:
    """One bucket of a running embedded object store, with the app keys that reach it (what
    the ``object_store`` fixture hands out)."""

    endpoint_url: str
    bucket: str
    access_key_id: str
    secret_access_key: str

    @classmethod
    def of(cls, server: SeaweedFSServer, bucket: str) -> StoreBucket:
        return cls(server.endpoint_url, bucket, server.access_key_id, server.secret_access_key)

    def create(self) -> None:
        """Create the bucket (blocking, plain boto3: fixtures call it outside any loop)."""
        client = boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
        )
        try:
            client.create_bucket(Bucket=self.bucket)
        finally:
            client.close()


def server_store(server: SeaweedFSServer | StoreBucket, **options: Any) -> S3ObjectStore:
    """An S3 client for ``server``'s bucket (``options``: S3ObjectStore's others); close it."""
    return S3ObjectStore(
        endpoint_url=server.endpoint_url,
        bucket=server.bucket,
        access_key_id=server.access_key_id,
        secret_access_key=server.secret_access_key,
        **options,
    )


def store_settings(server: SeaweedFSServer | StoreBucket, **overrides: Any) -> S3Settings:
    """The ``s3`` settings group that reaches ``server``'s bucket with its app keys."""
    fields: dict[str, Any] = {
        "endpoint_url": server.endpoint_url,
        "bucket": server.bucket,
        "access_key_id": server.access_key_id,
        "secret_access_key": server.secret_access_key,
        **overrides,
    }
    return S3Settings(**fields)


def process_named(stack: EmbeddedStack, name: str) -> ManagedProcess:
    """The stack's child called ``name`` (``objectstore``, ``broker``, ``worker``, ``api``)."""
    return next(p for p in stack.processes if p.name == name)


def _processes() -> Iterator[tuple[int, str, bytes]]:
    """(pid, name, command line) of every live process but this one."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            yield (
                int(entry.name),
                (entry / "comm").read_text().strip(),
                (entry / "cmdline").read_bytes(),
            )
        except OSError:
            continue


def processes_mentioning(marker: str, *programs: str) -> list[str]:
    """Command lines of live processes (not this one) that mention ``marker`` and, when
    ``programs`` are given, one of them."""
    return [
        cmdline.replace(b"\0", b" ").decode(errors="replace")
        for _, _, cmdline in _processes()
        if marker.encode() in cmdline
        and (not programs or any(p.encode() in cmdline for p in programs))
    ]


def pids_of(program: str, marker: str) -> list[int]:
    """Live processes named ``program`` (their comm) whose command line mentions ``marker``."""
    return [
        pid for pid, name, cmdline in _processes() if name == program and marker.encode() in cmdline
    ]


def scratch_leftovers(settings: Settings) -> list[Path]:
    """What the transcode agent left in its scratch directory."""
    root = settings.transcode.scratch_dir
    assert root is not None
    return list(root.iterdir()) if root.exists() else []


# --------------------------------------------------------------------------- HTTP API


async def all_pages(index: SearchIndex, query: SearchQuery) -> list[str]:
    """Every hit's id, following ``nextPageToken`` to the last page."""
    seen: list[str] = []
    while True:
        page = await index.search(query)
        seen += [hit.video_id for hit in page.results]
        if page.next_page_token is None:
            return seen
        query = dataclasses.replace(query, page_token=page.next_page_token)


def auth(settings: Settings, user: str = "alice") -> dict[str, str]:
    """Headers with a bearer token for ``user``, signed with the app's own key."""
    return {"Authorization": f"Bearer {mint_token(settings.auth, user)}"}


async def problem(resp: Any, status: int) -> dict[str, Any]:
    """Assert ``resp`` is an RFC 9457 problem with ``status`` and no traceback; its body."""
    text = await resp.text()
    assert resp.status == status, text
    assert resp.content_type == "application/problem+json", text
    assert "Traceback" not in text
    body: dict[str, Any] = await resp.json()
    assert body["status"] == status
    return body


def make_probe(width: int, height: int, **overrides: object) -> Probe:
    """A probe of a 10 s H.264 + AAC MP4 of ``width`` x ``height``, with ``overrides``."""
    base = Probe(
        width=width,
        height=height,
        coded_width=width,
        coded_height=height,
        rotation=0,
        duration_seconds=10.0,
        has_video=True,
        has_audio=True,
        video_codec="h264",
        audio_codec="aac",
        pix_fmt="yuv420p",
        frame_rate=30.0,
        variable_frame_rate=False,
        bit_depth=8,
        format_name="mov,mp4,m4a,3gp,3g2,mj2",
        size_bytes=1_000_000,
        video_stream_index=0,
        audio_stream_index=1,
    )
    return dataclasses.replace(base, **overrides)  # type: ignore[arg-type]


def json_log(path: Path) -> list[dict[str, Any]]:
    """A process's log file as the JSON objects it holds: every line must be one."""
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    records: list[dict[str, Any]] = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"not a JSON log line in {path.name}: {line[:300]!r}") from None
    return records


# --------------------------------------------------------------------------- DASH read-back


@dataclasses.dataclass(frozen=True)
class Stream:
    kind: str
    frames: tuple[float, ...]  # presentation times, sorted
    keyframes: tuple[float, ...]
    end: float  # last presentation time + its duration


def read_streams(manifest: Path) -> list[Stream]:
    """Every stream of the package as ffmpeg's DASH demuxer presents it, read one stream at
    a time (reading them all at once, ffprobe 5.1 dropped the last packet of one of them,
    from a one-pass package too)."""
    listing = _ffprobe_json(manifest, "stream=index,codec_type")
    streams = []
    for entry in listing["streams"]:
        data = _ffprobe_json(
            manifest, "packet=pts_time,duration_time,flags", "-select_streams", str(entry["index"])
        )
        packets = sorted(data["packets"], key=lambda p: float(p["pts_time"]))
        times = tuple(float(p["pts_time"]) for p in packets)
        keys = tuple(float(p["pts_time"]) for p in packets if "K" in p["flags"])
        end = float(packets[-1]["pts_time"]) + float(packets[-1].get("duration_time") or 0)
        streams.append(Stream(entry["codec_type"], times, keys, end))
    return streams


def _ffprobe_json(path: Path, entries: str, *options: str) -> dict[str, Any]:
    ffprobe = shutil.which("ffprobe") or "ffprobe"
    out = subprocess.run(
        [ffprobe, "-v", "error", *options, "-show_entries", entries, "-of", "json", str(path)],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    data: dict[str, Any] = json.loads(out.stdout)
    return data


def source_seconds(source: Path) -> dict[str, float]:
    """How long each kind of stream of the source plays (first packet to last end)."""
    streams = read_streams(source)
    return {s.kind: s.end - s.frames[0] for s in streams}


def decode_errors(manifest: Path) -> str:
    """What ffmpeg says decoding every stream of a DASH package (empty: no error)."""
    ffmpeg_bin = shutil.which("ffmpeg") or "ffmpeg"
    done = subprocess.run(
        [ffmpeg_bin, "-v", "error", "-i", str(manifest), "-map", "0", "-f", "null", "-"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return done.stderr if done.returncode == 0 else f"exit {done.returncode}: {done.stderr}"


def frame_gaps(stream: Stream, rate: float) -> list[tuple[float, float]]:
    """Consecutive frames of a constant-rate stream that are not one frame apart."""
    pairs = zip(stream.frames, stream.frames[1:], strict=False)
    return [(a, b) for a, b in pairs if abs((b - a) - 1 / rate) > 0.001]


async def download_prefix(store: S3ObjectStore, prefix: str, folder: Path) -> Path:
    """Every object under ``prefix`` into ``folder`` (as named under the prefix)."""
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    for info in await store.list(prefix):
        await store.download(info.key, folder / info.key[len(prefix) :])
    return folder
