"""Locust: transcode-queue throughput and the queue-depth -> autoscaling signal.

Each simulated user submits a transcode job at a steady pace (``LOAD_PACE`` seconds per job,
whether or not earlier jobs are done: an open workload, so the queue grows when jobs arrive
faster than the workers encode): ``uploadURL`` -> the clip to the object store ->
``completeUpload``. A tracker follows every submitted video until READY/FAILED and reports
the time from ``completeUpload`` to READY as the request ``JOB upload->READY`` (so Locust's
own statistics, CSV and HTML report carry the pipeline's throughput and latency next to the
HTTP calls). A sampler reads the worker's ``/metrics`` every ``LOAD_SAMPLE_SECONDS``: the
``transcode-jobs`` consumer lag (the autoscaling signal of docs/observability.md), the
assigned partitions and the replica count a KEDA/HPA rule with target ``LOAD_LAG_TARGET``
would ask for, written to ``<LOAD_OUT>/autoscaling.csv``.

Run by ``python -m loadtest`` (``make load``); by hand:

    LOAD_API=http://127.0.0.1:8080 LOAD_WORKER=http://127.0.0.1:6066 LOAD_CLIP=clip.mp4 \\
    LOAD_OUT=out locust -f loadtest/locustfile.py --headless -u 2 -r 2 -t 60s \\
        --host http://127.0.0.1:8080 --csv out/transcode --html out/transcode.html

Loopback targets only. Tokens are minted with the stack's secret (``tritontube token create``'s
rules: ``TRITONTUBE_AUTH__SECRET``, or the dev stack's own under ``TRITONTUBE_DATA_DIR``).
"""

from __future__ import annotations

import csv
import itertools
import math
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gevent
import requests
from locust import HttpUser, constant_pacing, events, task
from locust.env import Environment

from loadtest.autoscale import desired_replicas
from loadtest.promtext import gauge_sum, parse
from loadtest.targets import loopback_url
from tritontube.cli import token_settings
from tritontube.http.auth import mint_token
from tritontube.settings import Settings

API = loopback_url(os.environ.get("LOAD_API", "http://127.0.0.1:8080"))
WORKER = loopback_url(os.environ.get("LOAD_WORKER", "http://127.0.0.1:6066"))
CLIP = Path(os.environ.get("LOAD_CLIP", "clip.mp4"))
OUT = Path(os.environ.get("LOAD_OUT", "."))
PACE = float(os.environ.get("LOAD_PACE", "4"))
LAG_TARGET = float(os.environ.get("LOAD_LAG_TARGET", "2"))
SAMPLE_SECONDS = float(os.environ.get("LOAD_SAMPLE_SECONDS", "2"))
JOB_TIMEOUT = float(os.environ.get("LOAD_JOB_TIMEOUT", "180"))
# Jobs are submitted for this long after the start; the rest of Locust's --run-time follows
# the queued ones to READY, so every job's event lands inside the run (and its statistics).
SUBMIT_SECONDS = float(os.environ.get("LOAD_SUBMIT_SECONDS", "1e9"))
LAG = "tritontube_stream_consumer_lag_records"

_AUTH = token_settings(Settings()).auth
_users = itertools.count()


@dataclass
class Job:
    video_id: str
    token: str
    queued_at: float  # monotonic time of the completeUpload answer


class Tracker:
    """Every submitted job until it ends; READY/FAILED become Locust request events."""

    def __init__(self) -> None:
        self.pending: list[Job] = []
        self.ready: list[str] = []
        self.failed = 0
        self.submit_until = math.inf
        self.lock = threading.Lock()

    def add(self, job: Job) -> None:
        with self.lock:
            self.pending.append(job)

    def poll(self, env: Environment, session: requests.Session) -> None:
        with self.lock:
            jobs = list(self.pending)
        for job in jobs:
            outcome = self._status(session, job)
            if outcome is None:
                continue
            elapsed_ms = (time.monotonic() - job.queued_at) * 1000
            error = None if outcome == "READY" else RuntimeError(outcome)
            env.events.request.fire(
                request_type="JOB",
                name="upload->READY",
                response_time=elapsed_ms,
                response_length=0,
                exception=error,
                context={},
            )
            with self.lock:
                self.pending.remove(job)
                if outcome == "READY":
                    self.ready.append(job.video_id)
                else:
                    self.failed += 1

    @staticmethod
    def _status(session: requests.Session, job: Job) -> str | None:
        if time.monotonic() - job.queued_at > JOB_TIMEOUT:
            return "TIMEOUT"
        try:
            resp = session.get(
                f"{API}/v1/videos/{job.video_id}/transcodeStatus",
                headers={"Authorization": f"Bearer {job.token}"},
                timeout=10,
            )
        except requests.RequestException:
            return None
        if resp.status_code != 200:
            return None
        status = resp.json().get("status")
        return status if status in ("READY", "FAILED") else None


