"""The load report: a Markdown table per scenario, server-side figures, SLOs and a PNG plot."""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from loadtest.scenarios import Sample, Target

# The seed's SLOs, checked on the server-side histograms of the upload flood.
SLOS = (
    ("upload", "server presign p99 (ms)", 100.0),
    ("upload", "queue latency p99 (ms)", 500.0),
)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def _ok(s: Sample) -> bool:
    return 200 <= s.status < 400


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "-" if math.isnan(v) else f"{v:,.1f}" if abs(v) >= 10 else f"{v:.3g}"
    return str(v)


def table(samples: list[Sample]) -> str:
    groups: dict[tuple[str, str], list[Sample]] = defaultdict(list)
    for s in samples:
        groups[(s.scenario, s.op)].append(s)
    rows = [
        "| scenario | operation | requests | errors | req/s | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (scenario, op), group in groups.items():
        lat = [s.seconds * 1000 for s in group if _ok(s)]
        span = max(s.at + s.seconds for s in group) - min(s.at for s in group)
        rate = len(group) / span if span > 0 else math.nan
        errors = sum(1 for s in group if not _ok(s))
        cells = [
            len(group),
            errors,
            rate,
            _pct(lat, 50),
            _pct(lat, 95),
            _pct(lat, 99),
            max(lat, default=math.nan),
        ]
        rows.append(f"| {scenario} | {op} | " + " | ".join(_fmt(c) for c in cells) + " |")
    return "\n".join(rows)


def slo_lines(figures: dict[str, dict[str, Any]]) -> list[str]:
    out = []
    for scenario, key, limit in SLOS:
        value = figures.get(scenario, {}).get(key)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            out.append(f"- {key} < {limit:g}: not measured")
            continue
        verdict = "met" if value < limit else "MISSED"
        out.append(f"- {key} < {limit:g}: **{verdict}** ({value:.1f})")
    return out


def plot(t: Target, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = list(dict.fromkeys(s.scenario for s in t.samples))
    fig, axes = plt.subplots(len(scenarios) or 1, 1, figsize=(11, 3.2 * max(1, len(scenarios))))
    axes_list = list(axes) if len(scenarios) > 1 else [axes]
    for ax, scenario in zip(axes_list, scenarios, strict=False):
        ops = list(dict.fromkeys(s.op for s in t.samples if s.scenario == scenario))
        for op in ops:
            pts = [s for s in t.samples if s.scenario == scenario and s.op == op and _ok(s)]
            ax.scatter([s.at for s in pts], [s.seconds * 1000 for s in pts], s=6, label=op)
        errs = [s for s in t.samples if s.scenario == scenario and not _ok(s)]
        if errs:
            ax.scatter(
                [s.at for s in errs],
                [s.seconds * 1000 for s in errs],
                s=14,
                marker="x",
                c="red",
                label="errors",
            )
        ax.set_yscale("log")
        ax.set_ylabel("latency (ms)")
        ax.set_title(scenario)
        ax.grid(True, which="both", alpha=0.3)
        if scenario == "transcode" and t.lag_series:
            lag_ax = ax.twinx()
            lag_ax.plot(
                [a for a, _ in t.lag_series],
                [v for _, v in t.lag_series],
                c="black",
                lw=1,
                label="transcode-jobs lag",
            )
            lag_ax.set_ylabel("lag (records)")
            lag_ax.legend(loc="upper right", fontsize="small")
        ax.legend(loc="upper left", fontsize="small", markerscale=2)
    axes_list[-1].set_xlabel("seconds since start")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(t: Target, outdir: Path, header: list[str]) -> Path:
    outdir.mkdir(parents=True, exist_ok=True)
    with (outdir / "samples.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["at_s", "scenario", "op", "latency_s", "status"])
        for s in t.samples:
            w.writerow([f"{s.at:.4f}", s.scenario, s.op, f"{s.seconds:.6f}", s.status])
    plot(t, outdir / "latency.png")
    lines = [*header, "", "## Requests (client side)", "", table(t.samples), ""]
    for scenario, figures in t.figures.items():
        lines += [
            f"## {scenario} (server side, from /metrics)",
            "",
            "| figure | value |",
            "|---|---:|",
        ]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in figures.items()]
        lines.append("")
    lines += [
        "## Seed SLOs",
        "",
        *slo_lines(t.figures),
        "",
        "![latency over time](latency.png)",
        "",
    ]
    report = outdir / "report.md"
    report.write_text("\n".join(lines), encoding="utf-8")
    return report
