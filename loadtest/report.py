"""The load report: the tools' own outputs read back into one Markdown page and one plot.

k6 writes every request as a point (``--out json``, gzipped) plus its end-of-test summary
(``--summary-export``) and HTML dashboard; Locust writes its CSV statistics (with the full
history) and HTML report; the Locust file adds ``autoscaling.csv`` and ``jobs.csv``. This module
only reads those files; ``latency.png`` shows every k6 request's latency over time and, for
the transcode queue, Locust's job latency with the lag and the replicas it would ask for.
"""

from __future__ import annotations

import csv
import gzip
import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

# The seed's SLO for the upload flood, checked client side (k6) and server side (/metrics).
PRESIGN_P99_MS = 100.0


@dataclass(frozen=True)
class Point:
    at: float  # seconds since the scenario's first request
    name: str
    ms: float
    status: int


@dataclass
class K6Run:
    name: str
    exit_code: int
    outdir: Path
    figures: dict[str, float] = field(default_factory=dict)

    @property
    def points_path(self) -> Path:
        return self.outdir / f"{self.name}-points.json.gz"

    @property
    def summary_path(self) -> Path:
        return self.outdir / f"{self.name}-summary.json"

    @property
    def html_path(self) -> Path:
        return self.outdir / f"{self.name}-report.html"

    def points(self) -> list[Point]:
        if not self.points_path.exists():
            return []
        raw: list[tuple[datetime, str, float, int]] = []
        with gzip.open(self.points_path, "rt", encoding="utf-8") as fh:
            for line in fh:
                item = json.loads(line)
                if item.get("type") != "Point" or item.get("metric") != "http_req_duration":
                    continue
                data = item["data"]
                tags = data.get("tags", {})
                if tags.get("name") == "setup":
                    continue
                at = datetime.fromisoformat(data["time"].replace("Z", "+00:00"))
                raw.append((at, tags.get("name", "?"), float(data["value"]), _status(tags)))
        if not raw:
            return []
        start = min(r[0] for r in raw)
        return [Point((t - start).total_seconds(), n, ms, s) for t, n, ms, s in raw]


@dataclass
class LocustRun:
    exit_code: int
    outdir: Path

    @property
    def html_path(self) -> Path:
        return self.outdir / "transcode-report.html"

    def stats(self) -> list[dict[str, str]]:
        return _read_csv(self.outdir / "transcode_stats.csv")

    def history(self) -> list[dict[str, str]]:
        return _read_csv(self.outdir / "transcode_stats_history.csv")

    def autoscaling(self) -> list[dict[str, str]]:
        return _read_csv(self.outdir / "autoscaling.csv")

    def jobs(self) -> dict[str, str]:
        rows = _read_csv(self.outdir / "jobs.csv")
        return rows[0] if rows else {}

    def ready_videos(self) -> list[str]:
        path = self.outdir / "ready-videos.txt"
        return path.read_text().split() if path.exists() else []


def _status(tags: dict[str, Any]) -> int:
    try:
        return int(tags.get("status", 0))
    except ValueError:
        return 0


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of ``values``; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.3g}"
    return str(value)


def _ok(status: int) -> bool:
    return 200 <= status < 400


