"""``python -m loadtest`` (``make load``): the design's load tools against a running stack.

    make dev                                   # in another terminal
    make load                                  # or:
    python -m loadtest --api http://127.0.0.1:8080 --worker http://127.0.0.1:6066 \\
        --scenarios transcode,playback,search,upload --seconds 60

* ``transcode``, Locust (``loadtest/locustfile.py``): jobs submitted at a steady pace; time
  to READY; the ``transcode-jobs`` lag and the replicas it asks for.
* ``playback``, k6 (``loadtest/k6/playback_fanout.js``): viewers at once: playbackInfo, the
  manifest, the init and first segments.
* ``search``, k6 (``loadtest/k6/search_mix.js``): 80 % search, 20 % recommendations, at a
  fixed rate.
* ``upload``, k6 (``loadtest/k6/upload_flood.js``): upload sessions, one user each; the
  threshold is the seed's SLO, presign p99 < 100 ms.

The upload flood runs last: every upload it completes is a transcode job, and its backlog
must not sit in front of the transcode measurement. Loopback targets only; every scenario is
bounded by ``--seconds`` (at most 1800) and by its counts. Tokens are signed as
``tritontube token create`` signs. Everything goes to ``benchmarks/results/load-<UTC time>/``:
the tools' own reports (k6 summary JSON + HTML dashboard, Locust CSV + HTML), ``report.md`` and
``latency.png``.
"""

from __future__ import annotations

import argparse
import math
import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from loadtest import promtext, report
from loadtest.targets import loopback_url, make_clip, tool, write_tokens

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
K6_DIR = Path(__file__).resolve().parent / "k6"
ALL = ("transcode", "playback", "search", "upload")


def free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_k6(
    name: str, script: str, env: dict[str, str], outdir: Path, seconds: float
) -> report.K6Run:
    """``k6 run`` with its summary export, every point (gzipped JSON) and its HTML dashboard."""
    run = report.K6Run(name=name, exit_code=-1, outdir=outdir)
    full_env = {
        **os.environ,
        "K6_WEB_DASHBOARD": "true",
        "K6_WEB_DASHBOARD_HOST": "127.0.0.1",
        "K6_WEB_DASHBOARD_PORT": str(free_loopback_port()),
        "K6_WEB_DASHBOARD_PERIOD": "2s",
        "K6_WEB_DASHBOARD_EXPORT": str(run.html_path),
        "K6_NO_USAGE_REPORT": "true",
    }
    argv = [
        tool("k6"), "run", "--quiet", "--no-color",
        "--summary-export", str(run.summary_path),
        "--out", f"json={run.points_path}",
        *(arg for key, value in env.items() for arg in ("-e", f"{key}={value}")),
        str(K6_DIR / script),
    ]  # fmt: skip
    with (outdir / f"{name}-k6.txt").open("w", encoding="utf-8") as log:
        done = subprocess.run(
            argv, env=full_env, stdout=log, stderr=subprocess.STDOUT, timeout=seconds + 300,
            check=False,
        )  # fmt: skip
    run.exit_code = done.returncode
    print(f"  k6 {name}: exit {done.returncode}; summary in {name}-k6.txt", flush=True)
    return run


def run_locust(args: argparse.Namespace, clip: Path, outdir: Path) -> report.LocustRun:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "LOAD_API": args.api,
        "LOAD_WORKER": args.worker,
        "LOAD_CLIP": str(clip),
        "LOAD_OUT": str(outdir),
        "LOAD_PACE": str(args.pace),
        # The last third of the run submits nothing and follows the queued jobs to READY.
        "LOAD_SUBMIT_SECONDS": str(round(args.seconds * 2 / 3, 1)),
    }
    argv = [
        tool("locust"), "-f", str(Path(__file__).resolve().parent / "locustfile.py"),
        "--headless", "--only-summary",
        "--users", str(args.submitters), "--spawn-rate", str(args.submitters),
        "--run-time", f"{int(args.seconds)}s", "--stop-timeout", "30",
        "--host", args.api,
        "--csv", str(outdir / "transcode"), "--csv-full-history",
        "--html", str(outdir / "transcode-report.html"),
        "--exit-code-on-error", "0",
    ]  # fmt: skip
    with (outdir / "transcode-locust.txt").open("w", encoding="utf-8") as log:
        done = subprocess.run(
            argv, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            timeout=args.seconds + 300, check=False,
        )  # fmt: skip
    print(f"  locust transcode: exit {done.returncode}", flush=True)
    return report.LocustRun(exit_code=done.returncode, outdir=outdir)


def upload_server_figures(
    before: dict[str, promtext.Scrape], after: dict[str, promtext.Scrape]
) -> dict[str, float]:
    presign = promtext.histogram_delta(
        before["api"], after["api"], "tritontube_upload_presign_duration_seconds"
    )
    queue = promtext.histogram_delta(
        before["worker"],
        after["worker"],
        "tritontube_stream_queue_latency_seconds",
        {"agent": "video-state"},
    )
    return {
        "presign requests": promtext.total(presign),
        "presign p50 (ms)": promtext.quantile(0.5, presign) * 1000,
        "presign p99 (ms)": promtext.quantile(0.99, presign) * 1000,
        "events consumed by the video-state agent (uploads, progress)": promtext.total(queue),
        "queue latency p50 (ms)": promtext.quantile(0.5, queue) * 1000,
        "queue latency p99 (ms)": promtext.quantile(0.99, queue) * 1000,
    }


