"""The archive format (keys, container files) and the archiver's per-partition buffering."""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime

import fastavro
import pytest
from aiokafka import TopicPartition

from tritontube.agents.archiver import (
    Archiver,
    FlushPolicy,
    PartitionBuffer,
    PendingCheckpoint,
    topic_pattern,
)
from tritontube.settings import Settings
from tritontube.storage.memory import InMemoryObjectStore
from tritontube.streams import archive
from tritontube.streams.archive import ArchivedRecord, ArchiveFormatError

T0 = int(datetime(2025, 3, 7, 23, 59, 59, 999000, tzinfo=UTC).timestamp() * 1000)


def rec(offset: int, ts: int = T0, topic: str = "uploads", partition: int = 1) -> ArchivedRecord:
    return ArchivedRecord(
        topic=topic,
        partition=partition,
        offset=offset,
        timestamp_ms=ts + offset,
        key=f"v{offset}".encode(),
        value=b"\xc3\x01" + bytes([offset % 256]) * 12,
        headers=(("h", b"x"),) if offset % 2 else (),
    )


def test_key_layout_is_topic_partition_day_and_padded_offsets() -> None:
    # T0 is 1 ms before midnight: the first record (T0 + 5 ms) is already on the 8th.
    key = archive.archive_key("archive", [rec(5), rec(6), rec(9)])
    assert key == ("archive/uploads/1/2025/03/08/00000000000000000005-00000000000000000009.avro")
    assert archive.archive_key("archive/", [rec(0)]).split("/")[3:6] == ["2025", "03", "07"]
    parsed = archive.parse_key("archive/", key)
    assert (parsed.topic, parsed.partition, parsed.start_offset, parsed.end_offset) == (
        "uploads",
        1,
        5,
        9,
    )
    assert parsed.day == "2025/03/08"


@pytest.mark.parametrize(
    "key",
    [
        "other/uploads/1/2025/03/07/00000000000000000005-00000000000000000009.avro",
        "archive/uploads/1/00000000000000000005-00000000000000000009.avro",
        "archive/uploads/x/2025/03/07/00000000000000000005-00000000000000000009.avro",
        "archive/uploads/³/2025/03/07/00000000000000000005-00000000000000000009.avro",
        "archive/uploads/1/2025/03/07/5-9.avro",
    ],
)
def test_foreign_keys_are_rejected_and_ignored_by_listing(key: str) -> None:
    with pytest.raises(ArchiveFormatError):
        archive.parse_key("archive/", key)
    assert archive.parse_keys("archive/", [key]) == []


def test_listing_sorts_by_partition_and_offset_and_finds_the_last_archived_offset() -> None:
    keys = [
        archive.archive_key("archive/", [rec(100), rec(250)]),
        archive.archive_key("archive/", [rec(0), rec(99)]),
        archive.archive_key("archive/", [rec(3, topic="uploads", partition=0)]),
    ]
    files = archive.parse_keys("archive/", keys)
    assert [(f.partition, f.start_offset) for f in files] == [(0, 3), (1, 0), (1, 100)]
    assert archive.last_archived_offset(f for f in files if f.partition == 1) == 250
    assert archive.last_archived_offset([]) is None


def test_files_round_trip_byte_exactly_and_open_with_plain_fastavro() -> None:
    records = [rec(i) for i in range(10, 20)]
    data = archive.encode_file(records)
    assert list(archive.decode_file(data)) == records
    # Any Avro reader: the schema travels in the file header.
    plain = list(fastavro.reader(io.BytesIO(data)))
    assert [r["offset"] for r in plain] == list(range(10, 20))
    assert plain[0]["value"] == records[0].value
    assert plain[1]["headers"] == [{"key": "h", "value": b"x"}]
    meta = fastavro.reader(io.BytesIO(data)).metadata
    assert meta["avro.codec"] == "deflate"
    assert meta["tritontube.end_offset"] == "19"


def test_rewriting_the_same_range_gives_identical_bytes() -> None:
    records = [rec(i) for i in range(3)]
    assert archive.encode_file(records) == archive.encode_file(list(records))


def test_garbage_is_not_an_archive_file() -> None:
    with pytest.raises(ArchiveFormatError):
        list(archive.decode_file(b"definitely not avro"))
    with pytest.raises(ArchiveFormatError):
        archive.encode_file([])


def test_a_checkpoint_round_trips_and_is_not_an_archive_file() -> None:
    offsets = {("uploads", 1): 17, ("uploads", 0): 3, ("watch-events", 0): 0}
    body = archive.encode_checkpoint("tritontube", offsets, datetime(2026, 11, 25, tzinfo=UTC))
    assert archive.decode_checkpoint(body) == offsets
    key = archive.checkpoint_key("archive", "tritontube")
    assert key == "archive/_checkpoints/tritontube.json"
    assert archive.parse_keys("archive/", [key, archive.archive_key("archive/", [rec(0)])]) == [
        archive.parse_key("archive/", archive.archive_key("archive/", [rec(0)]))
    ]


