"""The data engineers' commands, run as commands: ``tritontube replay --to-group`` and
``tritontube archive list|restore`` against a real broker and object store.

Each command is a child process (``python -m tritontube.cli``) that gets its settings the way
the embedded stack hands them to its children (``settings_env``); the tests look at the
effects through their own clients: committed group offsets, records on the broker.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from helpers import StoreBucket, read_topic, store_settings
from tritontube.devstack.process import free_port
from tritontube.devstack.stack import settings_env
from tritontube.replay.engine import create_topic
from tritontube.settings import KafkaSettings, Settings
from tritontube.storage.s3 import S3ObjectStore
from tritontube.streams import archive
from tritontube.streams.archive import ArchivedRecord

pytestmark = pytest.mark.integration

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
TOPIC = "clicks"  # not a catalogue topic: nothing else in the stack touches it
GROUP = "analysts"


def ms(minutes: float) -> int:
    return int((T0 + timedelta(minutes=minutes)).timestamp() * 1000)


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """``tritontube <args>`` in a child process with exactly ``settings``."""
    return subprocess.run(
        [sys.executable, "-m", "tritontube.cli", *args],
        env={**os.environ, **settings_env(settings)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def run(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(cli, settings, *args)


def kafka_at(bootstrap: str) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=bootstrap, embedded_broker_compat=True, partitions=2)


async def committed(bootstrap: str, group: str, tps: list[TopicPartition]) -> dict[int, int | None]:
    """The group's committed offset per partition (None: nothing committed); joins nothing."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(tps)
        return {tp.partition: await consumer.committed(tp) for tp in tps}
    finally:
        await consumer.stop()


# --------------------------------------------------------------------------- replay --to-group

#: Record timestamps (minutes after T0) per partition, in offset order. ``--since`` 2.5 selects
#: partition 0 from offset 3, partition 1 from offset 2, and nothing of partition 2.
TIMES = {0: [0, 1, 2, 3, 4, 5], 1: [0, 1, 3, 6], 2: [0, 1]}
SINCE = (T0 + timedelta(minutes=2.5)).isoformat().replace("+00:00", "Z")


@pytest.fixture
async def clicks(broker: str) -> AsyncIterator[str]:
    """``clicks`` with three partitions holding the records of :data:`TIMES`."""
    await create_topic(kafka_at(broker), TOPIC, len(TIMES), compacted=False)
    producer = AIOKafkaProducer(bootstrap_servers=broker, acks="all")
    await producer.start()
    try:
        for partition, minutes in TIMES.items():
            for i, m in enumerate(minutes):
                await producer.send_and_wait(
                    TOPIC,
                    f"p{partition}-{i}".encode(),
                    key=f"k{partition}".encode(),
                    partition=partition,
                    timestamp_ms=ms(m),
                )
    finally:
        await producer.stop()
    yield broker


