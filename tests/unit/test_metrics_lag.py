"""Consumer lag arithmetic and the gauges' series lifecycle (agents/lag.py)."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from tritontube.agents.lag import LagGauges, is_agent_topic, partition_lag

LAG = "tritontube_stream_consumer_lag_records"


@pytest.mark.parametrize(
    ("highwater", "committed", "position", "expected"),
    [
        (10, 4, None, 6),  # committed is "next offset to read": records 4..9 wait
        (10, 10, None, 0),
        (10, None, 7, 3),  # nothing committed since the rebalance: fetch position
        (10, 3, 9, 7),  # a commit wins over the position
        (5, 9, None, 0),  # stale high watermark never gives a negative lag
        (None, 3, 3, None),  # no fetch answer yet: unknown, not zero
        (10, None, None, None),
    ],
)
def test_partition_lag(
    highwater: int | None, committed: int | None, position: int | None, expected: int | None
) -> None:
    assert partition_lag(highwater, committed, position) == expected


def test_changelogs_and_internal_topics_are_not_agent_work() -> None:
    assert is_agent_topic("transcode-jobs")
    assert is_agent_topic("uploads.dlq")
    assert not is_agent_topic("tritontube-video_state-changelog")
    assert not is_agent_topic("__consumer_offsets")
    assert not is_agent_topic("tritontube-__assignor-__leader")


def _lag(topic: str, partition: int) -> float | None:
    return REGISTRY.get_sample_value(LAG, {"topic": topic, "partition": str(partition)})


def test_gauges_follow_the_assignment() -> None:
    gauges = LagGauges()
    gauges.publish({("unit-lag-a", 0): 5, ("unit-lag-a", 1): 0, ("unit-lag-b", 0): 2}, 3)
    assert _lag("unit-lag-a", 0) == 5
    assert _lag("unit-lag-b", 0) == 2
    assert REGISTRY.get_sample_value("tritontube_stream_consumer_assigned_partitions") == 3
    # Partition a/0 moved to another worker: its series disappears instead of going stale.
    gauges.publish({("unit-lag-a", 1): 4, ("unit-lag-b", 0): 0}, 2)
    assert _lag("unit-lag-a", 0) is None
    assert _lag("unit-lag-a", 1) == 4
    assert _lag("unit-lag-b", 0) == 0
    gauges.clear()
    assert _lag("unit-lag-a", 1) is None
    assert REGISTRY.get_sample_value("tritontube_stream_consumer_assigned_partitions") == 0
