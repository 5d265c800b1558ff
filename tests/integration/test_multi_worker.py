"""Periodic jobs and the archive with several workers and several archivers.

* The upload-session expiry scan runs on every worker over the partitions that worker owns
  as an active: with standby replicas each worker also holds copies of the other workers'
  partitions, and a scan of "every value in the local table" would expire each session once
  per worker. Each abandoned session is expired exactly once.
* Two archivers share the archive (one consumer group); one is killed with SIGKILL while
  events keep coming: every offset of every partition is archived exactly once, and the
  group's checkpoint is written (by one member) and covers what the workers committed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from helpers import owned_videos, produce, read_all, session, wait_for
from tritontube.devstack.process import ManagedProcess, free_port
from tritontube.devstack.stack import EmbeddedStack, settings_env
from tritontube.domain.events import UploadSessionExpired
from tritontube.settings import ArchiveSettings, Settings, UploadSettings, WorkerSettings
from tritontube.storage.port import ObjectNotFound
from tritontube.storage.s3 import S3ObjectStore
from tritontube.streams import archive, catalogue
from tritontube.streams.records import EventCodec

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def test_each_abandoned_session_expires_once_with_standby_replicas(
    make_settings: Callable[..., Settings],
    stack_factory: Callable[..., EmbeddedStack],
    codec: EventCodec,
) -> None:
    """Two workers, each a standby of the other's partitions. One is frozen (SIGSTOP) while
    its sessions pass their expiry: the other sees them expired in its standby copy, scan
    after scan, and must not act on partitions it does not own; once thawed, the owner
    expires each of them exactly once."""
    base = make_settings()
    settings = make_settings(
        # The freeze below must stay well inside the session timeout on a loaded machine: a
        # frozen worker the group gave up on would expire its old sessions as a zombie.
        kafka=base.kafka.model_copy(update={"session_timeout_ms": 12000}),
        worker=base.worker.model_copy(update={"transcode_enabled": False, "standby_replicas": 1}),
        # Scans far enough apart that a scan's expiries are folded before the next one (a
        # scan sooner than the fold would expire a session again: harmless, the fold
        # ignores it, but this test counts events).
        upload=UploadSettings(expiry_scan_seconds=1.0),
        archive=ArchiveSettings(enabled=False),
    )
    assert isinstance(settings.worker, WorkerSettings)
    stack = stack_factory(settings, workers=2)
    ids = [f"ex{i:02d}" for i in range(16)]
    ttl = timedelta(seconds=6)
    created = datetime.now(UTC)
    sessions = [
        dataclasses.replace(session(v), created_at=created, expires_at=created + ttl) for v in ids
    ]
    await produce(
        settings, catalogue.UPLOADS.name, [(s.video_id, codec.encode(s)) for s in sessions]
    )
    await wait_for(lambda: len(owned_videos(settings) or ()) == len(ids), timeout=30)
    frozen = stack.worker_processes()[1]
    assert frozen.pid is not None
    os.kill(frozen.pid, signal.SIGSTOP)
    frozen_at = datetime.now(UTC)
    try:
        # Until well past the expiry: the other worker scans its standby copy many times.
        await asyncio.sleep((created + ttl - frozen_at).total_seconds() + 2.5)
    finally:
        os.kill(frozen.pid, signal.SIGCONT)
    assert frozen_at < created + ttl, "the sessions expired before the freeze: nothing tested"

    def all_expired() -> bool:
        videos = owned_videos(settings)
        expired = [v.video_id for v in videos or () if v.status == "EXPIRED"]
        return sorted(expired) == ids

    await wait_for(all_expired, timeout=60, what="every session EXPIRED")
    await asyncio.sleep(1)  # a few more scans by both workers
    records = await read_all(settings, catalogue.UPLOADS.name, codec)
    expiries = Counter(k for k, e in records if isinstance(e, UploadSessionExpired))
    assert expiries == Counter(dict.fromkeys(ids, 1))


async def test_two_archivers_archive_every_offset_once_and_checkpoint(
    make_settings: Callable[..., Settings],
    stack_factory: Callable[..., EmbeddedStack],
    store_for: Callable[[Settings], S3ObjectStore],
    codec: EventCodec,
) -> None:
    settings = make_settings(
        archive=ArchiveSettings(flush_interval_seconds=0.3), transcode_agent=False
    )
    stack = stack_factory(settings)
    port = free_port()
    second = ManagedProcess(
        name="archiver-2",
        argv=stack._python("archiver"),
        host="127.0.0.1",
        port=port,
        log_path=stack.log_dir / "archiver-2.log",
        env={**settings_env(settings), "TRITONTUBE_ARCHIVE__WEB_PORT": str(port)},
    )
    stack.processes.append(second)
    await asyncio.to_thread(second.start)
    first = next(p for p in stack.processes if p.name == "archiver")

    store = store_for(settings)
    prefix = settings.archive.prefix
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    await admin.start()
    tps = [TopicPartition(catalogue.UPLOADS.name, p) for p in range(settings.kafka.partitions)]
    key = archive.checkpoint_key(prefix, settings.worker.app_id)

    async def checkpoint_covers(count: int) -> None:
        """The checkpoint names the worker group's committed offsets of every partition, once
        the workers have folded ``count`` sessions: both archivers' partitions in one file."""
        await wait_for(lambda: len(owned_videos(settings) or ()) == count, timeout=60)
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            offsets = await admin.list_consumer_group_offsets(
                settings.worker.app_id, partitions=tps
            )
            want = {(tp.topic, tp.partition): m.offset for tp, m in offsets.items()}
            try:
                point = archive.decode_checkpoint(await store.get_bytes(key))
            except ObjectNotFound:  # not written yet
                point = {}
            got = {k: v for k, v in point.items() if k[0] == catalogue.UPLOADS.name}
            if got == want and sum(want.values()) == count:
                return
            assert asyncio.get_running_loop().time() < deadline, (got, want)
            await asyncio.sleep(0.3)

    batches = 3
    per_batch = 40
    try:
        for batch in range(batches):
            ids = [f"ar{batch}-{i:02d}" for i in range(per_batch)]
            events = [(v, codec.encode(session(v))) for v in ids]
            await produce(settings, catalogue.UPLOADS.name, events)
            if batch == 0:
                await checkpoint_covers(per_batch)  # with both archivers alive
                first.kill()  # its partitions go to the other one, mid-stream
            await asyncio.sleep(0.3)
        total = batches * per_batch
        await checkpoint_covers(total)
    finally:
        await admin.close()

    async def archived() -> dict[TopicPartition, list[tuple[int, int]]]:
        ranges: dict[TopicPartition, list[tuple[int, int]]] = {}
        for f in archive.parse_keys(prefix, (o.key for o in await store.list(prefix))):
            if f.topic == catalogue.UPLOADS.name:
                tp = TopicPartition(f.topic, f.partition)
                ranges.setdefault(tp, []).append((f.start_offset, f.end_offset))
        return ranges

    ranges = await archived()
    assert len(ranges) == settings.kafka.partitions
    for tp, spans in ranges.items():
        offsets = sorted(o for s, e in spans for o in range(s, e + 1))
        assert offsets == list(range(len(offsets))), f"{tp}: gaps or duplicates in {spans}"
    assert sum(e - s + 1 for r in ranges.values() for s, e in r) == total
