"""The archiver's checkpoint of the worker group, and the restore that commits the group there.

Real embedded broker and object store (SeaweedFS); the worker is played by hand (records
produced and offsets committed as Faust does it) so that the moment that matters can be held
still: an event archived and committed while the table change it caused is still in the
changelog's flush window. One CI run of the broker fault test hit exactly that by chance, and
the restore then committed the group past the event, so its change was never made again.

The embedded stack's broker is durable now and no longer restored on start; the restore
(``tritontube archive restore``) still serves a broker that lost its log, which this test plays
with a memory-storage broker of its own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from helpers import StoreBucket, store_settings
from tritontube.agents.archiver import Archiver
from tritontube.devstack.broker import tansu_process
from tritontube.devstack.process import ManagedProcess, free_port
from tritontube.replay.engine import commit_offsets, create_topic
from tritontube.replay.restore import restore_from_archive
from tritontube.settings import ArchiveSettings, KafkaSettings, Settings
from tritontube.storage.s3 import S3ObjectStore
from tritontube.streams import archive, broker_compat, catalogue
from tritontube.streams.admin import ensure_topics

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def _produce(settings: Settings, tp: TopicPartition, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers, acks="all")
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(tp.topic, value, key=b"v1", partition=tp.partition)
    finally:
        await producer.stop()


async def _buffer_until(archiver: Archiver, held: dict[TopicPartition, int]) -> None:
    """Poll until the archiver has consumed ``held[tp]`` records of each partition."""
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline:
        await archiver.poll(500)
        if all(tp in archiver.buffers for tp in held):
            positions = {tp: await archiver.consumer.position(tp) for tp in held}
            if all(positions[tp] >= n for tp, n in held.items()):
                return
    raise AssertionError(f"the archiver never consumed {held}")


async def _checkpoint(store: S3ObjectStore, settings: Settings) -> dict[tuple[str, int], int]:
    key = archive.checkpoint_key(settings.archive.prefix, settings.worker.app_id)
    return archive.decode_checkpoint(await store.get_bytes(key))


async def _committed(settings: Settings, tp: TopicPartition) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(settings.worker.app_id, partitions=[tp])
    finally:
        await admin.close()
    return offsets[tp].offset


@pytest.fixture
def memory_broker(tmp_path: Path) -> Iterator[ManagedProcess]:
    """A Tansu that forgets everything when it dies (memory storage)."""
    proc = tansu_process("127.0.0.1", free_port(), tmp_path / "logs")
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


async def test_the_restore_commits_the_worker_only_as_far_as_the_archive_holds_its_effects(
    make_settings: Callable[..., Settings],
    memory_broker: ManagedProcess,
    object_store: StoreBucket,
    store_for: Callable[[Settings], S3ObjectStore],
) -> None:
    settings = make_settings(
        kafka=KafkaSettings(
            bootstrap_servers=f"127.0.0.1:{memory_broker.port}",
            embedded_broker_compat=True,
            partitions=2,
        ),
        s3=store_settings(object_store),
        archive=ArchiveSettings(flush_interval_seconds=0.2),
    )
    broker_compat.apply()
    await ensure_topics(settings.kafka)
    app_id = settings.worker.app_id
    changelog = f"{app_id}-video_state-changelog"
    await create_topic(settings.kafka, changelog, settings.kafka.partitions, compacted=True)
    uploads, states = TopicPartition(catalogue.UPLOADS.name, 0), TopicPartition(changelog, 0)
    store = store_for(settings)

    # Three uploads; the "worker" has processed two: their state changes, then its commit.
    await _produce(settings, uploads, [b"u0", b"u1", b"u2"])
    await _produce(settings, states, [b"s0", b"s1"])
    await commit_offsets(settings.kafka, app_id, {uploads: 2})

    archiver = Archiver(settings, store)
    await archiver.start()
    try:
        await _buffer_until(archiver, {uploads: 3, states: 2})
        assert not await archiver.checkpoint(), "written before its records were archived"
        assert archiver.pending is not None and archiver.pending.committed == {uploads: 2}
        await archiver.flush(due_only=False)
        assert await archiver.checkpoint()
        assert (await _checkpoint(store, settings))[(uploads.topic, 0)] == 2

        # The third upload is processed and committed; its state change is on the broker but
        # still in the archiver's buffer when everything dies.
        await commit_offsets(settings.kafka, app_id, {uploads: 3})
        await _produce(settings, states, [b"s2"])
        await asyncio.sleep(settings.archive.flush_interval_seconds + 0.1)
        await _buffer_until(archiver, {states: 3})
        assert not await archiver.checkpoint()
        assert archiver.pending is not None and archiver.pending.committed == {uploads: 3}
        await archiver.flush(due_only=False, only=[uploads])
        assert not await archiver.checkpoint(), "the changelog's tail is not archived"
    finally:
        await archiver.close()
    assert (await _checkpoint(store, settings))[(uploads.topic, 0)] == 2

    memory_broker.kill()
    memory_broker.start()  # memory storage: empty
    await ensure_topics(settings.kafka)
    result = await restore_from_archive(settings, store)

    assert result.restored[uploads] == 3 and result.restored[states] == 2
    # Committed at the checkpoint, not at the restored end (3): the worker folds the third
    # upload again, so its lost state change is made again.
    assert result.committed == {uploads: 2}
    assert await _committed(settings, uploads) == 2
