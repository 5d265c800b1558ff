"""The seed's load scenarios as bounded asyncio loops over the public API (loopback only).

Every scenario is bounded twice: by a count (sessions, jobs, viewers, requests) and by a
deadline. Each request becomes a ``Sample`` (start offset, scenario, operation, latency,
status) that the report turns into tables and a latency-over-time plot; server-side figures
(presign and queue latency histograms, consumer lag) come from ``/metrics`` scrapes.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

import aiohttp

from loadtest import promtext


@dataclass(frozen=True)
class Sample:
    at: float  # seconds since the run started
    scenario: str
    op: str
    seconds: float
    status: int  # HTTP status, 0 for a client-side error


@dataclass
class Target:
    """Where the stack is and who we are (tokens minted per virtual user)."""

    api: str
    worker: str
    tokens: dict[str, str]
    clip: bytes
    started: float = field(default_factory=time.perf_counter)
    samples: list[Sample] = field(default_factory=list)
    figures: dict[str, dict[str, Any]] = field(default_factory=dict)
    ready_videos: list[str] = field(default_factory=list)
    lag_series: list[tuple[float, float]] = field(default_factory=list)

    def auth(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    def now(self) -> float:
        return time.perf_counter() - self.started


async def timed(
    t: Target,
    session: aiohttp.ClientSession,
    scenario: str,
    op: str,
    method: str,
    url: str,
    **kwargs: Any,
) -> tuple[int, bytes]:
    at = t.now()
    t0 = time.perf_counter()
    try:
        async with session.request(method, url, **kwargs) as resp:
            body = await resp.read()
            status = resp.status
    except (aiohttp.ClientError, TimeoutError):
        body, status = b"", 0
    t.samples.append(Sample(at, scenario, op, time.perf_counter() - t0, status))
    return status, body


# --------------------------------------------------------------------------- upload flood


async def _upload_one(
    t: Target, session: aiohttp.ClientSession, scenario: str, user: str, title: str
) -> str | None:
    """uploadURL -> POST to the object store -> completeUpload; the video id when queued."""
    body = {
        "title": title,
        "tags": ["loadtest"],
        "fileName": "clip.mp4",
        "contentType": "video/mp4",
        "sizeBytes": len(t.clip),
    }
    status, raw = await timed(
        t, session, scenario, "uploadURL", "POST", f"{t.api}/v1/videos:uploadURL",
        json=body, headers=t.auth(user),
    )  # fmt: skip
    if status != 200:
        return None
    created = _json(raw)
    form = aiohttp.FormData()
    for key, value in created["upload"]["fields"].items():
        form.add_field(key, value)
    form.add_field("file", t.clip, filename="clip.mp4", content_type="video/mp4")
    status, _ = await timed(
        t, session, scenario, "objectStorePOST", "POST", created["upload"]["url"], data=form
    )
    if status not in (200, 201, 204):
        return None
    status, _ = await timed(
        t, session, scenario, "completeUpload", "POST", f"{t.api}/v1/videos:completeUpload",
        json={"videoId": created["videoId"]},
        headers={**t.auth(user), "If-Match": f'"{created["etag"]}"'},
    )  # fmt: skip
    return str(created["videoId"]) if status == 200 else None


def _json(raw: bytes) -> dict[str, Any]:
    import json

    data: dict[str, Any] = json.loads(raw)
    return data


async def _bounded(n: int, concurrency: int, deadline: float, fn: Any) -> list[Any]:
    """Run ``fn(i)`` for i < n, at most ``concurrency`` at once, none started after deadline."""
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> Any:
        async with sem:
            if time.perf_counter() > deadline:
                return None
            return await fn(i)

    return list(await asyncio.gather(*(one(i) for i in range(n))))


async def upload_flood(
    t: Target, session: aiohttp.ClientSession, sessions: int, concurrency: int, seconds: float
) -> list[str]:
    """N concurrent upload sessions (one virtual user each); presign and queue latency."""
    before_api = await promtext.scrape(session, f"{t.api}/metrics")
    before_worker = await promtext.scrape(session, f"{t.worker}/metrics")
    deadline = time.perf_counter() + seconds
    ids = await _bounded(
        sessions,
        concurrency,
        deadline,
        lambda i: _upload_one(t, session, "upload", f"load-u{i}", f"load clip {i}"),
    )
    # Let the video-state agent consume what was just produced before the second scrape.
    await asyncio.sleep(2.0)
    after_api = await promtext.scrape(session, f"{t.api}/metrics")
    after_worker = await promtext.scrape(session, f"{t.worker}/metrics")
    presign = promtext.histogram_delta(
        before_api, after_api, "tritontube_upload_presign_duration_seconds"
    )
    # The SLO is about the upload events themselves: produced by the API, consumed by the
    # video-state agent. A transcode job's wait behind other encodes is backlog, reported by
    # the transcode scenario (lag, time to drain), so it is not mixed in here.
    queue = promtext.histogram_delta(
        before_worker,
        after_worker,
        "tritontube_stream_queue_latency_seconds",
        {"agent": "video-state"},
    )
    t.figures["upload"] = {
        "sessions started": sessions,
        "sessions queued": sum(1 for i in ids if i),
        "server presign p50 (ms)": promtext.quantile(0.5, presign) * 1000,
        "server presign p99 (ms)": promtext.quantile(0.99, presign) * 1000,
        "queue latency events (video-state agent)": promtext.total(queue),
        "queue latency p50 (ms)": promtext.quantile(0.5, queue) * 1000,
        "queue latency p99 (ms)": promtext.quantile(0.99, queue) * 1000,
    }
    return [i for i in ids if i]


# --------------------------------------------------------------------------- transcode burst


async def _lag_sampler(t: Target, session: aiohttp.ClientSession, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            s = await promtext.scrape(session, f"{t.worker}/metrics")
            lag = promtext.gauge_sum(
                s, "tritontube_stream_consumer_lag_records", {"topic": "transcode-jobs"}
            )
            t.lag_series.append((t.now(), lag))
        except (aiohttp.ClientError, TimeoutError):
            pass
        try:
            await asyncio.wait_for(stop.wait(), 1.0)
        except TimeoutError:
            continue


async def transcode_burst(
    t: Target, session: aiohttp.ClientSession, jobs: int, seconds: float
) -> None:
    """A burst of N uploads at once, then poll each until READY/FAILED; drain time."""
    before = await promtext.scrape(session, f"{t.worker}/metrics")
    stop = asyncio.Event()
    sampler = asyncio.create_task(_lag_sampler(t, session, stop))
    deadline = time.perf_counter() + seconds
    burst_at = time.perf_counter()
    try:
        ids = await _bounded(
            jobs,
            jobs,
            deadline,
            lambda i: _upload_one(t, session, "transcode", f"load-t{i}", f"burst clip {i}"),
        )
        queued = [(i, vid) for i, vid in enumerate(ids) if vid]
        done: dict[str, tuple[str, float]] = {}
        while len(done) < len(queued) and time.perf_counter() < deadline:
            for i, vid in queued:
                if vid in done:
                    continue
                status, raw = await timed(
                    t, session, "transcode", "transcodeStatus", "GET",
                    f"{t.api}/v1/videos/{vid}/transcodeStatus", headers=t.auth(f"load-t{i}"),
                )  # fmt: skip
                if status == 200 and _json(raw)["status"] in ("READY", "FAILED"):
                    done[vid] = (_json(raw)["status"], time.perf_counter() - burst_at)
            await asyncio.sleep(1.0)
    finally:
        stop.set()
        await sampler
    after = await promtext.scrape(session, f"{t.worker}/metrics")
    encode = promtext.histogram_delta(before, after, "tritontube_transcode_duration_seconds")
    ready = [d for s, d in done.values() if s == "READY"]
    t.ready_videos += [vid for vid, (s, _) in done.items() if s == "READY"]
    t.figures["transcode"] = {
        "jobs submitted": jobs,
        "jobs queued": len(queued),
        "READY": len(ready),
        "FAILED": sum(1 for s, _ in done.values() if s == "FAILED"),
        "unfinished at deadline": len(queued) - len(done),
        "time to drain (s)": max(ready, default=float("nan")),
        "encode time p50 (s, server)": promtext.quantile(0.5, encode),
        "encode time p99 (s, server)": promtext.quantile(0.99, encode),
        "peak transcode-jobs lag (records)": max((v for _, v in t.lag_series), default=0.0),
    }


# --------------------------------------------------------------------------- playback


_TOKEN = re.compile(r"\$(RepresentationID|Number|Bandwidth|Time)(%0(\d+)d)?\$")


def segment_urls(manifest_url: str, mpd: bytes, per_representation: int) -> list[str]:
    """Init + the first segments of the lowest-bandwidth representation of each adaptation set."""
    root = ET.fromstring(mpd)  # noqa: S314 - our own manifest from our own server
    ns = {"d": root.tag.split("}")[0].strip("{")} if root.tag.startswith("{") else {}
    q = "d:" if ns else ""
    urls = []
    for aset in root.iter(f"{{{ns['d']}}}AdaptationSet" if ns else "AdaptationSet"):
        reps = aset.findall(f"{q}Representation", ns)
        if not reps:
            continue
        rep = min(reps, key=lambda r: int(r.get("bandwidth", "0")))
        tmpl = rep.find(f"{q}SegmentTemplate", ns)
        if tmpl is None:  # (an Element without children is falsy: no `or` here)
            tmpl = aset.find(f"{q}SegmentTemplate", ns)
        if tmpl is None:
            continue
        start = int(tmpl.get("startNumber", "1"))

        def fill(pattern: str, number: int, rep: ET.Element = rep) -> str:
            def sub(m: re.Match[str]) -> str:
                value = {"RepresentationID": rep.get("id", ""), "Number": str(number)}.get(
                    m.group(1), rep.get("bandwidth", "")
                )
                return value.zfill(int(m.group(3))) if m.group(3) else value

            return urljoin(manifest_url, _TOKEN.sub(sub, pattern))

        if tmpl.get("initialization"):
            urls.append(fill(tmpl.get("initialization", ""), start))
        count = per_representation
        timeline = tmpl.find(f"{q}SegmentTimeline", ns)
        if timeline is not None:  # never ask for segments past the end of the video
            available = sum(1 + int(e.get("r", "0")) for e in timeline.findall(f"{q}S", ns))
            count = min(count, available)
        for n in range(start, start + count):
            urls.append(fill(tmpl.get("media", ""), n))
    return urls


async def playback_fanout(
    t: Target,
    session: aiohttp.ClientSession,
    viewers: int,
    concurrency: int,
    segments: int,
    seconds: float,
) -> None:
    """V viewers at once: playbackInfo -> manifest -> init + first segments."""
    if not t.ready_videos:
        t.figures["playback"] = {"skipped": "no READY video (run the transcode scenario first)"}
        return
    deadline = time.perf_counter() + seconds

    async def viewer(i: int) -> None:
        vid = t.ready_videos[i % len(t.ready_videos)]
        owner = next(u for u in t.tokens if u.startswith("load-t"))
        status, raw = await timed(
            t, session, "playback", "playbackInfo", "GET",
            f"{t.api}/v1/videos/{vid}/playbackInfo", headers=t.auth(owner),
        )  # fmt: skip
        if status != 200:
            return
        manifest = _json(raw)["manifestUrl"]
        status, mpd = await timed(t, session, "playback", "manifest", "GET", manifest)
        if status != 200:
            return
        for url in segment_urls(manifest, mpd, segments):
            if time.perf_counter() > deadline:
                return
            await timed(t, session, "playback", "segment", "GET", url)

    await _bounded(viewers, concurrency, deadline, viewer)


# --------------------------------------------------------------------------- search mix


async def search_mix(
    t: Target,
    session: aiohttp.ClientSession,
    requests: int,
    concurrency: int,
    seconds: float,
    seed: int = 8,
) -> None:
    """80 % searches (words of the uploaded titles), 20 % recommendations."""
    rng = random.Random(seed)  # noqa: S311 - a load mix, not security
    words = ["load", "clip", "burst", "zebra", "street", "loadtest", "nothing-matches"]
    users = sorted(t.tokens)
    deadline = time.perf_counter() + seconds

    async def one(i: int) -> None:
        user = users[i % len(users)]
        if rng.random() < 0.8:
            params = {"q": rng.choice(words), "pageSize": "20"}
            await timed(
                t, session, "search", "search", "GET", f"{t.api}/v1/videos:search",
                params=params, headers=t.auth(user),
            )  # fmt: skip
        else:
            params = {}
            if t.ready_videos:
                params["videoId"] = rng.choice(t.ready_videos)
            await timed(
                t, session, "search", "recommendations", "GET",
                f"{t.api}/v1/videos:recommendations", params=params, headers=t.auth(user),
            )  # fmt: skip

    await _bounded(requests, concurrency, deadline, one)
