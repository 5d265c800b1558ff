"""`tritontube dev` (what `make dev` runs): ready on loopback, then clean on SIGINT/SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tritontube.devstack.process import free_port, port_open

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def _env(tmp_path: Path) -> tuple[dict[str, str], dict[str, int]]:
    ports = {name: free_port() for name in ("http", "broker", "s3", "worker")}
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRITONTUBE_")}
    env.update(
        {
            "TRITONTUBE_HTTP__PORT": str(ports["http"]),
            "TRITONTUBE_HTTP__WORKER_URL": f"http://127.0.0.1:{ports['worker']}",
            "TRITONTUBE_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{ports['broker']}",
            "TRITONTUBE_S3__ENDPOINT_URL": f"http://127.0.0.1:{ports['s3']}",
            "TRITONTUBE_WORKER__WEB_PORT": str(ports["worker"]),
            "TRITONTUBE_WORKER__DATA_DIR": str(tmp_path / "worker"),
            "TRITONTUBE_SEARCH__PATH": str(tmp_path / "search"),
            "TRITONTUBE_DATA_DIR": str(tmp_path / "data"),
        }
    )
    return env, ports


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_dev_starts_ready_and_stops_every_child(tmp_path: Path, stop_signal: int) -> None:
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