def scrape_both(args: argparse.Namespace) -> dict[str, promtext.Scrape]:
    return {
        "api": promtext.scrape(f"{args.api}/metrics"),
        "worker": promtext.scrape(f"{args.worker}/metrics"),
    }


def run(args: argparse.Namespace) -> Path:
    wanted = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(wanted) - set(ALL)
    if unknown:
        raise SystemExit(f"unknown scenarios: {', '.join(sorted(unknown))}")
    try:
        promtext.scrape(f"{args.api}/metrics")
    except OSError as exc:
        raise SystemExit(f"nothing answers at {args.api}: start the stack first ({exc})") from exc
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    outdir = Path(args.out) / f"load-{stamp}"
    outdir.mkdir(parents=True, exist_ok=True)
    clip = make_clip(outdir / "clip.mp4", args.clip_seconds, args.clip_size)
    tokens = write_tokens(outdir / "tokens.json", "k6-user-", max(args.uploads, args.vus, 1))
    common = {"API": args.api, "TOKENS_FILE": str(tokens), "CLIP": str(clip)}
    duration = f"{int(args.seconds)}s"
    load_before = os.getloadavg()[0]
    k6_runs: list[report.K6Run] = []
    locust = None
    server: dict[str, dict[str, float]] = {}
    videos: list[str] = []
    if "transcode" in wanted:
        print(f"transcode queue (Locust): {args.submitters} submitters, a job every "
              f"{args.pace:g} s each, {duration}", flush=True)  # fmt: skip
        locust = run_locust(args, clip, outdir)
        videos = locust.ready_videos()[:20]
    if "playback" in wanted:
        print(f"playback fan-out (k6): {args.vus} viewers, {duration}", flush=True)
        env = {**common, "VUS": str(args.vus), "DURATION": duration, "SEGMENTS": str(args.segments)}
        if videos:
            env["VIDEOS"] = ",".join(videos)
        k6_runs.append(run_k6("playback_fanout", "playback_fanout.js", env, outdir, args.seconds))
    if "search" in wanted:
        print(f"search mix (k6): {args.rate} requests/s, {duration}", flush=True)
        env = {**common, "RATE": str(args.rate), "VUS": str(args.vus), "DURATION": duration}
        if videos:
            env["VIDEOS"] = ",".join(videos)
        k6_runs.append(run_k6("search_mix", "search_mix.js", env, outdir, args.seconds))
    if "upload" in wanted:
        print(f"upload flood (k6): {args.uploads} sessions, {args.vus} at once, at most "
              f"{duration}", flush=True)  # fmt: skip
        before = scrape_both(args)
        env = {**common, "UPLOADS": str(args.uploads), "VUS": str(args.vus), "DURATION": duration}
        k6_runs.append(run_k6("upload_flood", "upload_flood.js", env, outdir, args.seconds))
        time.sleep(2.0)  # the video-state agent consumes what was just produced
        server["upload flood"] = upload_server_figures(before, scrape_both(args))
    header = [
        f"# Load report {stamp}",
        "",
        f"Target API {args.api}, worker {args.worker}; scenarios {', '.join(wanted)}; "
        f"each bounded by {args.seconds:g} s; clip {args.clip_size}, {args.clip_seconds:g} s "
        f"({clip.stat().st_size} bytes). Machine: {os.cpu_count()} CPUs, load average "
        f"{load_before:.2f} at the start and {os.getloadavg()[0]:.2f} at the end "
        "(figures from a shared machine are upper bounds).",
    ]
    tokens.unlink()  # bearer tokens do not belong in a results folder
    return report.write(outdir, header, k6_runs, locust, server)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m loadtest", description=__doc__.splitlines()[0])
    p.add_argument("--api", default="http://127.0.0.1:8080", type=loopback_url)
    p.add_argument("--worker", default="http://127.0.0.1:6066", type=loopback_url)
    p.add_argument("--scenarios", default=",".join(ALL))
    p.add_argument("--seconds", type=float, default=60.0, help="bound of each scenario")
    p.add_argument("--uploads", type=int, default=100, help="upload flood sessions")
    p.add_argument("--vus", type=int, default=20, help="k6 virtual users (viewers, uploaders)")
    p.add_argument("--rate", type=int, default=50, help="search mix requests per second")
    p.add_argument("--segments", type=int, default=3, help="segments per viewer and track")
    p.add_argument("--submitters", type=int, default=4, help="Locust users submitting jobs")
    p.add_argument("--pace", type=float, default=4.0, help="seconds between one user's jobs")
    p.add_argument("--clip-seconds", type=float, default=2.0)
    p.add_argument("--clip-size", default="320x180")
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)
    args.uploads = max(1, min(args.uploads, 10_000))
    args.vus = max(1, min(args.vus, 500))
    args.rate = max(1, min(args.rate, 5_000))
    args.submitters = max(1, min(args.submitters, 50))
    args.pace = max(0.5, args.pace) if math.isfinite(args.pace) else 4.0
    args.seconds = max(5.0, min(args.seconds, 1800.0))
    path = run(args)
    print(path.read_text(encoding="utf-8"))
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
