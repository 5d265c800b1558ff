"""Durable history for the embedded stack: produce the archive back into an empty broker.

The embedded broker keeps topics in memory, so ``tritontube dev`` starts with none. Before the
worker starts, :func:`restore_from_archive` reads every archive file in offset order and
produces each record into its original partition with its original key, value, headers and
timestamp. On a fresh broker (and the embedded broker never compacts nor expires) the records
land at their original offsets, which is checked; the archiver then resumes exactly after them.

The worker's table changelogs are archived too and restored the same way, so tables recover
instead of being refolded; and the worker's consumer group is committed where the archiver's
last checkpoint says it was (``agents.archiver``: offsets whose every effect is archived), never
past the restored end. The worker then processes the events after that again, as a restarted
worker does on a real Kafka cluster; its folds ignore the ones they had already applied. An
archive without a checkpoint (written before checkpoints existed) commits the group at the
restored ends, as if everything archived had been processed. What a crash loses is what was
still inside the archiver's flush window, see docs/topics.md.

Partitions that already hold records are left alone, so restoring twice does nothing.

Values are produced as archived, with one exception: a value written before issue 21 carries
its schema fingerprint byte-reversed, and is produced with those 8 bytes in the specification's
order (``SchemaRegistry.to_spec_order``; body, key, headers and timestamp untouched), so the
restored topics are readable by any conforming Avro decoder. The archive keeps the bytes as
they were written.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from tritontube.replay.engine import commit_offsets, create_topic
from tritontube.settings import Settings
from tritontube.storage.port import ObjectNotFound, ObjectStore
from tritontube.streams import archive, broker_compat, catalogue
from tritontube.streams.archive import ArchiveFile
from tritontube.streams.codec import SchemaRegistry

log = logging.getLogger(__name__)


@dataclass
class RestorePlan:
    files: dict[TopicPartition, list[ArchiveFile]]

    @property
    def records(self) -> int:
        return sum(f.end_offset - f.start_offset + 1 for fs in self.files.values() for f in fs)


@dataclass
class RestoreResult:
    restored: dict[TopicPartition, int] = field(default_factory=dict)  # records produced
    skipped: list[TopicPartition] = field(default_factory=list)  # already held records
    moved: list[TopicPartition] = field(default_factory=list)  # offsets differ from originals
    committed_group: str | None = None
    committed: dict[TopicPartition, int] = field(default_factory=dict)  # the group's offsets
    reordered: int = 0  # values whose fingerprint was put in the spec's byte order

    @property
    def records(self) -> int:
        return sum(self.restored.values())


async def plan_restore(store: ObjectStore, prefix: str) -> RestorePlan:
    listing = await store.list(archive.normalise_prefix(prefix))
    files: dict[TopicPartition, list[ArchiveFile]] = defaultdict(list)
    for f in archive.parse_keys(prefix, (o.key for o in listing)):
        files[TopicPartition(f.topic, f.partition)].append(f)
    return RestorePlan(files=dict(files))


async def restore_from_archive(settings: Settings, store: ObjectStore) -> RestoreResult:
    """Restore every archived partition that is empty in the broker; see the module doc."""
    plan = await plan_restore(store, settings.archive.prefix)
    result = RestoreResult()
    if not plan.files:
        return result
    if settings.kafka.embedded_broker_compat:
        broker_compat.apply()
    await _create_missing_topics(settings, plan)
    ends = await _end_offsets(settings, list(plan.files))
    registry = await asyncio.to_thread(SchemaRegistry)
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka.bootstrap_servers, acks="all", linger_ms=20
    )
    await producer.start()
    try:
        for tp, files in sorted(plan.files.items()):
            if ends.get(tp, 0) > 0:
                result.skipped.append(tp)
                continue
            result.restored[tp] = await _restore_partition(
                store, producer, tp, files, result, registry
            )
    finally:
        await producer.stop()
    await _commit_processed(settings, store, result)
    log.info(
        "restored %d records into %d partitions from the archive (%d partitions skipped, "
        "%d fingerprints put in spec byte order)",
        result.records,
        len(result.restored),
        len(result.skipped),
        result.reordered,
    )
    return result


async def _restore_partition(
    store: ObjectStore,
    producer: AIOKafkaProducer,
    tp: TopicPartition,
    files: list[ArchiveFile],
    result: RestoreResult,
    registry: SchemaRegistry,
) -> int:
    count = 0
    for f in files:
        data = await store.get_bytes(f.key)
        records = await asyncio.to_thread(_decode, data)
        values = [registry.to_spec_order(r.value) for r in records]
        result.reordered += sum(v is not r.value for v, r in zip(values, records, strict=True))
        futures = [
            await producer.send(
                tp.topic,
                value=value,
                key=r.key,
                partition=tp.partition,
                timestamp_ms=r.timestamp_ms,
                headers=list(r.headers) or None,
            )
            for r, value in zip(records, values, strict=True)
        ]
        metas = await asyncio.gather(*futures)
        count += len(metas)
        if tp not in result.moved and any(
            m.offset != r.offset for m, r in zip(metas, records, strict=True)
        ):
            result.moved.append(tp)
            log.error(
                "%s restored at different offsets than archived (gaps in the archive?): the "
                "archiver will treat new records at already-archived offsets as archived",
                tp,
            )
    return count


def _decode(data: bytes) -> list[archive.ArchivedRecord]:
    return list(archive.decode_file(data))


async def _create_missing_topics(settings: Settings, plan: RestorePlan) -> None:
    partitions: dict[str, int] = defaultdict(int)
    for tp in plan.files:
        partitions[tp.topic] = max(partitions[tp.topic], tp.partition + 1)
    for topic, count in sorted(partitions.items()):
        compacted = catalogue.is_changelog(settings.worker.app_id, topic)
        n = max(count, settings.kafka.partitions)
        if await create_topic(settings.kafka, topic, n, compacted=compacted):
            log.info("created %s (%d partitions) for the restore", topic, n)


async def _end_offsets(settings: Settings, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers, group_id=None)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        return dict(await consumer.end_offsets(tps))
    finally:
        await consumer.stop()


async def _commit_processed(settings: Settings, store: ObjectStore, result: RestoreResult) -> None:
    """Commit the worker group at its checkpoint, capped at the restored ends (module doc)."""
    app_id = settings.worker.app_id
    ends = {
        tp: n
        for tp, n in result.restored.items()
        if not catalogue.is_changelog(app_id, tp.topic) and n > 0
    }
    checkpoint = await _checkpoint(store, settings.archive.prefix, app_id)
    if checkpoint is None:
        offsets = ends
    else:
        offsets = {
            tp: min(end, checkpoint[(tp.topic, tp.partition)])
            for tp, end in ends.items()
            if checkpoint.get((tp.topic, tp.partition), 0) > 0
        }
    if offsets:
        await commit_offsets(settings.kafka, app_id, offsets)
        result.committed_group = app_id
        result.committed = offsets


async def _checkpoint(
    store: ObjectStore, prefix: str, group: str
) -> dict[tuple[str, int], int] | None:
    key = archive.checkpoint_key(prefix, group)
    try:
        data = await store.get_bytes(key)
    except ObjectNotFound:
        log.warning("no checkpoint of %s in the archive: committing it at the restored ends", group)
        return None
    try:
        return archive.decode_checkpoint(data)
    except archive.ArchiveFormatError as exc:
        log.error("%s is unreadable (%s): committing %s at the restored ends", key, exc, group)
        return None
