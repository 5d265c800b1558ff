"""Per-user rate limits on the write endpoints: token buckets, 429 problem with Retry-After.

Two scopes, each a bucket per signed-in user:

- ``upload``: ``POST /v1/videos:uploadURL`` and ``POST /v1/videos:completeUpload``;
- ``watch``: ``POST /v1/videos/{video_id}/watchEvents`` (a batch of up to 100 events is one
  request; the SPA buffers heartbeats).

The buckets live in this API process's memory. With several API processes behind a load
balancer each enforces its own budget, so a user's effective limit is the per-process limit
times the number of processes; a shared limit needs a shared store (Redis, or the gateway in
front of the API). Counting happens after authentication and before validation, so malformed
requests spend tokens too (they cost the service work as well).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from tritontube import metrics
from tritontube.http.auth import USER_KEY
from tritontube.http.problems import ProblemError
from tritontube.settings import RateLimitSettings

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Clock = Callable[[], float]

# (method, canonical route) -> scope
SCOPED_ROUTES: dict[tuple[str, str], str] = {
    ("POST", "/v1/videos:uploadURL"): "upload",
    ("POST", "/v1/videos:completeUpload"): "upload",
    ("POST", "/v1/videos/{video_id}/watchEvents"): "watch",
}


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
        raise ProblemError(
            429,
            "Too Many Requests",
            f"rate limit for {scope} requests exceeded; retry in {retry_after} s",
            code="RATE_LIMITED",
            headers={"Retry-After": str(retry_after)},
        )


RATE_LIMITER = web.AppKey("rate_limiter", RateLimiter)


@web.middleware
async def rate_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Runs after authentication (it needs the user) and before the handler."""
    resource = request.match_info.route.resource
    if resource is not None:
        scope = SCOPED_ROUTES.get((request.method, resource.canonical))
        user = request.get(USER_KEY)
        if scope is not None and isinstance(user, str):
            request.app[RATE_LIMITER].check(scope, user)
    return await handler(request)
