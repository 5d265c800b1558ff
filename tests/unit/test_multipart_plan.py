"""How a declared size is cut into multipart parts, and the check before they are joined."""

from __future__ import annotations

import pytest

from tritontube.domain.multipart import (
    MAX_PARTS,
    MIN_PART_BYTES,
    PartPlan,
    check_parts,
    plan_parts,
)

MiB = 1024**2


def test_parts_are_the_part_size_but_the_last() -> None:
    plan = plan_parts(22 * MiB + 7, 5 * MiB)
    assert (plan.part_size, plan.count) == (5 * MiB, 5)
    assert [plan.expected_size(n) for n in range(1, 6)] == [5 * MiB] * 4 + [2 * MiB + 7]
    assert sum(plan.expected_size(n) for n in range(1, plan.count + 1)) == plan.size_bytes
    with pytest.raises(ValueError, match="outside"):
        plan.expected_size(6)
    with pytest.raises(ValueError, match="outside"):
        plan.expected_size(0)


def test_an_exact_multiple_has_no_short_last_part() -> None:
    plan = plan_parts(10 * MiB, 5 * MiB)
    assert plan.count == 2 and plan.expected_size(2) == 5 * MiB


def test_a_file_smaller_than_a_part_is_one_part() -> None:
    plan = plan_parts(100, 16 * MiB)
    assert plan.count == 1 and plan.expected_size(1) == 100


def test_huge_uploads_grow_the_part_size_to_stay_within_10000_parts() -> None:
    plan = plan_parts(20 * 1024**3, 16 * MiB)
    assert plan.part_size == 16 * MiB and plan.count == 1280
    huge = plan_parts(5 * 1024**4, 16 * MiB)  # 5 TiB: S3's largest object
    assert huge.count <= MAX_PARTS
    assert huge.part_size % MiB == 0 and huge.part_size > 16 * MiB


def test_parts_below_the_s3_minimum_are_refused() -> None:
    with pytest.raises(ValueError, match="part_size"):
        plan_parts(100 * MiB, MIN_PART_BYTES - 1)
    with pytest.raises(ValueError, match="size_bytes"):
        plan_parts(0, MIN_PART_BYTES)


def test_check_names_missing_and_wrong_parts() -> None:
    plan = PartPlan(22 * MiB, 5 * MiB)
    assert check_parts(plan, [(1, 5 * MiB), (2, 5 * MiB)]).missing == (3, 4, 5)
    wrong = check_parts(plan, [(1, 5 * MiB), (2, 4 * MiB), (3, 5 * MiB), (4, 5 * MiB), (9, 1)])
    assert wrong.wrong == (2, 9) and wrong.missing == (5,)
    assert not wrong.complete
    every = [(n, plan.expected_size(n)) for n in range(1, 6)]
    assert check_parts(plan, every).complete
    assert not check_parts(plan, [*every[:-1], (5, plan.expected_size(5) + 1)]).complete
