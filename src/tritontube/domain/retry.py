"""Retry policy: capped exponential backoff with full jitter, and the attempt budget.

Pure: randomness comes in as a ``random.Random`` (tests seed it), time as plain numbers.
"Full jitter" (a uniform delay between the floor and the capped exponential) spreads retries
of many jobs that failed together (an object-store outage) instead of synchronising them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["RetryPolicy"]


@dataclass(frozen=True)
class RetryPolicy:
    """``max_attempts`` counts the first try; delays grow ``base * multiplier**(n-1)`` up to
    ``cap``, and the actual delay is drawn uniformly from ``[jitter_floor * d, d]``."""

    max_attempts: int
    base_seconds: float
    cap_seconds: float
    multiplier: float = 2.0
    jitter_floor: float = 0.5

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not 0 < self.base_seconds <= self.cap_seconds:
            raise ValueError("need 0 < base_seconds <= cap_seconds")
        if self.multiplier < 1:
            raise ValueError("multiplier must be at least 1")
        if not 0 <= self.jitter_floor <= 1:
            raise ValueError("jitter_floor must be within [0, 1]")

    def can_retry(self, attempt: int) -> bool:
        """Whether a failure of ``attempt`` (1-based) may be followed by another attempt."""
        return attempt < self.max_attempts

    def ceiling(self, attempt: int) -> float:
        """The largest delay after the failure of ``attempt`` (before jitter)."""
        if attempt < 1:
            raise ValueError("attempts are 1-based")
        # Stop multiplying once the cap is reached: no float overflow for huge attempts.
        delay = self.base_seconds
        for _ in range(attempt - 1):
            if delay >= self.cap_seconds:
                break
            delay *= self.multiplier
        return min(delay, self.cap_seconds)

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait after the failure of ``attempt`` before the next one starts."""
        top = self.ceiling(attempt)
        return rng.uniform(top * self.jitter_floor, top)
