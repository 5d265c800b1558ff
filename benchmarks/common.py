"""What every benchmark module shares: the ``Figure`` it returns, goals, percentiles, fixtures.

A benchmark module is ``benchmarks/<name>_bench.py`` exposing

    def run(quick: bool) -> list[Figure]: ...

``python -m benchmarks`` (``make bench``) discovers the modules, runs each in a child process
with a time limit, measures the side-by-side references (``benchmarks/references.py``) in the
same run and prints one table: figure, value, goal, met?, reference and ratio.

A figure names its reference by key (``Figure.reference``, one of ``references.NAMES``) and the
runner fills in the value measured in this run; a module that measured its own baseline (for
example bare boto3 next to our presign adapter) sets ``reference_value`` itself.
``ratio = value / reference_value`` in the figure's unit: time ratios above 1 are overhead,
rate ratios below 1 are the share of the bare library's speed we keep.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

FULL_ENV = "TRITONTUBE_BENCH_FULL"
FFMPEG = shutil.which("ffmpeg") or "ffmpeg"
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def full_mode() -> bool:
    """``TRITONTUBE_BENCH_FULL=1`` asks for the issue-sized runs instead of the quick ones."""
    return os.environ.get(FULL_ENV, "").lower() in {"1", "true", "yes"}


@dataclass(frozen=True)
class Goal:
    """A target: ``value < limit`` (op ``"<"``) or ``value > limit`` (op ``">"``)."""

    op: Literal["<", ">"]
    limit: float

    def met(self, value: float) -> bool:
        return value < self.limit if self.op == "<" else value > self.limit

    def __str__(self) -> str:
        return f"{self.op} {self.limit:g}"


def at_most(limit: float) -> Goal:
    return Goal("<", limit)


def at_least(limit: float) -> Goal:
    return Goal(">", limit)


@dataclass(frozen=True)
class Figure:
    """One measured number.

    ``name`` says what (``presign p99``), ``unit`` how (``ms``, ``events/s``, ``s``, ``x``).
    ``reference`` is the key of a side-by-side reference (``references.NAMES``) the runner
    measures in the same run; ``reference_value``/``reference_name`` can be set by the module
    itself when it measured its own baseline (same unit as ``value``).
    """

    name: str
    value: float
    unit: str
    goal: Goal | None = None
    reference: str | None = None
    reference_name: str | None = None
    reference_value: float | None = None
    module: str = ""
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.reference_value is None or self.reference_value == 0:
            return None
        return self.value / self.reference_value

    @property
    def met(self) -> bool | None:
        return None if self.goal is None else self.goal.met(self.value)

    def with_reference(self, name: str, value: float) -> Figure:
        return replace(self, reference_name=name, reference_value=value)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["goal"] = None if self.goal is None else {"op": self.goal.op, "limit": self.goal.limit}
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Figure:
        goal = data.get("goal")
        return cls(**{**data, "goal": None if goal is None else Goal(goal["op"], goal["limit"])})


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if abs(value) >= 1000:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}".strip()


def render_table(figures: Sequence[Figure]) -> str:
    """One plain-text table (also valid Markdown) of every figure (the note says under what
    conditions it was measured, e.g. the machine's load average)."""
    header = ("module", "figure", "value", "goal", "met", "reference", "ratio", "note")
    rows = [header]
    for f in figures:
        ref = "-"
        if f.reference_name is not None:
            ref = f"{f.reference_name} = {_fmt(f.reference_value, f.unit)}"
        met = "-" if f.met is None else ("yes" if f.met else "NO")
        goal = "-" if f.goal is None else f"{f.goal} {f.unit}"
        ratio = "-" if f.ratio is None else f"x{f.ratio:.3g}"
        note = f.note.replace("|", "/") or "-"
        rows.append((f.module, f.name, _fmt(f.value, f.unit), goal, met, ref, ratio, note))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def make_clip(
    path: Path,
    seconds: float,
    size: str = "1280x720",
    rate: int = 30,
    *,
    camera: bool = False,
    hdr: bool = False,
) -> Path:
    """A synthetic H.264 + AAC MP4 (ffmpeg's testsrc2 and a sine tone); cached by name.

    ``camera``: like a phone's recording instead of a clean test pattern: temporal noise on
    every frame and 16 Mb/s, so decoding and encoding cost what they cost on real footage.
    ``hdr``: camera-like, and as phones record by default: 10-bit HEVC in HLG (BT.2020).
    """
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    video = ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", str(rate * 2)]
    if hdr:
        video = [
            "-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p10le", "-tag:v", "hvc1",
            "-x265-params",
            f"keyint={rate * 2}:colorprim=bt2020:transfer=arib-std-b67:colormatrix=bt2020nc"
            ":log-level=error",
            "-color_primaries", "bt2020", "-color_trc", "arib-std-b67", "-colorspace", "bt2020nc",
        ]  # fmt: skip
    if camera or hdr:
        video += ["-vf", "noise=alls=12:allf=t+u", "-b:v", "16M", "-maxrate", "20M",
                  "-bufsize", "32M"]  # fmt: skip
    subprocess.run(
        [FFMPEG, "-v", "error", "-f", "lavfi",
         "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds}",
         "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
         *video,
         "-c:a", "aac", "-shortest", "-movflags", "+faststart", "-y", str(path)],
        check=True, timeout=600,
    )  # fmt: skip
    return path
