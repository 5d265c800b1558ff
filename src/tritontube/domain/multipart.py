"""Resumable uploads of large files: how a declared size splits into S3 multipart parts.

Pure: the API plans the parts when a session starts and checks what the object store holds
before it joins them. Parts are numbered from 1; every part but the last has ``part_size``
bytes, the last the rest. S3 allows at most 10,000 parts of at least 5 MiB (but the last).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

MIN_PART_BYTES = 5 * 1024**2
MAX_PARTS = 10_000


@dataclass(frozen=True, slots=True)
class PartPlan:
    """How ``size_bytes`` is cut into parts of ``part_size`` bytes."""

    size_bytes: int
    part_size: int

    @property
    def count(self) -> int:
        return math.ceil(self.size_bytes / self.part_size)

    def expected_size(self, part_number: int) -> int:
        """Bytes part ``part_number`` must hold (1..count)."""
        if not 1 <= part_number <= self.count:
            raise ValueError(f"part {part_number} is outside 1..{self.count}")
        if part_number < self.count:
            return self.part_size
        return self.size_bytes - self.part_size * (self.count - 1)


def plan_parts(size_bytes: int, part_size: int) -> PartPlan:
    """The plan for an upload of ``size_bytes``: parts of ``part_size`` bytes, larger (whole
    MiB) when that would need more than :data:`MAX_PARTS` parts."""
    if size_bytes < 1:
        raise ValueError("size_bytes must be at least 1")
    if part_size < MIN_PART_BYTES:
        raise ValueError(f"part_size must be at least {MIN_PART_BYTES}")
    needed = math.ceil(size_bytes / MAX_PARTS)
    if needed > part_size:
        part_size = math.ceil(needed / 1024**2) * 1024**2
    return PartPlan(size_bytes, part_size)


@dataclass(frozen=True, slots=True)
class PartCheck:
    """What the store holds against the plan: parts still missing, parts of the wrong size
    (or numbered outside the plan)."""

    missing: tuple[int, ...]
    wrong: tuple[int, ...]

    @property
    def complete(self) -> bool:
        return not self.missing and not self.wrong


def check_parts(plan: PartPlan, stored: Iterable[tuple[int, int]]) -> PartCheck:
    """Compare stored ``(part_number, size)`` pairs with the plan."""
    sizes = dict(stored)
    wrong = sorted(
        n for n, size in sizes.items() if not 1 <= n <= plan.count or size != plan.expected_size(n)
    )
    missing = [n for n in range(1, plan.count + 1) if n not in sizes]
    return PartCheck(tuple(missing), tuple(wrong))
