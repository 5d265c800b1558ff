"""Scrape a ``/metrics`` endpoint and read histograms and gauges out of it.

Percentiles of a server-side histogram over a load run come from the *difference* of two
scrapes (before/after), interpolated inside buckets the way PromQL's ``histogram_quantile``
does, so other traffic before the run does not count.
"""

from __future__ import annotations

import math
import urllib.request
from collections import defaultdict
from collections.abc import Mapping

from prometheus_client.parser import text_string_to_metric_families

Labels = tuple[tuple[str, str], ...]
Scrape = dict[str, dict[Labels, float]]  # sample name -> labels -> value


def scrape(url: str, timeout: float = 10.0) -> Scrape:
    """One scrape of a loopback ``/metrics`` endpoint."""
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback, checked
        return parse(resp.read().decode("utf-8"))


def parse(text: str) -> Scrape:
    out: Scrape = defaultdict(dict)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[sample.name][tuple(sorted(sample.labels.items()))] = sample.value
    return dict(out)


def _buckets(s: Scrape, name: str, match: Mapping[str, str]) -> dict[float, float]:
    buckets: dict[float, float] = defaultdict(float)
    for labels, value in s.get(f"{name}_bucket", {}).items():
        d = dict(labels)
        if any(d.get(k) != v for k, v in match.items()):
            continue
        buckets[float(d["le"])] += value
    return dict(buckets)


def histogram_delta(
    before: Scrape, after: Scrape, name: str, match: Mapping[str, str] | None = None
) -> dict[float, float]:
    """Cumulative bucket counts (``le`` -> count) observed between two scrapes."""
    m = match or {}
    b, a = _buckets(before, name, m), _buckets(after, name, m)
    return {le: a[le] - b.get(le, 0.0) for le in sorted(a)}


def quantile(q: float, buckets: Mapping[float, float]) -> float:
    """``histogram_quantile(q, ...)`` over cumulative buckets; NaN when nothing was observed."""
    items = sorted(buckets.items())
    if not items or items[-1][1] <= 0:
        return math.nan
    total = items[-1][1]
    rank = q * total
    prev_le, prev_count = 0.0, 0.0
    for le, count in items:
        if count >= rank:
            if math.isinf(le):
                return prev_le
            if count == prev_count:
                return le
            return prev_le + (le - prev_le) * (rank - prev_count) / (count - prev_count)
        prev_le, prev_count = le, count
    return prev_le


def total(buckets: Mapping[float, float]) -> float:
    return max(buckets.values(), default=0.0)


def gauge_sum(s: Scrape, name: str, match: Mapping[str, str] | None = None) -> float:
    m = match or {}
    return sum(
        v
        for labels, v in s.get(name, {}).items()
        if all(dict(labels).get(k) == x for k, x in m.items())
    )
