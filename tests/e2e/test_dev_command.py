"""`tritontube dev` (what `make dev` runs): ready on loopback, restarts a child killed from
outside (the worker; the broker, refilled from the archive), then clean on SIGINT/SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tritontube.devstack.process import free_port, port_open
from tritontube.http.auth import mint_token
from tritontube.settings import SHIPPED_AUTH_SECRET, AuthSettings
from tritontube.v1 import web_pb2, web_pb2_grpc

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def _env(tmp_path: Path) -> tuple[dict[str, str], dict[str, int]]:
    ports = {name: free_port() for name in ("http", "broker", "s3", "worker", "grpc", "archive")}
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRITONTUBE_")}
    env.update(
        {
            "TRITONTUBE_HTTP__PORT": str(ports["http"]),
            "TRITONTUBE_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{ports['broker']}",
            "TRITONTUBE_S3__ENDPOINT_URL": f"http://127.0.0.1:{ports['s3']}",
            "TRITONTUBE_WORKER__WEB_PORT": str(ports["worker"]),
            "TRITONTUBE_GRPC__PORT": str(ports["grpc"]),
            # Every port its own: a default one (6070) may be another stack's on a busy machine.
            "TRITONTUBE_ARCHIVE__WEB_PORT": str(ports["archive"]),
            "TRITONTUBE_WORKER__DATA_DIR": str(tmp_path / "worker"),
            "TRITONTUBE_SEARCH__PATH": str(tmp_path / "search"),
            "TRITONTUBE_DATA_DIR": str(tmp_path / "data"),
        }
    )
    return env, ports


def child_pid(parent: int, marker: str) -> int:
    """The pid of ``parent``'s child whose command line contains ``marker``."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent and marker in cmdline:
            return int(entry.name)
    raise AssertionError(f"no child of {parent} runs {marker!r}")


def readyz(port: int) -> dict[str, object]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=10) as resp:
            return dict(json.load(resp))
    except urllib.error.HTTPError as exc:
        return dict(json.load(exc))
    except OSError:
        return {"ready": False}


def status_with(url: str, token: str) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310 - loopback
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def grpc_calls(port: int, token: str, forged: str) -> tuple[str, str, str]:
    """Health, then SearchVideos with ``token`` and with ``forged``: the status names."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        check = health_pb2.HealthCheckRequest(service="tritontube.v1.Web")
        deadline = time.monotonic() + 20  # its first readiness check may still be running
        while True:
            health = health_pb2_grpc.HealthStub(channel).Check(check, timeout=10)
            if health.status == health_pb2.HealthCheckResponse.SERVING:
                break
            assert time.monotonic() < deadline, "gRPC health never SERVING"
            time.sleep(0.2)
        stub = web_pb2_grpc.WebStub(channel)
        codes = []
        for bearer in (token, forged):
            try:
                stub.SearchVideos(
                    web_pb2.SearchVideosRequest(q="x"),
                    metadata=(("authorization", f"Bearer {bearer}"),),
                    timeout=10,
                )
                codes.append("OK")
            except grpc.RpcError as exc:
                codes.append(exc.code().name)
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(health.status)
    return status, codes[0], codes[1]


def read_until(stdout: IO[str], text: str, lines: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = stdout.readline()
        if not line:
            break
        lines.append(line)
        if text in line:
            return
    raise AssertionError(f"{text!r} never printed:\n{''.join(lines)}")


@pytest.mark.parametrize(
    ("stop_signal", "victim", "marker"),
    [(signal.SIGINT, "worker", "tritontube.cli worker"), (signal.SIGTERM, "broker", "tansu")],
    ids=["SIGINT-kill-worker", "SIGTERM-kill-broker"],
)
def test_dev_starts_ready_survives_a_kill_and_stops_every_child(
    tmp_path: Path, stop_signal: int, victim: str, marker: str
) -> None:
    env, ports = _env(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tritontube.cli", "dev"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Press Ctrl-C to stop." in line:
                break
        output = "".join(lines)
        assert f"http://127.0.0.1:{ports['http']}" in output, output
        token = lines[-2].strip()
        assert token.count(".") == 2, output  # the printed demo token is a JWT
        url = f"http://127.0.0.1:{ports['http']}/readyz"
        with urllib.request.urlopen(url, timeout=10) as resp:
            body = json.load(resp)
        assert body["ready"] is True
        assert set(body["checks"]) == {"broker", "objectStore", "search", "worker"}
        # The stack signs with its own secret (kept in the data dir), not the public placeholder.
        search = f"http://127.0.0.1:{ports['http']}/v1/videos:search"
        assert status_with(search, token) == 200
        forged = mint_token(AuthSettings(secret=SHIPPED_AUTH_SECRET), "demo")
        assert status_with(search, forged) == 401
        assert (tmp_path / "data" / "auth-secret").stat().st_mode & 0o777 == 0o600
        # The gRPC API runs beside it: healthy, the same token, the same refusal.
        assert f"gRPC API: 127.0.0.1:{ports['grpc']}" in output, output
        assert grpc_calls(ports["grpc"], token, forged) == ("SERVING", "OK", "UNAUTHENTICATED")

        # kill -9 from outside, as a user injecting a fault would: the stack brings it back.
        killed = child_pid(proc.pid, marker)
        os.kill(killed, signal.SIGKILL)
        read_until(proc.stdout, f"{victim} restarted", lines, timeout=120)
        assert child_pid(proc.pid, marker) != killed
        deadline = time.monotonic() + 90
        while (body := readyz(ports["http"])).get("ready") is not True:
            assert time.monotonic() < deadline, f"not ready after the {victim} restart: {body}"
            time.sleep(0.5)
        assert proc.poll() is None, "".join(lines)
        proc.send_signal(stop_signal)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    for name, port in ports.items():
        assert not port_open("127.0.0.1", port), f"{name} still listening on {port}"
