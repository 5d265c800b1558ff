"""Backoff: exponential growth, the cap, jitter bounds and the attempt budget."""

from __future__ import annotations

import random

import pytest

from tritontube.domain.retry import RetryPolicy


def test_ceiling_doubles_from_the_base_until_the_cap() -> None:
    policy = RetryPolicy(max_attempts=10, base_seconds=0.5, cap_seconds=5.0)
    assert [policy.ceiling(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


def test_huge_attempt_numbers_stay_at_the_cap_without_overflow() -> None:
    policy = RetryPolicy(max_attempts=10, base_seconds=1.0, cap_seconds=60.0)
    assert policy.ceiling(100_000) == 60.0


def test_delays_are_jittered_within_bounds_and_not_all_equal() -> None:
    policy = RetryPolicy(max_attempts=5, base_seconds=1.0, cap_seconds=60.0)
    rng = random.Random(7)
    delays = [policy.delay(3, rng) for _ in range(200)]
    assert all(2.0 <= d <= 4.0 for d in delays)
    assert len({round(d, 6) for d in delays}) > 150
    assert min(delays) < 2.5 and max(delays) > 3.5


def test_same_seed_same_delays() -> None:
    policy = RetryPolicy(max_attempts=5, base_seconds=1.0, cap_seconds=60.0)
    first = [policy.delay(n, random.Random(1)) for n in (1, 2, 3)]
    assert first == [policy.delay(n, random.Random(1)) for n in (1, 2, 3)]


def test_attempt_budget_counts_the_first_try() -> None:
    policy = RetryPolicy(max_attempts=3, base_seconds=1.0, cap_seconds=2.0)
    assert [policy.can_retry(n) for n in (1, 2, 3, 4)] == [True, True, False, False]
    assert not RetryPolicy(max_attempts=1, base_seconds=1.0, cap_seconds=1.0).can_retry(1)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0, "base_seconds": 1.0, "cap_seconds": 2.0},
        {"max_attempts": 1, "base_seconds": 0.0, "cap_seconds": 2.0},
        {"max_attempts": 1, "base_seconds": 3.0, "cap_seconds": 2.0},
        {"max_attempts": 1, "base_seconds": 1.0, "cap_seconds": 2.0, "multiplier": 0.5},
        {"max_attempts": 1, "base_seconds": 1.0, "cap_seconds": 2.0, "jitter_floor": 1.5},
    ],
)
def test_nonsense_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_attempts_are_one_based() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=2, base_seconds=1.0, cap_seconds=2.0).ceiling(0)
