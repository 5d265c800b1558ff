"""Recommendation ranking: exclusions, signals, owner diversity, cold start."""

from __future__ import annotations

from tritontube.domain.recommend import Candidate, Profile, rank, tag_affinity


def ids(ranked: list) -> list[str]:  # type: ignore[type-arg]
    return [s.candidate.video_id for s in ranked]


def test_never_the_seed_nor_finished_videos() -> None:
    cands = [
        Candidate("seed", "o", ("a",)),
        Candidate("done", "o", ("a",)),
        Candidate("x", "p", ()),
    ]
    profile = Profile(seed_id="seed", seed_tags=frozenset({"a"}), finished=frozenset({"done"}))
    assert ids(rank(cands, profile, 10)) == ["x"]


def test_cowatching_beats_tags_which_beat_popularity() -> None:
    cands = [
        Candidate("popular", "a", (), views=1000),
        Candidate("tagged", "b", ("cats",), views=10),
        Candidate("cowatched", "c", (), views=5, cowatch=3),
    ]
    profile = Profile(seed_id="s", seed_tags=frozenset({"cats"}))
    ranked = rank(cands, profile, 3)
    assert ids(ranked) == ["cowatched", "tagged", "popular"]
    assert ranked[0].reasons[0] == "co-watched"


def test_owners_are_diversified() -> None:
    cands = [Candidate(f"a{i}", "alice", ("t",), views=100 - i) for i in range(4)]
    cands.append(Candidate("b0", "bob", ("t",), views=50))
    top = ids(rank(cands, Profile(), 3))
    assert top[:2] == ["a0", "b0"]  # bob's weaker video is lifted above alice's second


def test_duplicates_from_several_sources_merge_their_signals() -> None:
    cands = [Candidate("x", "o", ("t",), views=5), Candidate("x", "o", (), trending=2.0, cowatch=1)]
    ranked = rank(cands, Profile(), 5)
    assert ids(ranked) == ["x"]
    assert set(ranked[0].reasons) == {"co-watched", "trending", "popular"}


def test_cold_start_ranks_by_trending_and_popularity() -> None:
    profile = Profile()
    assert profile.is_cold
    cands = [
        Candidate("old", "a", (), views=500),
        Candidate("hot", "b", (), views=10, trending=9.0),
        Candidate("meh", "c", (), views=1),
    ]
    assert ids(rank(cands, profile, 3)) == ["hot", "old", "meh"]


def test_tag_affinity_prefers_recent_history() -> None:
    weights = tag_affinity([("cats",), ("dogs",), ("dogs",)])
    assert weights["cats"] == 1.0
    assert 0 < weights["dogs"] < 1.0
    assert tag_affinity([]) == {}
