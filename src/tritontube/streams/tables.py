"""Table values: Avro through the shared codec, and the JSON values written before it.

Every value a table holds is Avro single-object encoded with the schema of its domain type
(``schemas/tritontube.events.<Type>.avsc``), exactly like the topics' records: the changelogs
are evolvable, archived and readable by any consumer holding the ``.avsc`` files. Until
December 2026 the analytics and indexer tables held JSON objects with short keys; a value that
starts with ``{`` is read that way, so a worker restored from an older changelog or archive
still reads every value. Nothing writes JSON any more.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar, cast

from tritontube.domain import analytics as an
from tritontube.indexer.join import SearchSource
from tritontube.streams.codec import CodecError
from tritontube.streams.records import EventCodec

T = TypeVar("T")


def decode_value(codec: EventCodec, raw: bytes, cls: type[T]) -> T:
    """A table value of type ``cls`` (Avro, or a JSON value of the older format)."""
    if raw[:1] == b"{":
        legacy = _LEGACY.get(cls)
        if legacy is None:
            raise CodecError(f"{cls.__name__} values were never JSON")
        try:
            return cast(T, legacy(json.loads(raw)))
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise CodecError(f"bad legacy {cls.__name__} value: {exc}") from exc
    return codec.decode_as(raw, cls)


def _session(d: dict[str, Any]) -> an.WatchSession:
    return an.WatchSession(
        video_id=d["v"],
        user_id=d["u"],
        playing=bool(d["p"]),
        last_at_ms=int(d["t"]),
        window=int(d["w"]),
        window_seconds=float(d["ws"]),
        counted=bool(d["c"]),
        max_position=float(d["m"]),
        completed=bool(d["d"]),
        completion=float(d["cp"]),
        recent_event_ids=tuple(d["ids"]),
    )


def _stats(d: dict[str, Any]) -> an.VideoAnalytics:
    dur = d.get("dur")
    return an.VideoAnalytics(
        video_id=d["v"],
        version=int(d["ver"]),
        views=int(d["views"]),
        viewers=int(d["viewers"]),
        watch_seconds=float(d["ws"]),
        completion_sum=float(d["cs"]),
        duration_seconds=None if dur is None else float(dur),
        buckets=tuple(an.TrendingBucket(int(b[0]), float(b[1])) for b in d["b"]),
        last_event_ms=int(d["t"]),
        recent_viewers=tuple(d["rv"]),
    )


def _history(d: dict[str, Any]) -> an.UserHistory:
    return an.UserHistory(
        user_id=d["u"],
        entries=tuple(an.HistoryEntry(str(v), int(t), float(p), bool(c)) for v, t, p, c in d["e"]),
        recent_event_ids=tuple(d["ids"]),
    )


def _top(d: dict[str, Any]) -> an.PartitionTrending:
    # The old value did not name its partition: the key (``p<n>``) does; -1 until it is read.
    top = tuple(an.TrendingEntry(str(v), float(s)) for v, s in d["top"])
    return an.PartitionTrending(partition=-1, top=top)


def _source(d: dict[str, Any]) -> SearchSource:
    return SearchSource(
        video_id=d["v"],
        state_version=int(d["sv"]),
        stats_version=int(d["xv"]),
        title=d["title"],
        description=d["desc"],
        tags=tuple(d["tags"]),
        owner=d["owner"],
        status=d["status"],
        visibility=d["vis"],
        created_ms=int(d["c"]),
        ready_ms=None if d["r"] is None else int(d["r"]),
        duration_seconds=None if d["dur"] is None else float(d["dur"]),
        views=int(d["views"]),
        watch_seconds=float(d["ws"]),
        trending_score=float(d["tr"]),
    )


_LEGACY: dict[type[Any], Callable[[dict[str, Any]], Any]] = {
    an.WatchSession: _session,
    an.VideoAnalytics: _stats,
    an.UserHistory: _history,
    an.PartitionTrending: _top,
    SearchSource: _source,
}
