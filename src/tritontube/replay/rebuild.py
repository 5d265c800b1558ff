"""Rebuild the video-state table and the search index from replayed records.

The rebuild folds the same events with the same pure function as the video-state agent
(``domain.video.apply``), so it reaches the same states with the same versions. Records of
different partitions and topics are merged by record timestamp (ties: uploads before
transcode progress); each partition's own order is kept exactly, and every video's events
live in one partition per topic, so each video sees its events in their original order.

Search documents come from the rebuilt states plus each video's latest ``VideoStats`` (views,
watch time, trending), read from the ``video-stats`` topic, mapped by the indexer agent's own
functions (``agents.indexer.join_state/join_stats/to_document``).
"""

from __future__ import annotations

import heapq
import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tritontube.domain import video
from tritontube.domain.events import VideoState
from tritontube.indexer.documents import VideoDocument
from tritontube.indexer.port import SearchIndex
from tritontube.streams import catalogue
from tritontube.streams.archive import ArchivedRecord
from tritontube.streams.codec import CodecError
from tritontube.streams.records import EventCodec, to_avro

log = logging.getLogger(__name__)

VIDEO_INPUTS: tuple[str, ...] = (catalogue.UPLOADS.name, catalogue.TRANSCODE_PROGRESS.name)
VIDEO_RECORDS: tuple[str, ...] = catalogue.UPLOADS.records + catalogue.TRANSCODE_PROGRESS.records
STATS_TOPIC = "video-stats"


def input_topics() -> tuple[str, ...]:
    """The topics a rebuild reads: the video-state inputs and, when it exists, video-stats."""
    names = {spec.name for spec in catalogue.TOPICS}
    return VIDEO_INPUTS + ((STATS_TOPIC,) if STATS_TOPIC in names else ())


def _rank(topic: str) -> int:
    order = (*VIDEO_INPUTS, STATS_TOPIC)
    return order.index(topic) if topic in order else len(order)


@dataclass
class Rebuild:
    """Collects replayed records, then folds them into states and documents."""

    codec: EventCodec
    states: dict[str, VideoState] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    undecodable: int = 0
    applied: int = 0
    legacy: int = 0  # records with the fingerprint in the pre-issue-21 byte order

    _streams: dict[tuple[str, int], list[ArchivedRecord]] = field(default_factory=dict)

    def add(self, batch: Iterable[ArchivedRecord]) -> int:
        n = 0
        for record in batch:
            self._streams.setdefault((record.topic, record.partition), []).append(record)
            n += 1
        return n

    def ordered(self) -> Iterator[ArchivedRecord]:
        """All records, by timestamp across partitions, each partition in offset order."""
        streams = [self._streams[k] for k in sorted(self._streams)]
        return heapq.merge(*streams, key=lambda r: (r.timestamp_ms, _rank(r.topic)))

    def fold(self) -> dict[str, VideoState]:
        for record in self.ordered():
            if record.topic in VIDEO_INPUTS:
                self._apply(record)
            elif record.topic == STATS_TOPIC:
                self._stats(record)
        return self.states

    def _count_legacy(self, record: ArchivedRecord) -> None:
        if self.codec.avro.registry.to_spec_order(record.value) is not record.value:
            self.legacy += 1

    def _apply(self, record: ArchivedRecord) -> None:
        self._count_legacy(record)
        try:
            event = self.codec.decode(record.value, expect=VIDEO_RECORDS)
        except CodecError:
            self.undecodable += 1  # the live agent dead-letters these: no state change
            return
        before = self.states.get(event.video_id)
        after = video.apply(before, event)
        if after is not None and after is not before:
            self.states[after.video_id] = after
            self.applied += 1

    def _stats(self, record: ArchivedRecord) -> None:
        self._count_legacy(record)
        try:
            stats = self.codec.decode(record.value)
        except CodecError:
            self.undecodable += 1
            return
        current = self.stats.get(stats.video_id)
        if current is None or stats.version >= current.version:
            self.stats[stats.video_id] = stats

    def documents(self) -> list[VideoDocument]:
        docs = (to_document(s, self.stats.get(vid)) for vid, s in sorted(self.states.items()))
        return [d for d in docs if d is not None]


def to_document(state: VideoState, stats: Any | None = None) -> VideoDocument | None:
    """A video's search document, by the indexer agent's own mapping (state + latest stats)."""
    from tritontube.agents import indexer

    source = indexer.join_state(None, state)
    if stats is not None:
        source = indexer.join_stats(source, stats)
    return indexer.to_document(source)


async def write_index(index: SearchIndex, docs: Sequence[VideoDocument]) -> int:
    """Write ``docs`` into ``index`` (opened, filled, refreshed and closed here)."""
    await index.ensure()
    try:
        written = await index.upsert(list(docs)) if docs else 0
        await index.refresh()
    finally:
        await index.close()
    return written


def state_snapshot(states: dict[str, VideoState]) -> dict[str, dict[str, Any]]:
    """States as JSON-ready dicts by video id (for comparisons and ``--snapshot``)."""
    return {vid: _jsonable(to_avro(s)) for vid, s in sorted(states.items())}


def write_snapshot(path: Path, states: dict[str, VideoState]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state_snapshot(states), indent=1, sort_keys=True) + "\n")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value
