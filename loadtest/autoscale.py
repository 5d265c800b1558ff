"""The autoscaling rule the load reports apply to the queue depth (docs/observability.md)."""

from __future__ import annotations

import math

# KEDA's Prometheus trigger threshold in docs/observability.md: jobs waiting per replica.
LAG_TARGET = 2.0


def desired_replicas(lag: float, partitions: int, target: float = LAG_TARGET) -> int:
    """What a KEDA Prometheus trigger (``threshold: target``) on the ``transcode-jobs`` lag
    asks for, capped by the topic's partitions (a replica beyond them has nothing to consume)."""
    wanted = max(1, math.ceil(lag / target)) if lag > 0 else 1
    return min(wanted, max(1, partitions))