async def test_replay_to_group_plans_then_commits_the_first_selected_offsets(
    clicks: str, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(kafka=kafka_at(clicks))
    tps = [TopicPartition(TOPIC, p) for p in TIMES]
    args = ("replay", "--topic", TOPIC, "--since", SINCE, "--to-group", GROUP, "--no-progress")

    dry = await run(settings, *args)
    assert dry.returncode == 0, dry.stderr
    assert "selected: 5 records" in dry.stdout
    assert "DRY RUN" in dry.stdout
    planned = [line.strip() for line in dry.stdout.splitlines() if " -> offset " in line]
    assert planned == [f"{TOPIC}[0] -> offset 3", f"{TOPIC}[1] -> offset 2"]
    assert await committed(clicks, GROUP, tps) == {0: None, 1: None, 2: None}

    done = await run(settings, *args, "--execute")
    assert done.returncode == 0, done.stderr
    assert f"committed group '{GROUP}' offsets:" in done.stdout
    assert [line.strip() for line in done.stdout.splitlines() if " -> offset " in line] == planned
    # Where the summary says; partition 2 (nothing selected) is left as it was.
    assert await committed(clicks, GROUP, tps) == {0: 3, 1: 2, 2: None}

    # A consumer of the group resumes there on the partitions the replay positioned.
    consumer = AIOKafkaConsumer(bootstrap_servers=clicks, group_id=GROUP, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(tps[:2])
        got: list[bytes] = []
        for _ in range(6):
            batch = await consumer.getmany(timeout_ms=500)
            got += [r.value for msgs in batch.values() for r in msgs if r.value is not None]
    finally:
        await consumer.stop()
    assert sorted(got) == [b"p0-3", b"p0-4", b"p0-5", b"p1-2", b"p1-3"]


async def test_replay_to_group_refuses_a_group_with_live_members(
    clicks: str, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(kafka=kafka_at(clicks))
    member = AIOKafkaConsumer(
        TOPIC, bootstrap_servers=clicks, group_id=GROUP, enable_auto_commit=False
    )
    await member.start()
    try:
        await member.getmany(timeout_ms=2000)  # joined and assigned
        result = await run(
            settings, "replay", "--topic", TOPIC, "--since", SINCE, "--to-group", GROUP,
            "--execute", "--no-progress",
        )  # fmt: skip
    finally:
        await member.stop()
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"replay refused: group '{GROUP}' has 1 live member(s)" in result.stderr
    assert "Traceback" not in result.stderr
    tps = [TopicPartition(TOPIC, p) for p in TIMES]
    assert await committed(clicks, GROUP, tps) == {0: None, 1: None, 2: None}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("replay", "--to-group", GROUP), "replay refused: name at least one --topic"),
        (
            ("replay", "--topic", "no-such-topic", "--to-group", GROUP),
            "replay refused: topic 'no-such-topic' does not exist",
        ),
        (("replay", "--topic", TOPIC, "--since", "yesterday", "--to-group", GROUP), "--since"),
        (("replay", "--topic", TOPIC, "--to-group", GROUP, "--to-topic", "x"), "not allowed"),
        (("archive",), "archive_command"),
    ],
    ids=["no-topic", "unknown-topic", "bad-since", "two-targets", "no-archive-command"],
)
async def test_bad_arguments_are_a_clear_error_without_a_traceback(
    broker: str,
    make_settings: Callable[..., Settings],
    args: tuple[str, ...],
    message: str,
) -> None:
    result = await run(make_settings(kafka=kafka_at(broker)), *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert f"{GROUP}' offsets" not in result.stdout


def test_dependencies_down_are_a_clear_error_without_a_traceback(
    make_settings: Callable[..., Settings],
) -> None:
    nobody = f"127.0.0.1:{free_port()}"
    s3 = make_settings().s3.model_copy(update={"endpoint_url": f"http://{nobody}"})
    settings = make_settings(kafka=kafka_at(nobody), s3=s3)
    cases = {
        ("replay", "--topic", TOPIC, "--to-group", GROUP, "--no-progress"): "replay failed: ",
        ("archive", "list"): "archive list failed: object store unavailable",
        ("archive", "restore", "--execute"): "archive restore failed: object store unavailable",
    }
    for args, message in cases.items():
        result = cli(settings, *args)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr, (args, result.stderr)
        assert "Unclosed" not in result.stderr, (args, result.stderr)


# --------------------------------------------------------------------------- archive list/restore


def archived(topic: str, partition: int, offsets: range) -> list[ArchivedRecord]:
    """Records as the archiver stores them: varied keys, headers and timestamps."""
    return [
        ArchivedRecord(
            topic=topic,
            partition=partition,
            offset=o,
            timestamp_ms=ms(10 * partition + o),
            key=None if o == 1 else f"{topic}-k{o % 2}".encode(),
            value=f"{topic}/{partition}/{o}".encode(),
            headers=(("trace", f"t{o}".encode()),) if o % 2 else (),
        )
        for o in offsets
    ]


#: Archive files: clicks[0] in two files, clicks[1] in one, and a catalogue topic.
FILES = [
    archived(TOPIC, 0, range(0, 3)),
    archived(TOPIC, 0, range(3, 5)),
    archived(TOPIC, 1, range(0, 4)),
    archived("uploads", 0, range(0, 2)),
]


@pytest.fixture
async def archive_settings(
    broker: str, object_store: StoreBucket, make_settings: Callable[..., Settings]
) -> Settings:
    """An empty broker and an object store holding :data:`FILES` (and one foreign object)."""
    settings = make_settings(kafka=kafka_at(broker), s3=store_settings(object_store))
    store = S3ObjectStore.from_settings(settings.s3)
    try:
        await store.ensure_bucket()
        prefix = settings.archive.prefix
        for records in FILES:
            data = archive.encode_file(records)
            await store.put_bytes(archive.archive_key(prefix, records), data, archive.CONTENT_TYPE)
        await store.put_bytes(f"{prefix}{TOPIC}/0/upload.tmp", b"half a file", "text/plain")
    finally:
        store.close()
    return settings


async def topics_on(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


LISTING = [
    f"{TOPIC}[0]: 2 files, offsets 0..4",
    f"{TOPIC}[1]: 1 files, offsets 0..3",
    "uploads[0]: 1 files, offsets 0..1",
    "total: 11 records in 3 partitions",
]


async def test_archive_list_prints_the_segments_that_exist(archive_settings: Settings) -> None:
    result = await run(archive_settings, "archive", "list")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == LISTING


async def test_archive_restore_is_a_dry_run_then_puts_every_record_back_in_order(
    archive_settings: Settings,
) -> None:
    bootstrap = archive_settings.kafka.bootstrap_servers
    dry = await run(archive_settings, "archive", "restore")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines() == [*LISTING, "DRY RUN: nothing produced (--execute)"]
    assert TOPIC not in await topics_on(bootstrap)

    done = await run(archive_settings, "archive", "restore", "--execute")
    assert done.returncode == 0, done.stderr
    assert "restored 11 records into 3 partitions" in done.stdout

    # Same partition, offset, key, value, timestamp and headers, in order.
    want: dict[tuple[str, int], list[tuple[object, ...]]] = {}
    for records in FILES:
        want.setdefault((records[0].topic, records[0].partition), []).extend(
            (r.offset, r.key, r.value, r.timestamp_ms, r.headers) for r in records
        )
    got: dict[tuple[str, int], list[tuple[object, ...]]] = {}
    for topic, count in ((TOPIC, 9), ("uploads", 2)):
        for r in await read_topic(bootstrap, topic, expect=count):
            got.setdefault((r.topic, r.partition), []).append(
                (r.offset, r.key, r.value, r.timestamp, tuple(r.headers))
            )
    assert got == want
    # Everything archived had been processed: the worker's group resumes after it.
    group = archive_settings.worker.app_id
    assert await committed(bootstrap, group, [TopicPartition(TOPIC, 0)]) == {0: 5}
    assert await committed(bootstrap, group, [TopicPartition(TOPIC, 1)]) == {1: 4}
    assert await committed(bootstrap, group, [TopicPartition("uploads", 0)]) == {0: 2}

    # A second restore finds the partitions full and leaves them alone.
    again = await run(archive_settings, "archive", "restore", "--execute")
    assert again.returncode == 0, again.stderr
    assert "restored 0 records into 0 partitions" in again.stdout
    assert "skipped (already holding records): 3 partitions" in again.stdout
    assert len(await read_topic(bootstrap, TOPIC, expect=10, timeout=3)) == 9
