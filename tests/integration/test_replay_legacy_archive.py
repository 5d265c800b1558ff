"""An archive written before issue 21 (schema fingerprints byte-reversed) against the commands a
data engineer runs, as child processes, on a real broker and object store:

* ``replay --rebuild`` of it reaches exactly the states of the same history in spec byte order,
  and like every replay mode it is a dry run until ``--execute``;
* ``replay --to-topic`` and ``archive restore`` put the fingerprints in spec order (bodies, keys,
  offsets untouched), so Apache Avro Java decodes every restored message.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from helpers import StoreBucket, completion, read_topic, session, store_settings
from java_avro import java_decode
from tritontube.devstack.stack import settings_env
from tritontube.domain.events import Rendition, TranscodeSucceeded, VideoStats
from tritontube.settings import ArchiveSettings, KafkaSettings, Settings
from tritontube.storage.s3 import S3ObjectStore
from tritontube.streams import archive, catalogue
from tritontube.streams.archive import ArchivedRecord
from tritontube.streams.codec import schema_dir
from tritontube.streams.records import EventCodec

pytestmark = pytest.mark.integration

VIDEOS = 6
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def ms(seconds: float) -> int:
    return int((T0 + timedelta(seconds=seconds)).timestamp() * 1000)


def legacy(value: bytes) -> bytes:
    """``value`` as TritonTube wrote it before issue 21: the 8 fingerprint bytes reversed."""
    return value[:2] + value[2:10][::-1] + value[10:]


def history(codec: EventCodec) -> dict[str, list[tuple[str, bytes, int]]]:
    """(key, value, timestamp) per topic: uploads for every video, half of them transcoded,
    two with watch statistics."""
    ids = [f"v{i}" for i in range(VIDEOS)]
    uploads = [(v, codec.encode(session(v)), ms(i)) for i, v in enumerate(ids)]
    uploads += [(v, codec.encode(completion(v)), ms(10 + i)) for i, v in enumerate(ids)]
    r = Rendition("480p", 854, 480, 900_000, "r480", 1000, 3, "ab" * 32)
    done = [
        TranscodeSucceeded(
            event_id=f"s-{v}", video_id=v, job_id=f"{v}:etag-{v}", attempt=1,
            manifest_key=f"media/{v}/dash/manifest.mpd", duration_seconds=12.5, renditions=(r,),
            wall_seconds=3.0, cpu_seconds=2.0, ts=T0 + timedelta(seconds=30),
        )
        for v in ids[::2]
    ]  # fmt: skip
    stats = [
        VideoStats(v, 2, 5 + i, 3, 100.0, 0.5, 1.5, T0 + timedelta(seconds=40))
        for i, v in enumerate(ids[:2])
    ]
    return {
        catalogue.UPLOADS.name: uploads,
        catalogue.TRANSCODE_PROGRESS.name: [(e.video_id, codec.encode(e), ms(30)) for e in done],
        catalogue.VIDEO_STATS.name: [(s.video_id, codec.encode(s), ms(40)) for s in stats],
    }


def archived(topic: str, items: list[tuple[str, bytes, int]], old: bool) -> list[ArchivedRecord]:
    """One archive file's records per partition (video i on partition i % 2), in offset order."""
    out: list[ArchivedRecord] = []
    offsets = {0: 0, 1: 0}
    for key, value, ts in items:
        partition = int(key[1:]) % 2
        out.append(
            ArchivedRecord(topic, partition, offsets[partition], ts, key.encode(),
                           legacy(value) if old else value, ())
        )  # fmt: skip
        offsets[partition] += 1
    return out


