"""``python -m benchmarks`` (``make bench``): every issue's benchmark, one table.

1. Measure the side-by-side references (``benchmarks/references.py``) once, in this run.
2. Run every ``benchmarks/*_bench.py`` in a child process with a time limit. A module exposing
   ``run(quick) -> list[Figure]`` returns figures; a module without it is run as a script and
   its output shown as is.
3. Attach each figure's reference value, print one table (figure, value, goal, met, reference,
   ratio) and write it to ``benchmarks/results/bench-<UTC time>.md`` (and ``.json``).

Quick mode is the default and finishes in a few minutes; ``TRITONTUBE_BENCH_FULL=1`` (or
``--full``) runs the issue-sized workloads. ``--only presign,replay`` picks modules.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import cast

from benchmarks import references
from benchmarks.common import RESULTS_DIR, Figure, full_mode, render_table

HERE = Path(__file__).resolve().parent
MARKER = "BENCH-FIGURES-JSON: "
# Per-module and whole-run limits (seconds), quick / full.
MODULE_LIMIT = {True: 360.0, False: 3600.0}
RUN_LIMIT = {True: 1200.0, False: 4 * 3600.0}


def discover() -> list[str]:
    return sorted(p.stem for p in HERE.glob("*_bench.py"))


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    # Turn SIGTERM into an exception so the module's ``finally`` blocks stop its services.
    raise KeyboardInterrupt


def child(name: str, quick: bool) -> int:
    """Run one module's ``run(quick)`` and print its figures as one JSON line."""
    signal.signal(signal.SIGTERM, _raise_interrupt)
    entry = _entry(name)
    if entry is None:
        raise SystemExit(f"benchmarks.{name} has no run(quick) or figures(quick)")
    figures = entry(quick)
    label = name.removesuffix("_bench")
    out = [
        (f if f.module else Figure(**{**f.__dict__, "module": label})).to_json() for f in figures
    ]
    print(MARKER + json.dumps(out), flush=True)
    return 0


def _run_child(argv: list[str], limit: float) -> tuple[int | None, str, str]:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=limit)
        return proc.returncode, out, err
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        return None, out, err


def run_module(name: str, quick: bool, limit: float) -> tuple[list[Figure], str]:
    """Figures of one module, and a note (empty when it went well)."""
    label = name.removesuffix("_bench")
    has_run = _entry(name) is not None
    if has_run:
        argv = [sys.executable, "-m", "benchmarks", "--child", name]
    else:
        argv = [sys.executable, "-m", f"benchmarks.{name}"]
    if has_run and not quick:
        argv.append("--full")
    started = time.monotonic()
    code, out, err = _run_child(argv, limit)
    took = time.monotonic() - started
    if code is None:
        return [], f"{label}: stopped after the {limit:.0f} s limit"
    if code != 0:
        tail = "\n".join((err or out).strip().splitlines()[-15:])
        return [], f"{label}: failed (exit {code}) after {took:.0f} s:\n{tail}"
    if not has_run:
        return [], f"{label}: no run(quick) yet; its own output ({took:.0f} s):\n{out.strip()}"
    for line in out.splitlines():
        if line.startswith(MARKER):
            return [Figure.from_json(d) for d in json.loads(line[len(MARKER) :])], ""
    return [], f"{label}: printed no figures"


def _entry(name: str) -> Callable[[bool], list[Figure]] | None:
    """The module's ``run(quick)`` (or ``figures(quick)`` where ``run`` means something else)."""
    try:
        module = importlib.import_module(f"benchmarks.{name}")
    except ImportError as exc:
        print(f"cannot import benchmarks.{name}: {exc}", file=sys.stderr)
        return None
    for attr in ("run", "figures"):
        fn = getattr(module, attr, None)
        if callable(fn) and not inspect.iscoroutinefunction(fn):
            params = list(inspect.signature(fn).parameters.values())
            optional = all(p.default is not inspect.Parameter.empty for p in params[1:])
            if params and params[0].name == "quick" and optional:
                return cast(Callable[[bool], list[Figure]], fn)
    return None


def attach_references(figures: list[Figure], refs: dict[str, Figure]) -> list[Figure]:
    out = []
    for f in figures:
        ref = refs.get(f.reference or "")
        if f.reference_value is None and ref is not None:
            f = f.with_reference(ref.name, ref.value)
        out.append(f)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--full", action="store_true", help="issue-sized runs (slow)")
    parser.add_argument("--only", default="", help="comma-separated module names")
    parser.add_argument("--child", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    quick = not (args.full or full_mode())
    if args.child:
        return child(args.child, quick)

    started = time.monotonic()
    wanted = {n.strip().removesuffix("_bench") for n in args.only.split(",") if n.strip()}
    names = [n for n in discover() if not wanted or n.removesuffix("_bench") in wanted]
    mode = "quick" if quick else "FULL"
    print(f"benchmarks ({mode}): references + {', '.join(names) or 'no modules'}", flush=True)

    notes: list[str] = []
    refs: dict[str, Figure] = {}
    with tempfile.TemporaryDirectory() as tmp:
        try:
            refs = references.measure(quick, Path(tmp))
        except (OSError, subprocess.SubprocessError, RuntimeError) as exc:
            notes.append(f"references: failed: {exc!r}\n{traceback.format_exc(limit=3)}")
    print(f"  references measured ({time.monotonic() - started:.0f} s)", flush=True)

    figures: list[Figure] = list(refs.values())
    for name in names:
        left = RUN_LIMIT[quick] - (time.monotonic() - started)
        if left < 20:
            notes.append(f"{name}: skipped, the run's time budget is spent")
            continue
        t0 = time.monotonic()
        got, note = run_module(name, quick, min(MODULE_LIMIT[quick], left))
        print(f"  {name}: {len(got)} figures ({time.monotonic() - t0:.0f} s)", flush=True)
        figures += attach_references(got, refs)
        if note:
            notes.append(note)

    table = render_table(figures)
    elapsed = time.monotonic() - started
    print()
    print(table)
    for note in notes:
        print(f"\nNOTE {note}")
    print(f"\n{len(figures)} figures in {elapsed:.0f} s ({mode} mode)")
    _write(table, figures, notes, mode, elapsed)
    return 0


def _write(table: str, figures: list[Figure], notes: list[str], mode: str, elapsed: float) -> None:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    md = RESULTS_DIR / f"bench-{stamp}.md"
    body = [f"# make bench ({mode}), {stamp}, {elapsed:.0f} s", "", table, ""]
    body += [f"- {n.splitlines()[0]}" for n in notes]
    md.write_text("\n".join(body) + "\n", encoding="utf-8")
    (RESULTS_DIR / f"bench-{stamp}.json").write_text(
        json.dumps([f.to_json() for f in figures], indent=2), encoding="utf-8"
    )
    print(f"written: {md.relative_to(HERE.parent)}")


if __name__ == "__main__":
    sys.exit(main())
