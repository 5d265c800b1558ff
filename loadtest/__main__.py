"""``python -m loadtest`` (``make load``): the seed's load scenarios against a running stack.

    make dev                                   # in another terminal
    make load                                  # or:
    python -m loadtest --api http://127.0.0.1:8080 --worker http://127.0.0.1:6066 \\
        --scenarios upload,transcode,playback,search --uploads 50

Loopback only: any other host is refused. Every scenario is bounded by a count and by
``--seconds``. Tokens are minted with the stack's signing secret from the usual settings
(``TRITONTUBE_AUTH__SECRET``; the development default matches ``make dev``). The report
(Markdown table, ``latency.png``, ``samples.csv``) goes to
``benchmarks/results/load-<UTC time>/``.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
from benchmarks.common import FFMPEG

from loadtest import report, scenarios
from tritontube.cli import token_settings
from tritontube.http.auth import mint_token
from tritontube.settings import Settings

RESULTS = Path(__file__).resolve().parent.parent / "benchmarks" / "results"
ALL = ("upload", "transcode", "playback", "search")


def loopback_url(url: str) -> str:
    """``url`` without a trailing slash; refuses anything that is not a loopback address."""
    host = urlsplit(url).hostname or ""
    ok = host == "localhost"
    if not ok:
        try:
            ok = ipaddress.ip_address(host).is_loopback
        except ValueError:
            ok = False
    if not ok:
        raise SystemExit(f"refusing to load {url!r}: only loopback targets are allowed")
    return url.rstrip("/")


def make_clip(seconds: float, size: str) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clip.mp4"
        subprocess.run(
            [FFMPEG, "-v", "error", "-f", "lavfi",
             "-i", f"testsrc2=size={size}:rate=25:duration={seconds}",
             "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
             "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
             "-c:a", "aac", "-shortest", "-y", str(path)],
            check=True, timeout=120,
        )  # fmt: skip
        return path.read_bytes()


async def run(args: argparse.Namespace) -> Path:
    settings = token_settings(Settings())  # the dev stack's own secret, as `token create`
    wanted = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(wanted) - set(ALL)
    if unknown:
        raise SystemExit(f"unknown scenarios: {', '.join(sorted(unknown))}")
    users = [f"load-u{i}" for i in range(args.uploads)] + [f"load-t{i}" for i in range(args.jobs)]
    tokens = {u: mint_token(settings.auth, u) for u in users or ["load-u0"]}
    clip = make_clip(args.clip_seconds, args.clip_size)
    t = scenarios.Target(api=args.api, worker=args.worker, tokens=tokens, clip=clip)
    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=max(args.concurrency, 8))
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        async with session.get(f"{args.api}/readyz") as resp:
            if resp.status != 200:
                raise SystemExit(f"{args.api}/readyz answered {resp.status}: start the stack first")
        if "upload" in wanted:
            print(f"upload flood: {args.uploads} sessions, {args.concurrency} at once", flush=True)
            await scenarios.upload_flood(t, session, args.uploads, args.concurrency, args.seconds)
        if "transcode" in wanted:
            print(f"transcode burst: {args.jobs} jobs", flush=True)
            await scenarios.transcode_burst(t, session, args.jobs, max(args.seconds, 120.0))
        if "playback" in wanted:
            print(f"playback fan-out: {args.viewers} viewers", flush=True)
            await scenarios.playback_fanout(
                t, session, args.viewers, args.concurrency, args.segments, args.seconds
            )
        if "search" in wanted:
            print(f"search/recommendation mix: {args.requests} requests", flush=True)
            await scenarios.search_mix(t, session, args.requests, args.concurrency, args.seconds)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    header = [
        f"# Load report {stamp}",
        "",
        f"Target API {args.api}, worker {args.worker}; scenarios {', '.join(wanted)}; "
        f"uploads {args.uploads}, jobs {args.jobs}, viewers {args.viewers}, "
        f"requests {args.requests}, concurrency {args.concurrency}, bound {args.seconds:g} s "
        f"per scenario; clip {args.clip_size} {args.clip_seconds:g} s ({len(clip)} bytes).",
    ]
    return report.write(t, Path(args.out) / f"load-{stamp}", header)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m loadtest", description=__doc__.splitlines()[0])
    p.add_argument("--api", default="http://127.0.0.1:8080", type=loopback_url)
    p.add_argument("--worker", default="http://127.0.0.1:6066", type=loopback_url)
    p.add_argument("--scenarios", default=",".join(ALL))
    p.add_argument("--uploads", type=int, default=50, help="upload flood sessions")
    p.add_argument("--jobs", type=int, default=6, help="transcode burst size")
    p.add_argument("--viewers", type=int, default=50, help="playback fan-out viewers")
    p.add_argument("--segments", type=int, default=3, help="segments per viewer and track")
    p.add_argument("--requests", type=int, default=500, help="search/recommendation requests")
    p.add_argument("--concurrency", type=int, default=20)
    p.add_argument("--seconds", type=float, default=60.0, help="bound of each scenario")
    p.add_argument("--clip-seconds", type=float, default=8.0)
    p.add_argument("--clip-size", default="640x360")
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)
    for name in ("uploads", "jobs", "viewers", "requests"):
        setattr(args, name, max(0, min(getattr(args, name), 10_000)))
    args.concurrency = max(1, min(args.concurrency, 200))
    args.seconds = max(1.0, min(args.seconds, 1800.0))
    path = asyncio.run(run(args))
    print(path.read_text(encoding="utf-8"))
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
