"""Archive, replay, rebuild and restore against the real broker, object store and worker.

One pipeline run serves several checks (services are slow to start on a shared box): the
archive decodes with plain fastavro; outside consumers read it all (librdkafka reads every
topic, Apache Avro Java decodes every message on every topic and in the archive); a rebuild
from the archive and from the topics reproduces the worker's states and the search results; a
byte-exact copy into a new topic; and a stop and start of the embedded stack restores history
without re-running side effects.
"""

from __future__ import annotations

import asyncio
import io
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fastavro
import pytest

from helpers import completion, owned_videos, produce, read_topic, session, wait_for
from java_avro import java_decode
from outside_consumers import Message, read_with_aiokafka, read_with_librdkafka
from tritontube.deps import build_deps
from tritontube.devstack.stack import EmbeddedStack
from tritontube.domain.events import Rendition, TranscodeSucceeded, WatchEvent
from tritontube.indexer.query import SearchQuery
from tritontube.indexer.tantivy_index import TantivyIndex
from tritontube.replay import engine, rebuild
from tritontube.replay.sources import ArchiveSource, Selection, TopicSource
from tritontube.settings import ArchiveSettings, Settings
from tritontube.storage.s3 import S3ObjectStore
from tritontube.streams import archive, catalogue
from tritontube.streams.codec import schema_dir
from tritontube.streams.records import EventCodec

pytestmark = [pytest.mark.integration, pytest.mark.slow]

VIDEOS = 30
WATCHES = 120
NOW = datetime.now(UTC).replace(microsecond=0)


def succeeded(video_id: str) -> TranscodeSucceeded:
    r = Rendition("480p", 854, 480, 900_000, "r480", 1000, 3, "ab" * 32)
    return TranscodeSucceeded(
        event_id=f"s-{video_id}",
        video_id=video_id,
        job_id=f"{video_id}:etag-{video_id}",
        attempt=1,
        manifest_key=f"media/{video_id}/dash/manifest.mpd",
        duration_seconds=12.5,
        renditions=(r,),
        wall_seconds=3.0,
        cpu_seconds=2.0,
        ts=NOW + timedelta(seconds=5),
    )


def watch(i: int) -> WatchEvent:
    return WatchEvent(
        event_id=f"w{i}",
        video_id=f"v{i % VIDEOS}",
        user_id=f"u{i % 7}",
        kind="HEARTBEAT",
        position_seconds=float(i % 60),
        occurred_at=NOW,
        received_at=NOW,
    )


async def archived_counts(store: S3ObjectStore, prefix: str) -> Counter[str]:
    files = archive.parse_keys(prefix, (o.key for o in await store.list(prefix)))
    counts: Counter[str] = Counter()
    for f in files:
        counts[f.topic] += f.end_offset - f.start_offset + 1
    return counts


GARBAGE = b"not avro"  # produced on watch-events: dead-lettered, and no decoder reads it


def check_with_avro_java(app_id: str, messages: list[Message]) -> dict[str, int]:
    """Decode every value with Avro Java (table changelogs included: their values are Avro
    too); returns the values decoded per topic."""
    labelled = [(f"{m.topic}/{m.partition}/{m.offset}", m.value) for m in messages if m.value]
    results, _ = java_decode(schema_dir(), labelled)
    decoded: Counter[str] = Counter()
    for (label, value), result in zip(labelled, results, strict=True):
        topic = label.rsplit("/", 2)[0]
        if "error" not in result and not result["legacy"]:
            decoded[topic] += 1
        else:
            assert value == GARBAGE, (label, result)
            assert topic == catalogue.WATCH_EVENTS.name and "error" in result, label
    return dict(decoded)


async def rebuild_from(source: Any) -> rebuild.Rebuild:
    result = rebuild.Rebuild(build_deps(Settings()).codec)
    target = engine.RebuildTarget(result, lambda r: None)
    await engine.run_replay(source, target, engine.Summary("test", "rebuild"))
    return result


