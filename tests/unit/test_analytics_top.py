"""``update_top`` inserts in place; it must agree with re-sorting the whole list."""

from __future__ import annotations

import random

import pytest

from tritontube.domain import analytics as an


def resorted(
    top: tuple[tuple[str, float], ...], video_id: str, score: float, k: int
) -> tuple[tuple[str, float], ...]:
    rest = [(v, s) for v, s in top if v != video_id]
    if score > 0:
        rest.append((video_id, score))
    rest.sort(key=lambda item: (-item[1], item[0]))
    return tuple(rest[:k])


@pytest.mark.parametrize("seed", range(5))
def test_update_top_matches_a_full_sort(seed: int) -> None:
    rng = random.Random(seed)
    top: tuple[tuple[str, float], ...] = ()
    for _ in range(2000):
        video_id = f"v{rng.randrange(60)}"
        score = rng.choice((0.0, 1.0, 2.0, round(rng.uniform(0, 5), 2)))  # ties and zeros
        expected = resorted(top, video_id, score, 20)
        top = an.update_top(top, video_id, score, 20)
        assert top == expected
