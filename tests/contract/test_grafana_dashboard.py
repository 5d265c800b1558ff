"""The Grafana dashboard JSON: loadable structure, and only metrics that exist."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from prometheus_client.metrics import MetricWrapperBase

from tritontube import metrics

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "tritontube.json"
PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")


def _exported_names() -> set[str]:
    """Every sample name prometheus-client exposes for the metrics in metrics.py."""
    names = set()
    for m in vars(metrics).values():
        if not isinstance(m, MetricWrapperBase):
            continue
        base = m._name
        names.add(base)
        names.update(base + s for s in SUFFIXES)
    return names


def _panels(dash: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for p in dash["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))
    return out


def load() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return data


def test_top_level_structure() -> None:
    dash = load()
    assert isinstance(dash["schemaVersion"], int) and dash["schemaVersion"] >= 36
    assert dash["uid"] and len(dash["uid"]) <= 40
    assert dash["title"]
    assert isinstance(dash["panels"], list) and dash["panels"]
    assert {"from", "to"} <= dash["time"].keys()


def test_panels_have_unique_ids_and_valid_grid_positions() -> None:
    panels = _panels(load())
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    for p in panels:
        grid = p["gridPos"]
        assert 0 <= grid["x"] < 24 and 1 <= grid["w"] <= 24 and grid["x"] + grid["w"] <= 24
        assert grid["h"] >= 1 and grid["y"] >= 0
        assert p["type"] in {"row", "timeseries", "stat", "gauge", "table", "heatmap", "bargauge"}


def test_every_target_queries_metrics_that_exist() -> None:
    exported = _exported_names()
    datasource_uid = re.search(r"uid:\s*(\S+)", PROVISIONING.read_text(encoding="utf-8"))
    assert datasource_uid is not None
    queried: set[str] = set()
    for p in _panels(load()):
        if p["type"] == "row":
            continue
        assert p["targets"], p["title"]
        assert p["datasource"]["uid"] == datasource_uid.group(1)
        for t in p["targets"]:
            assert t["refId"] and t["expr"]
            names = set(re.findall(r"\btritontube_[a-z0-9_]+", t["expr"]))
            assert names, f"{p['title']}: {t['expr']}"
            unknown = names - exported
            assert not unknown, f"{p['title']} queries unknown metrics {unknown}"
            assert t["expr"].count("(") == t["expr"].count(")")
            queried |= names
    # The SLO and autoscaling series are on the dashboard.
    for needed in (
        "tritontube_http_request_duration_seconds_bucket",
        "tritontube_upload_presign_duration_seconds_bucket",
        "tritontube_stream_queue_latency_seconds_bucket",
        "tritontube_stream_consumer_lag_records",
        "tritontube_transcode_duration_seconds_bucket",
        "tritontube_index_freshness_seconds_bucket",
        "tritontube_archive_lag_records",
    ):
        assert needed in queried, needed