async def search_ids(path: Path, q: str) -> list[str]:
    index = TantivyIndex(path, cursor_secret=b"k" * 32, read_only=True)
    await index.ensure()
    try:
        page = await index.search(SearchQuery(q=q, sort="recent", page_size=100))
    finally:
        await index.close()
    return [hit.video_id for hit in page.results]


async def test_archive_rebuild_copy_and_restore_reproduce_the_pipeline(
    make_settings: Callable[..., Settings],
    stack_factory: Callable[..., EmbeddedStack],
    codec: EventCodec,
    tmp_path: Path,
) -> None:
    # Transcode results are produced by hand here: no transcode agent races them.
    settings = make_settings(archive=ArchiveSettings(flush_interval_seconds=0.5))
    settings = settings.model_copy(
        update={"worker": settings.worker.model_copy(update={"transcode_enabled": False})}
    )
    stack = stack_factory(settings)
    bootstrap = settings.kafka.bootstrap_servers
    ids = [f"v{i}" for i in range(VIDEOS)]
    uploads = [(v, codec.encode(session(v))) for v in ids]
    uploads += [(v, codec.encode(completion(v, f"done-{v}"))) for v in ids]
    await produce(bootstrap, catalogue.UPLOADS.name, uploads)
    ready = ids[: VIDEOS // 2]

    def pending() -> bool:
        videos = owned_videos(settings)
        return (
            videos is not None
            and len(videos) == VIDEOS
            and all(v.status == "PENDING_TRANSCODE" for v in videos)
        )

    await wait_for(pending, timeout=60)  # a job exists before its result arrives
    await produce(
        bootstrap,
        catalogue.TRANSCODE_PROGRESS.name,
        [(v, codec.encode(succeeded(v))) for v in ready],
    )
    await produce(
        bootstrap,
        catalogue.WATCH_EVENTS.name,
        [(watch(i).video_id, codec.encode(watch(i))) for i in range(WATCHES)] + [("v0", GARBAGE)],
    )

    def settled() -> Any:
        videos = owned_videos(settings)
        if videos is None or len(videos) != VIDEOS:
            return None
        statuses = Counter(v.status for v in videos)
        return videos if statuses["READY"] == len(ready) else None

    listing = await wait_for(settled, timeout=60)
    worker_states = rebuild.state_snapshot({v.video_id: v for v in listing})
    jobs_before = await read_topic(bootstrap, catalogue.TRANSCODE_JOBS.name, expect=VIDEOS)
    assert len(jobs_before) == VIDEOS

    store = S3ObjectStore.from_settings(settings.s3)
    prefix = settings.archive.prefix
    try:
        want = {
            catalogue.UPLOADS.name: 2 * VIDEOS,
            catalogue.TRANSCODE_PROGRESS.name: len(ready),
            catalogue.WATCH_EVENTS.name: WATCHES + 1,
            catalogue.TRANSCODE_JOBS.name: VIDEOS,
            catalogue.WATCH_EVENTS.dlq: 1,
        }

        async def archived() -> bool:
            counts = await archived_counts(store, prefix)
            return all(counts[t] >= n for t, n in want.items())

        deadline = asyncio.get_running_loop().time() + 30
        while not await archived():
            assert asyncio.get_running_loop().time() < deadline, "archive incomplete"
            await asyncio.sleep(0.3)
        counts = await archived_counts(store, prefix)
        assert {t: counts[t] for t in want} == want  # exactly one copy per offset

        # Plain fastavro opens every file; the values are our single-object messages.
        values = []
        for obj in await store.list(f"{prefix}{catalogue.UPLOADS.name}/"):
            rows = list(fastavro.reader(io.BytesIO(await store.get_bytes(obj.key))))
            values += [row["value"] for row in rows]
        assert sorted(values) == sorted(v for _, v in uploads)

        # Outside consumers. librdkafka (read second: the worker may still be writing) sees
        # everything aiokafka saw, on every topic; Avro Java decodes every value on
        # every topic and in the archive, table changelogs included.
        seen = await read_with_aiokafka(bootstrap, idle=2.0)
        rdkafka = await asyncio.to_thread(read_with_librdkafka, bootstrap, idle=2.0)
        assert set(seen) <= set(rdkafka)
        on_topics = Counter(m.topic for m in rdkafka)
        assert {t: on_topics[t] for t in want} == want
        app_id = settings.worker.app_id
        decoded = check_with_avro_java(app_id, rdkafka)
        garbage = Counter({catalogue.WATCH_EVENTS.name: 1})
        for topic in {t for spec in catalogue.TOPICS for t in (spec.name, spec.dlq)}:
            assert decoded.get(topic, 0) == on_topics[topic] - garbage[topic], topic
        assert decoded[catalogue.VIDEO_STATE.name] >= VIDEOS
        assert decoded[catalogue.VIDEO_STATS.name] >= 1
        assert decoded[f"{app_id}-video_state-changelog"] >= VIDEOS
        in_archive = []
        for obj in await store.list(prefix):
            if obj.key.endswith(".avro"):
                rows = archive.decode_file(await store.get_bytes(obj.key))
                in_archive += [
                    Message(r.topic, r.partition, r.offset, r.key, r.value) for r in rows
                ]
        archived_decoded = check_with_avro_java(app_id, in_archive)
        assert {t: archived_decoded.get(t, 0) + garbage[t] for t in want} == want

        # Rebuild from the archive and from the live topics: the worker's states exactly.
        topics = rebuild.input_topics()
        from_archive = await rebuild_from(ArchiveSource(store, prefix, Selection(topics)))
        from_topics = await rebuild_from(TopicSource(settings.kafka, Selection(topics)))
        for result in (from_archive, from_topics):
            assert rebuild.state_snapshot(result.states) == worker_states

        # The rebuilt search index answers like the original processing.
        index_path = tmp_path / "rebuilt-index"
        docs = from_archive.documents()
        await rebuild.write_index(
            TantivyIndex(index_path, cursor_secret=b"k" * 32, read_only=False), docs
        )
        hits = await search_ids(index_path, "video")
        assert sorted(hits) == sorted(ready)
        original = await search_ids(settings.search.path, "video")
        if original:  # an indexer agent is running: compare result for result
            assert original == hits

        # Byte-exact copy of a time range into a new topic.
        copy = engine.TopicTarget(settings.kafka, "uploads.copy", execute=True)
        since = Selection((catalogue.UPLOADS.name,), since=NOW - timedelta(hours=1))
        summary = await engine.run_replay(
            TopicSource(settings.kafka, since), copy, engine.Summary("topics", "copy")
        )
        assert summary.written == 2 * VIDEOS
        copied = await read_topic(bootstrap, "uploads.copy", expect=2 * VIDEOS)
        originals = await read_topic(bootstrap, catalogue.UPLOADS.name, expect=2 * VIDEOS)
        key = lambda r: (r.partition, r.offset)  # noqa: E731
        assert [(r.key, r.value, r.timestamp) for r in sorted(copied, key=key)] == [
            (r.key, r.value, r.timestamp) for r in sorted(originals, key=key)
        ]
        future = Selection((catalogue.UPLOADS.name,), since=NOW + timedelta(days=1))
        none = await engine.run_replay(
            TopicSource(settings.kafka, future), copy, engine.Summary("topics", "copy")
        )
        assert (none.scanned, none.selected) == (2 * VIDEOS, 0)
    finally:
        store.close()

    # Stop the whole stack (broker memory gone) and start it again on the same data dir.
    stack.stop()
    stack_factory(settings)
    restored = await wait_for(settled, timeout=60)
    assert rebuild.state_snapshot({v.video_id: v for v in restored}) == worker_states
    after = await read_topic(bootstrap, catalogue.UPLOADS.name, expect=2 * VIDEOS)
    assert sorted((r.partition, r.offset, r.value) for r in after) == sorted(
        (r.partition, r.offset, r.value) for r in originals
    )
    # Restored history is not processed twice: no second transcode job per video.
    jobs_after = await read_topic(bootstrap, catalogue.TRANSCODE_JOBS.name, expect=VIDEOS + 1)
    assert len(jobs_after) == VIDEOS
