"""Per-user rate limits on the write calls: token buckets; a 429 problem with Retry-After.

Two scopes, each a bucket per signed-in user, whatever the transport:

- ``upload``: creating and completing uploads, and managing a video (edit, delete, retry);
- ``watch``: watch events (a batch of up to 100 events is one request; the SPA buffers
  heartbeats).

The buckets live in one process's memory: the REST API and the gRPC server each enforce their
own budget, as do several API processes behind a load balancer, so a user's effective limit is
the per-process limit times the number of processes; a shared limit needs a shared store
(Redis, or the gateway in front of the API). Counting happens after authentication and before
validation, so malformed requests spend tokens too (they cost the service work as well).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from tritontube import metrics
from tritontube.problems import Problem
from tritontube.settings import RateLimitSettings

Clock = Callable[[], float]


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass(frozen=True)
class Rate:
    """``per_second`` tokens refill continuously up to ``burst``."""

    per_second: float
    burst: int


class TokenBuckets:
    """One token bucket per key, least recently used keys evicted beyond ``max_keys``."""

    def __init__(self, rate: Rate, max_keys: int, clock: Clock = time.monotonic) -> None:
        self.rate = rate
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, key: str) -> float:
        """Spend one token: 0.0 when allowed, else the seconds until one is available."""
        now = self._clock()
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = _Bucket(tokens=float(self.rate.burst), updated=now)
        else:
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(
                float(self.rate.burst), bucket.tokens + elapsed * self.rate.per_second
            )
            bucket.updated = now
        self._buckets[key] = bucket
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate.per_second

    def __len__(self) -> int:
        return len(self._buckets)


class RateLimiter:
    """The buckets of every scope, built from settings."""

    def __init__(self, settings: RateLimitSettings, clock: Clock = time.monotonic) -> None:
        self.enabled = settings.enabled
        self.scopes = {
            "upload": TokenBuckets(
                Rate(settings.upload_per_minute / 60.0, settings.upload_burst),
                settings.max_tracked_users,
                clock,
            ),
            "watch": TokenBuckets(
                Rate(settings.watch_events_per_minute / 60.0, settings.watch_events_burst),
                settings.max_tracked_users,
                clock,
            ),
        }

    def check(self, scope: str, user: str) -> None:
        """Raise a 429 problem when ``user`` has no token left in ``scope``."""
        if not self.enabled:
            return
        wait = self.scopes[scope].take(user)
        if wait <= 0.0:
            return
        metrics.HTTP_RATE_LIMITED.labels(scope).inc()
        retry_after = max(1, math.ceil(wait))
        raise Problem(
            429,
            "Too Many Requests",
            f"rate limit for {scope} requests exceeded; retry in {retry_after} s",
            code="RATE_LIMITED",
            headers={"Retry-After": str(retry_after)},
        )