def k6_table(runs: list[K6Run]) -> list[str]:
    rows = [
        "| script | request | count | errors | req/s | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        groups: dict[str, list[Point]] = defaultdict(list)
        for p in run.points():
            groups[p.name].append(p)
        for name, group in groups.items():
            lat = [p.ms for p in group if _ok(p.status)]
            span = max(p.at for p in group) - min(p.at for p in group)
            cells = [
                len(group),
                sum(1 for p in group if not _ok(p.status)),
                len(group) / span if span > 0 else math.nan,
                pct(lat, 50),
                pct(lat, 95),
                pct(lat, 99),
                max(lat, default=math.nan),
            ]
            rows.append(f"| {run.name} | {name} | " + " | ".join(fmt(c) for c in cells) + " |")
    return rows


def locust_table(run: LocustRun) -> list[str]:
    rows = [
        "| type | name | requests | failures | req/s | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in run.stats():
        cells = [
            r.get("Request Count", ""),
            r.get("Failure Count", ""),
            _num(r.get("Requests/s")),
            _num(r.get("50%")),
            _num(r.get("95%")),
            _num(r.get("99%")),
            _num(r.get("Max Response Time")),
        ]
        rows.append(
            f"| {r.get('Type', '')} | {r.get('Name', '')} | "
            + " | ".join(fmt(c) for c in cells)
            + " |"
        )
    return rows


def _num(text: str | None) -> float:
    try:
        return float(text) if text not in (None, "", "N/A") else math.nan
    except ValueError:
        return math.nan


def autoscaling_figures(run: LocustRun) -> dict[str, Any]:
    rows = run.autoscaling()
    lag = [_num(r["transcode_jobs_lag"]) for r in rows]
    wanted = [_num(r["desired_replicas"]) for r in rows]
    jobs = run.jobs()
    return {
        "jobs READY": jobs.get("ready", "-"),
        "jobs FAILED": jobs.get("failed", "-"),
        "jobs unfinished at the end": jobs.get("unfinished", "-"),
        "samples of the worker's /metrics": len(rows),
        "peak transcode-jobs lag (records)": max(lag, default=math.nan),
        "lag at the last sample": lag[-1] if lag else math.nan,
        "peak replicas asked for (lag / target, capped by partitions)": max(
            wanted, default=math.nan
        ),
    }


def plot(k6_runs: list[K6Run], locust: LocustRun | None, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [r for r in k6_runs if r.points_path.exists()]
    count = len(panels) + (1 if locust is not None else 0)
    fig, axes = plt.subplots(max(1, count), 1, figsize=(11, 3.3 * max(1, count)), squeeze=False)
    for ax, run in zip(axes[:, 0], panels, strict=False):
        points = run.points()
        for name in dict.fromkeys(p.name for p in points):
            ok = [p for p in points if p.name == name and _ok(p.status)]
            ax.scatter([p.at for p in ok], [p.ms for p in ok], s=4, alpha=0.6, label=name)
        errors = [p for p in points if not _ok(p.status)]
        if errors:
            ax.scatter(
                [p.at for p in errors], [p.ms for p in errors], s=14, marker="x", c="red",
                label="errors",
            )  # fmt: skip
        ax.set_yscale("log")
        ax.set_ylabel("latency (ms)")
        ax.set_title(f"k6 {run.name}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(loc="upper left", fontsize="small", markerscale=3)
    if locust is not None:
        _plot_locust(axes[-1, 0], locust)
    axes[-1, 0].set_xlabel("seconds since the scenario started")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_locust(ax: Any, run: LocustRun) -> None:
    history = [r for r in run.history() if r.get("Name") == "upload->READY"]
    if history:
        t0 = _num(history[0]["Timestamp"])
        for col in ("50%", "95%"):
            ax.plot(
                [_num(r["Timestamp"]) - t0 for r in history],
                [_num(r[col]) / 1000 for r in history],
                label=f"upload->READY {col} (s)",
            )
        ax.legend(loc="upper left", fontsize="small")
    ax.set_ylabel("job latency (s)")
    ax.set_title("Locust transcode queue")
    ax.grid(True, alpha=0.3)
    rows = run.autoscaling()
    if rows:
        twin = ax.twinx()
        at = [_num(r["at_s"]) for r in rows]
        twin.plot(at, [_num(r["transcode_jobs_lag"]) for r in rows], c="black", lw=1,
                  label="transcode-jobs lag")  # fmt: skip
        twin.step(at, [_num(r["desired_replicas"]) for r in rows], c="tab:red", lw=1,
                  where="post", label="replicas asked for")  # fmt: skip
        twin.set_ylabel("records / replicas")
        twin.legend(loc="upper right", fontsize="small")


def write(
    outdir: Path,
    header: list[str],
    k6_runs: list[K6Run],
    locust: LocustRun | None,
    server: dict[str, dict[str, float]],
) -> Path:
    plot(k6_runs, locust, outdir / "latency.png")
    lines = [*header, ""]
    if k6_runs:
        lines += ["## k6 (every request, from the points k6 wrote)", "", *k6_table(k6_runs), ""]
        for run in k6_runs:
            verdict = {0: "thresholds met", 99: "**thresholds crossed**"}.get(
                run.exit_code, f"**k6 exited {run.exit_code}**"
            )
            own = [f"`{p.name}`" for p in (run.summary_path, run.html_path) if p.exists()]
            lines.append(f"- {run.name}: {verdict}; k6's own reports: {', '.join(own) or '-'}")
        lines.append("")
    if locust is not None:
        lines += ["## Locust: transcode queue", "", *locust_table(locust), ""]
        lines += ["| figure | value |", "|---|---:|"]
        lines += [f"| {k} | {fmt(v)} |" for k, v in autoscaling_figures(locust).items()]
        lines += ["", f"Locust's own report: `{locust.html_path.name}`, CSV `transcode_*.csv`.", ""]
    for scenario, figures in server.items():
        lines += [f"## {scenario}: server side (from /metrics before and after)", ""]
        lines += ["| figure | value |", "|---|---:|"]
        lines += [f"| {k} | {fmt(v)} |" for k, v in figures.items()]
        lines.append("")
    lines += [
        "## SLO",
        "",
        *slo_lines(k6_runs, server),
        "",
        "![latency over time](latency.png)",
        "",
    ]
    report = outdir / "report.md"
    report.write_text("\n".join(lines), encoding="utf-8")
    return report


def slo_lines(k6_runs: list[K6Run], server: dict[str, dict[str, float]]) -> list[str]:
    out = []
    flood = next((r for r in k6_runs if r.name == "upload_flood"), None)
    if flood is not None:
        lat = [p.ms for p in flood.points() if p.name == "uploadURL" and _ok(p.status)]
        out.append(_verdict("presign p99 (k6, client side)", pct(lat, 99)))
    value = server.get("upload flood", {}).get("presign p99 (ms)")
    if value is not None:
        out.append(_verdict("presign p99 (server histogram)", value))
    return out or ["- presign p99 < 100 ms: not measured (no upload flood in this run)"]


def _verdict(label: str, value: float) -> str:
    if math.isnan(value):
        return f"- {label} < {PRESIGN_P99_MS:g} ms: not measured"
    met = "met" if value < PRESIGN_P99_MS else "MISSED"
    return f"- {label} < {PRESIGN_P99_MS:g} ms: **{met}** ({value:.1f} ms)"