async def write_archive(settings: Settings, topics: dict[str, list[tuple[str, bytes, int]]], *,
                        old: bool) -> None:  # fmt: skip
    store = S3ObjectStore.from_settings(settings.s3)
    try:
        await store.ensure_bucket()
        for topic, items in topics.items():
            records = archived(topic, items, old)
            for partition in (0, 1):
                part = [r for r in records if r.partition == partition]
                if part:
                    key = archive.archive_key(settings.archive.prefix, part)
                    await store.put_bytes(key, archive.encode_file(part), archive.CONTENT_TYPE)
    finally:
        store.close()


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tritontube.cli", *args],
        env={**os.environ, **settings_env(settings)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def run(settings: Settings, *args: str) -> str:
    result = await asyncio.to_thread(cli, settings, *args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


async def topic_names(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def test_a_pre_issue_21_archive_rebuilds_copies_and_restores_in_spec_order(
    broker: str,
    object_store: StoreBucket,
    make_settings: Callable[..., Settings],
    codec: EventCodec,
    tmp_path: Path,
) -> None:
    def at(prefix: str) -> Settings:
        return make_settings(
            kafka=KafkaSettings(
                bootstrap_servers=broker, embedded_broker_compat=True, partitions=2
            ),
            s3=store_settings(object_store),
            archive=ArchiveSettings(prefix=prefix),
        )

    old, new = at("old-archive/"), at("new-archive/")
    topics = history(codec)
    total = sum(len(items) for items in topics.values())
    await write_archive(old, topics, old=True)
    await write_archive(new, topics, old=False)

    # A rebuild is a dry run until --execute; both byte orders reach the same states.
    index = tmp_path / "index"
    rebuild = ("replay", "--rebuild", "--source", "archive", "--no-progress")
    dry = await run(old, *rebuild, "--index-path", str(index), "--snapshot", str(tmp_path / "a"))
    assert f"rebuilt:  {VIDEOS} video states" in dry
    assert f"{total} read in the legacy byte order" in dry
    assert f"DRY RUN: would write {VIDEOS} documents into {index} (--execute)" in dry
    assert not index.exists()
    spec = await run(new, *rebuild, "--snapshot", str(tmp_path / "b"))
    assert "0 read in the legacy byte order" in spec
    states = json.loads((tmp_path / "a").read_text())
    assert (tmp_path / "a").read_text() == (tmp_path / "b").read_text()
    assert sorted(s["status"] for s in states.values()) == ["PENDING_TRANSCODE"] * 3 + ["READY"] * 3
    done = await run(old, *rebuild, "--index-path", str(index), "--execute")
    assert f"index:    {VIDEOS} documents into {index}" in done
    assert index.is_dir()

    # A copy into a new topic: a dry run first (no topic), then produced in spec order.
    copy = ("replay", "--source", "archive", "--topic", "uploads", "--to-topic", "uploads.copy",
            "--no-progress")  # fmt: skip
    uploads = topics[catalogue.UPLOADS.name]
    dry = await run(old, *copy)
    assert (
        f"DRY RUN: would produce {len(uploads)} records into a new topic 'uploads.copy' "
        "(2 partitions)" in dry
    )
    assert f"fingerprints put in spec byte order: {len(uploads)}" in dry
    assert "uploads.copy" not in await topic_names(broker)
    assert f"produced: {len(uploads)} records into 'uploads.copy'" in await run(
        old, *copy, "--execute"
    )
    copied = await read_topic(broker, "uploads.copy", expect=len(uploads))
    assert sorted(r.value for r in copied if r.value) == sorted(v for _, v, _ in uploads)

    # A restore of the old archive: same partitions and offsets, fingerprints in spec order.
    restored = await run(old, "archive", "restore", "--execute")
    assert f"restored {total} records into " in restored
    assert f"fingerprints put in spec byte order: {total}" in restored
    messages: list[tuple[str, bytes]] = []
    for topic, items in topics.items():
        records = await read_topic(broker, topic, expect=len(items))
        want = {(r.partition, r.offset): r.value for r in archived(topic, items, old=False)}
        assert {(r.partition, r.offset): r.value for r in records} == want
        messages += [(f"{topic}/{r.partition}/{r.offset}", r.value) for r in records if r.value]
    results, summary = java_decode(schema_dir(), messages)
    assert [r for r in results if "error" in r or r["legacy"]] == []
    assert f"decoded {total} (spec byte order), 0 (legacy byte order), failed 0" in summary
