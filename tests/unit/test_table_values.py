"""Table values go through the shared Avro codec; values of the older JSON format still read.

The JSON strings below are what the previous release wrote (``json.dumps`` of the short-key
dicts of ``domain.analytics`` and the indexer's join, taken from a changelog of that release),
so a worker restored from an old changelog or archive reads every value it finds.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tritontube.deps import build_deps
from tritontube.domain import analytics as an
from tritontube.domain import owners
from tritontube.indexer.join import SearchSource
from tritontube.settings import Settings
from tritontube.streams.codec import MAGIC, CodecError
from tritontube.streams.tables import decode_value

CODEC = build_deps(Settings()).codec
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

SESSION_JSON = (
    b'{"v":"vid","u":"ann","p":true,"t":1767268820000,"w":490908,"ws":20.0,"c":true,'
    b'"m":20,"d":false,"cp":0.2,"ids":["1","2"]}'
)
STATS_JSON = (
    b'{"v":"vid","ver":2,"views":1,"viewers":1,"ws":20.0,"cs":0.2,"dur":100.0,'
    b'"b":[[1767268800000,1.0333333333333334]],"t":1767268820000,"rv":["ann"]}'
)
HISTORY_JSON = b'{"u":"ann","e":[["vid",1767268800000,100,true]],"ids":["1"]}'
TOP_JSON = b'{"top":[["vid",1.03],["other",0.5]]}'
SOURCE_JSON = (
    b'{"v":"vid","sv":3,"xv":2,"title":"Zebra","desc":"d","tags":["street"],"owner":"ann",'
    b'"status":"READY","vis":"public","c":1767268800000,"r":1767268805000,"dur":4.0,'
    b'"views":1,"ws":20.0,"tr":1.03}'
)


def test_every_table_value_round_trips_as_avro_single_object() -> None:
    values = [
        an.WatchSession("vid", "ann", playing=True, last_at_ms=5, recent_event_ids=("1",)),
        an.VideoAnalytics(
            "vid", version=2, buckets=(an.TrendingBucket(1_000, 1.5),), recent_viewers=("ann",)
        ),
        an.PartitionTrending(3, (an.TrendingEntry("vid", 1.5), an.TrendingEntry("b", 0.5))),
        an.UserHistory("ann", (an.HistoryEntry("vid", 5, 2.0, True),), ("1",)),
        SearchSource("vid", state_version=3, tags=("a",), ready_ms=None),
        owners.OwnerVideos("ann", (owners.OwnedVideo("vid", T0),)),
    ]
    for value in values:
        raw = CODEC.encode(value)
        assert raw[:2] == MAGIC
        assert decode_value(CODEC, raw, type(value)) == value


def test_values_of_the_older_json_format_are_still_read() -> None:
    session = decode_value(CODEC, SESSION_JSON, an.WatchSession)
    assert (session.user_id, session.counted, session.recent_event_ids) == ("ann", True, ("1", "2"))
    assert session.max_position == 20.0 and isinstance(session.max_position, float)
    stats = decode_value(CODEC, STATS_JSON, an.VideoAnalytics)
    assert stats.buckets == (an.TrendingBucket(1767268800000, 1.0333333333333334),)
    assert (stats.views, stats.duration_seconds, stats.recent_viewers) == (1, 100.0, ("ann",))
    history = decode_value(CODEC, HISTORY_JSON, an.UserHistory)
    assert history.entries == (an.HistoryEntry("vid", 1767268800000, 100.0, True),)
    top = decode_value(CODEC, TOP_JSON, an.PartitionTrending)
    assert top.top == (an.TrendingEntry("vid", 1.03), an.TrendingEntry("other", 0.5))
    source = decode_value(CODEC, SOURCE_JSON, SearchSource)
    assert (source.state_version, source.stats_version, source.ready_ms) == (3, 2, 1767268805000)
    # Read then written again, a value is Avro from then on, and reads back the same.
    assert decode_value(CODEC, CODEC.encode(stats), an.VideoAnalytics) == stats


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b'{"v": "vid"}', b"\xc3\x01garbage", b""],
)
def test_a_bad_table_value_is_a_codec_error(raw: bytes) -> None:
    with pytest.raises(CodecError):
        decode_value(CODEC, raw, an.VideoAnalytics)


def test_a_value_of_another_type_is_refused() -> None:
    raw = CODEC.encode(an.UserHistory("ann"))
    with pytest.raises(CodecError):
        decode_value(CODEC, raw, an.VideoAnalytics)
