"""Every metric is named by the house rule and documented in docs/observability.md."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client.metrics import MetricWrapperBase

from tritontube import metrics

DOC = Path(__file__).resolve().parents[2] / "docs" / "observability.md"
UNITS = ("seconds", "total", "records", "ratio", "bytes", "partitions", "flight", "count")
NAME = re.compile(r"^tritontube_[a-z]+_[a-z0-9_]+$")


def all_metrics() -> dict[str, MetricWrapperBase]:
    return {m._name: m for m in vars(metrics).values() if isinstance(m, MetricWrapperBase)}


def test_metric_names_follow_the_convention() -> None:
    found = all_metrics()
    assert len(found) >= 20
    for name, metric in found.items():
        full = name + ("_total" if metric._type == "counter" else "")
        assert NAME.match(full), full
        assert full.endswith(UNITS), f"{full} does not end with a unit"


def test_every_metric_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    missing = []
    for name, metric in all_metrics().items():
        full = name + ("_total" if metric._type == "counter" else "")
        if f"`{full}`" not in text:
            missing.append(full)
    assert not missing, f"undocumented in {DOC.name}: {missing}"