@pytest.mark.parametrize("body", [b"", b"[]", b'{"offsets": {"uploads": {"x": 1}}}', b"{}"])
def test_a_malformed_checkpoint_is_an_archive_format_error(body: bytes) -> None:
    with pytest.raises(ArchiveFormatError):
        archive.decode_checkpoint(body)


def test_buffer_skips_offsets_at_or_below_the_archived_end_and_duplicates() -> None:
    buffer = PartitionBuffer(archived_end=4)
    assert [buffer.add(rec(i), now=0.0) for i in (3, 4, 5, 5, 6)] == [
        False,
        False,
        True,
        False,
        True,
    ]
    assert [r.offset for r in buffer.take()] == [5, 6]
    assert buffer.archived_end == 6
    assert buffer.records == []
    assert not buffer.add(rec(6), now=1.0)


def test_buffer_is_due_by_records_bytes_or_age() -> None:
    by_count = FlushPolicy(records=3, bytes=10**9, interval_seconds=100)
    buffer = PartitionBuffer()
    assert not buffer.due(by_count, now=0.0)
    for i in range(2):
        buffer.add(rec(i), now=10.0)
    assert not buffer.due(by_count, now=10.0)
    buffer.add(rec(2), now=10.0)
    assert buffer.due(by_count, now=10.0)

    by_bytes = FlushPolicy(records=10**6, bytes=30, interval_seconds=100)
    small = PartitionBuffer()
    small.add(rec(0), now=0.0)  # 2 + 14 bytes
    assert not small.due(by_bytes, now=0.0)
    small.add(rec(1), now=0.0)
    assert small.due(by_bytes, now=0.0)

    by_age = FlushPolicy(records=10**6, bytes=10**9, interval_seconds=5)
    old = PartitionBuffer()
    old.add(rec(0), now=100.0)
    old.add(rec(1), now=104.0)
    assert not old.due(by_age, now=104.9)
    assert old.due(by_age, now=105.0)


def test_a_partition_is_archived_below_an_end_once_seen_up_to_it_and_flushed() -> None:
    buffer = PartitionBuffer(archived_end=4)  # resumed after files up to offset 4
    assert buffer.archived_below(0) and buffer.archived_below(5)
    assert not buffer.archived_below(6)  # offset 5 not consumed yet
    buffer.add(rec(5), now=0.0)
    buffer.add(rec(6), now=0.0)
    assert not buffer.archived_below(6), "offset 5 is only buffered"
    buffer.take()
    assert buffer.archived_below(7)
    buffer.add(rec(7), now=0.0)
    assert buffer.archived_below(7) and not buffer.archived_below(8)
    fresh = PartitionBuffer()
    assert fresh.archived_below(0) and not fresh.archived_below(1)
    assert fresh.add(rec(3), now=0.0) and fresh.seen_end == 3
    assert not fresh.archived_below(4)


def test_records_that_retention_removed_count_as_archived() -> None:
    # Offsets 0-199 expired before the archiver saw them; the partition now starts at 200.
    assert PartitionBuffer().archived_below(200, start=200)
    assert PartitionBuffer(archived_end=50).archived_below(200, start=200)
    resumed = PartitionBuffer(archived_end=50)
    assert not resumed.archived_below(203, start=200)  # 200-202 still to come
    resumed.add(rec(200), now=0.0)
    resumed.add(rec(202), now=0.0)
    resumed.take()
    assert resumed.archived_below(203, start=200)


async def test_a_checkpoint_never_covered_is_dropped_so_a_new_one_can_start() -> None:
    archiver = Archiver(Settings(), InMemoryObjectStore())
    tp = TopicPartition("uploads", 0)
    archiver.buffers[tp] = PartitionBuffer()  # never consumed: offset 0 never arrives
    started = time.monotonic()
    archiver.pending = PendingCheckpoint({}, ends={tp: 1}, starts={tp: 0}, begun=started)
    assert not await archiver.checkpoint()
    assert archiver.pending is not None, "a young pending checkpoint waits"
    archiver.pending = PendingCheckpoint({}, ends={tp: 1}, starts={tp: 0}, begun=started - 3600)
    archiver.buffers.clear()  # and nothing to start a new one from (no broker here)
    assert not await archiver.checkpoint()
    assert archiver.pending is None


def test_the_archiver_subscribes_to_catalogue_topics_dlqs_and_changelogs_only() -> None:
    import re

    pattern = re.compile(topic_pattern("tritontube"))
    for name in ("uploads", "uploads.dlq", "video-state", "tritontube-video_state-changelog"):
        assert pattern.match(name), name
    for name in ("uploads.copy", "tritontube-__assignor-__leader", "other-x-changelog"):
        assert not pattern.match(name), name