TRACKER = Tracker()


def _sample_loop(env: Environment, started: float) -> None:
    session = requests.Session()
    OUT.mkdir(parents=True, exist_ok=True)
    with (OUT / "autoscaling.csv").open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(
            [
                "at_s",
                "transcode_jobs_lag",
                "transcode_jobs_partitions",
                "desired_replicas",
                "pending",
            ]
        )
        while True:
            TRACKER.poll(env, session)
            try:
                text = session.get(f"{WORKER}/metrics", timeout=5).text
            except requests.RequestException:
                gevent.sleep(SAMPLE_SECONDS)
                continue
            scrape = parse(text)
            lag = gauge_sum(scrape, LAG, {"topic": "transcode-jobs"})
            # One lag series per transcode-jobs partition assigned to this worker.
            partitions = sum(
                1 for labels in scrape.get(LAG, {}) if dict(labels).get("topic") == "transcode-jobs"
            )
            out.writerow(
                [
                    f"{time.monotonic() - started:.2f}",
                    int(lag),
                    partitions,
                    desired_replicas(lag, partitions, LAG_TARGET),
                    len(TRACKER.pending),
                ]
            )
            fh.flush()
            gevent.sleep(SAMPLE_SECONDS)


@events.test_start.add_listener
def _start_sampler(environment: Environment, **_: Any) -> None:
    if not CLIP.is_file():
        raise SystemExit(f"LOAD_CLIP={CLIP} is not a file")
    TRACKER.submit_until = time.monotonic() + SUBMIT_SECONDS
    environment.sampler = gevent.spawn(_sample_loop, environment, time.monotonic())  # type: ignore[attr-defined]


@events.test_stop.add_listener
def _stop_sampler(environment: Environment, **_: Any) -> None:
    sampler = getattr(environment, "sampler", None)
    if sampler is not None:
        sampler.kill()
    with (OUT / "ready-videos.txt").open("w", encoding="utf-8") as fh:
        fh.write("\n".join(TRACKER.ready) + ("\n" if TRACKER.ready else ""))
    with (OUT / "jobs.csv").open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["ready", "failed", "unfinished"])
        out.writerow([len(TRACKER.ready), TRACKER.failed, len(TRACKER.pending)])


class TranscodeSubmitter(HttpUser):
    """Submits one transcode job every PACE seconds, as a new user each time (the per-user
    upload rate limit would otherwise decide the pace)."""

    host = API
    wait_time = constant_pacing(PACE)

    def on_start(self) -> None:
        self.clip = CLIP.read_bytes()

    @task
    def submit(self) -> None:
        if time.monotonic() > TRACKER.submit_until:
            return  # the drain: queued jobs are still followed to READY
        token = mint_token(_AUTH, f"locust-{next(_users)}")
        auth = {"Authorization": f"Bearer {token}"}
        created = self.client.post(
            "/v1/videos:uploadURL",
            json={
                "title": "locust transcode load",
                "tags": ["loadtest"],
                "fileName": "clip.mp4",
                "contentType": "video/mp4",
                "sizeBytes": len(self.clip),
            },
            headers=auth,
            name="uploadURL",
        )
        if created.status_code != 200:
            return
        session = created.json()
        stored = self.client.post(
            loopback_url(session["upload"]["url"]),
            data=session["upload"]["fields"],
            files={"file": ("clip.mp4", self.clip, "video/mp4")},  # requests puts files last
            name="objectStorePOST",
        )
        if not 200 <= stored.status_code < 300:
            return
        done = self.client.post(
            "/v1/videos:completeUpload",
            json={"videoId": session["videoId"]},
            headers={**auth, "If-Match": f'"{session["etag"]}"'},
            name="completeUpload",
        )
        if done.status_code == 200:
            TRACKER.add(Job(session["videoId"], token, time.monotonic()))
