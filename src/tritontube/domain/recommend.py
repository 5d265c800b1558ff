"""Recommendation ranking: pure scoring of candidates gathered by the HTTP layer.

Candidates come from four sources (see docs/search.md): videos sharing tags with the seed
video and the user's recent history, videos co-watched by the seed's recent viewers,
trending videos and the most viewed ones. :func:`rank` scores them, drops the seed and
the videos the user has finished, and re-ranks greedily so that no owner dominates.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

W_COWATCH = 3.0
W_SEED_TAGS = 2.0
W_PROFILE_TAGS = 1.0
W_TRENDING = 1.0
W_POPULARITY = 0.3
OWNER_DECAY = 0.5  # each earlier pick from the same owner halves a candidate's score


@dataclass(frozen=True)
class Candidate:
    video_id: str
    owner: str
    tags: tuple[str, ...]
    views: int = 0
    trending: float = 0.0
    cowatch: int = 0  # how many of the seed's recent viewers also watched it


@dataclass(frozen=True)
class Profile:
    """What we know about the viewer: the seed video and their recent history."""

    seed_id: str | None = None
    seed_tags: frozenset[str] = frozenset()
    tag_affinity: Mapping[str, float] = field(default_factory=dict)  # tag -> weight (0-1)
    finished: frozenset[str] = frozenset()
    watched: frozenset[str] = frozenset()

    @property
    def is_cold(self) -> bool:
        return self.seed_id is None and not self.tag_affinity and not self.watched


@dataclass(frozen=True)
class Scored:
    candidate: Candidate
    score: float
    reasons: tuple[str, ...]


def tag_affinity(history_tags: Iterable[tuple[str, ...]]) -> dict[str, float]:
    """Tag weights from the tags of recently watched videos, most recent first (decaying)."""
    weights: dict[str, float] = {}
    for rank, tags in enumerate(history_tags):
        for tag in tags:
            weights[tag] = weights.get(tag, 0.0) + 1.0 / (1 + rank)
    top = max(weights.values(), default=0.0)
    return {tag: w / top for tag, w in weights.items()} if top else {}


def merge(candidates: Iterable[Candidate]) -> list[Candidate]:
    """One candidate per video: the strongest signals of every source that produced it."""
    merged: dict[str, Candidate] = {}
    for c in candidates:
        old = merged.get(c.video_id)
        if old is None:
            merged[c.video_id] = c
            continue
        merged[c.video_id] = Candidate(
            video_id=c.video_id,
            owner=c.owner or old.owner,
            tags=c.tags or old.tags,
            views=max(c.views, old.views),
            trending=max(c.trending, old.trending),
            cowatch=max(c.cowatch, old.cowatch),
        )
    return list(merged.values())


def score(
    c: Candidate, p: Profile, max_trending: float, max_views: int, max_cowatch: int
) -> Scored:
    parts: list[tuple[str, float]] = []
    if c.cowatch and max_cowatch:
        parts.append(("co-watched", W_COWATCH * c.cowatch / max_cowatch))
    tags = frozenset(c.tags)
    if p.seed_tags and tags:
        jaccard = len(tags & p.seed_tags) / len(tags | p.seed_tags)
        if jaccard:
            parts.append(("similar tags", W_SEED_TAGS * jaccard))
    if p.tag_affinity and tags:
        affinity = max((p.tag_affinity.get(t, 0.0) for t in tags), default=0.0)
        if affinity:
            parts.append(("your interests", W_PROFILE_TAGS * affinity))
    if c.trending > 0 and max_trending > 0:
        parts.append(("trending", W_TRENDING * c.trending / max_trending))
    if c.views > 0 and max_views > 0:
        parts.append(("popular", W_POPULARITY * math.log1p(c.views) / math.log1p(max_views)))
    total = sum(v for _, v in parts)
    reasons = tuple(name for name, v in sorted(parts, key=lambda kv: -kv[1]) if v > 0)
    return Scored(candidate=c, score=round(total, 9), reasons=reasons)


def rank(candidates: Sequence[Candidate], profile: Profile, limit: int) -> list[Scored]:
    """The best ``limit`` candidates, owners diversified; never the seed or finished videos."""
    eligible = [
        c
        for c in merge(candidates)
        if c.video_id != profile.seed_id and c.video_id not in profile.finished
    ]
    if not eligible:
        return []
    max_trending = max(c.trending for c in eligible)
    max_views = max(c.views for c in eligible)
    max_cowatch = max(c.cowatch for c in eligible)
    scored = [score(c, profile, max_trending, max_views, max_cowatch) for c in eligible]
    scored.sort(key=lambda s: (-s.score, s.candidate.video_id))
    return diversify(scored, limit)


def diversify(scored: Sequence[Scored], limit: int) -> list[Scored]:
    """Greedy re-rank: a candidate's score decays with every pick already from its owner."""
    remaining = list(scored)
    picked: list[Scored] = []
    per_owner: dict[str, int] = {}
    while remaining and len(picked) < limit:
        best_i = max(
            range(len(remaining)),
            key=lambda i: (
                _effective(remaining[i], per_owner),
                -i,  # ties keep the score order (itself tie-broken by video id)
            ),
        )
        choice = remaining.pop(best_i)
        picked.append(choice)
        owner = choice.candidate.owner
        per_owner[owner] = per_owner.get(owner, 0) + 1
    return picked


def _effective(s: Scored, per_owner: Mapping[str, int]) -> float:
    return s.score * OWNER_DECAY ** per_owner.get(s.candidate.owner, 0)
