"""The batched agent's folds equal the one-event-at-a-time folds (hypothesis).

``fold_stats_many`` folds a batch's session deltas of one video at once; whatever the deltas
(late events, old buckets that fall out of the trending window, viewers coming back, more
viewers than the recent-viewers cut), the result must be exactly what folding them one by
one with ``fold_stats`` gives.
"""

from __future__ import annotations

from functools import reduce

from hypothesis import given, settings
from hypothesis import strategies as st

from tritontube.domain import analytics as an

POLICY = an.AnalyticsPolicy(
    trending_window_seconds=6 * 3600, trending_step_seconds=3600, recent_viewers=3
)
HOUR_MS = 3600 * 1000

deltas = st.lists(
    st.tuples(
        st.sampled_from(["ann", "bob", "cy", "dee", "eve"]),
        st.builds(
            an.SessionDelta,
            at_ms=st.integers(0, 48 * HOUR_MS),
            views=st.integers(0, 1),
            watch_seconds=st.floats(0, 30, allow_nan=False),
            new_viewer=st.booleans(),
            completion_delta=st.floats(-1, 1, allow_nan=False),
        ),
    ),
    min_size=1,
    max_size=40,
)
start = st.builds(
    an.VideoAnalytics,
    video_id=st.just("v1"),
    version=st.integers(0, 50),
    views=st.integers(0, 50),
    viewers=st.integers(0, 50),
    watch_seconds=st.floats(0, 1e4, allow_nan=False),
    completion_sum=st.floats(0, 10, allow_nan=False),
    buckets=st.lists(
        st.builds(
            an.TrendingBucket,
            st.integers(0, 47).map(lambda h: h * HOUR_MS),
            st.floats(0, 100, allow_nan=False),
        ),
        max_size=6,
        unique_by=lambda b: b.start_ms,
    ).map(lambda bs: tuple(sorted(bs))),
    last_event_ms=st.integers(0, 48 * HOUR_MS),
    recent_viewers=st.lists(st.sampled_from(["ann", "bob", "zed"]), unique=True, max_size=3).map(
        tuple
    ),
)


@settings(max_examples=300, deadline=None)
@given(stats=start, batch=deltas)
def test_folding_a_batch_at_once_equals_folding_it_event_by_event(
    stats: an.VideoAnalytics, batch: list[tuple[str, an.SessionDelta]]
) -> None:
    one_by_one = reduce(lambda s, d: an.fold_stats(s, d[0], d[1], POLICY), batch, stats)
    assert an.fold_stats_many(stats, batch, POLICY) == one_by_one
