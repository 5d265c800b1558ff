"""`tritontube dev` (what `make dev` runs): ready on loopback, restarts a child killed from
outside (the worker; the broker and the object store, which keep their data), then clean on
SIGINT/SIGTERM; started again on the same folders it has every video, upload and event."""

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
from typing import IO, Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from helpers import ffmpeg
from tritontube.devstack.process import free_port, port_open
from tritontube.http.auth import mint_token
from tritontube.settings import SHIPPED_AUTH_SECRET, AuthSettings
from tritontube.v1 import web_pb2, web_pb2_grpc

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(400)]


def _env(tmp_path: Path) -> tuple[dict[str, str], dict[str, int]]:
    ports = {name: free_port() for name in ("http", "broker", "s3", "worker", "archiver", "grpc")}
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRITONTUBE_")}
    env.update(
        {
            "TRITONTUBE_HTTP__PORT": str(ports["http"]),
            "TRITONTUBE_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{ports['broker']}",
            "TRITONTUBE_S3__ENDPOINT_URL": f"http://127.0.0.1:{ports['s3']}",
            "TRITONTUBE_WORKER__WEB_PORT": str(ports["worker"]),
            "TRITONTUBE_ARCHIVE__WEB_PORT": str(ports["archiver"]),
            "TRITONTUBE_GRPC__PORT": str(ports["grpc"]),
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
        with exc:
            return dict(json.load(exc))
    except OSError:
        return {"ready": False}


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


def status_with(url: str, token: str) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310 - loopback
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code


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


class Dev:
    """One `tritontube dev` child: started, read until ready, always ended."""

    def __init__(self, env: dict[str, str], ports: dict[str, int]) -> None:
        self.ports = ports
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tritontube.cli", "dev"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        assert self.proc.stdout is not None
        self.stdout = self.proc.stdout

    def wait_ready(self) -> str:
        """Until the stack says it is ready; the demo token it printed."""
        read_until(self.stdout, "Press Ctrl-C to stop.", self.lines, timeout=120)
        output = "".join(self.lines)
        assert f"http://127.0.0.1:{self.ports['http']}" in output, output
        token = self.lines[-2].strip()
        assert token.count(".") == 2, output  # the printed demo token is a JWT
        body = readyz(self.ports["http"])
        assert body["ready"] is True, body
        assert set(body["checks"]) == {"broker", "objectStore", "search", "worker"}  # type: ignore[arg-type]
        return token

    def kill_child(self, victim: str, marker: str) -> None:
        """kill -9 from outside, as a user injecting a fault would: the stack brings it back."""
        killed = child_pid(self.proc.pid, marker)
        os.kill(killed, signal.SIGKILL)
        read_until(self.stdout, f"{victim} restarted", self.lines, timeout=120)
        assert child_pid(self.proc.pid, marker) != killed
        deadline = time.monotonic() + 90
        while (body := readyz(self.ports["http"])).get("ready") is not True:
            assert time.monotonic() < deadline, f"not ready after the {victim} restart: {body}"
            time.sleep(0.5)
        assert self.proc.poll() is None, "".join(self.lines)

    def stop(self, stop_signal: int) -> None:
        self.proc.send_signal(stop_signal)
        assert self.proc.wait(timeout=60) == 0, "".join(self.lines)

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.stdout.close()
        for name, port in self.ports.items():
            assert not port_open("127.0.0.1", port), f"{name} still listening on {port}"


def test_dev_starts_ready_survives_a_worker_kill_and_stops_every_child(tmp_path: Path) -> None:
    env, ports = _env(tmp_path)
    dev = Dev(env, ports)
    try:
        token = dev.wait_ready()
        # The stack signs with its own secret (kept in the data dir), not the public placeholder.
        search = f"http://127.0.0.1:{ports['http']}/v1/videos:search"
        assert status_with(search, token) == 200
        forged = mint_token(AuthSettings(secret=SHIPPED_AUTH_SECRET), "demo")
        assert status_with(search, forged) == 401
        assert (tmp_path / "data" / "auth-secret").stat().st_mode & 0o777 == 0o600
        # The gRPC API runs beside it: healthy, the same token, the same refusal.
        assert f"gRPC API: 127.0.0.1:{ports['grpc']}" in "".join(dev.lines)
        assert grpc_calls(ports["grpc"], token, forged) == ("SERVING", "OK", "UNAUTHENTICATED")
        dev.kill_child("worker", "tritontube.cli worker")
        dev.stop(signal.SIGINT)
    finally:
        dev.close()


def call(
    port: int, token: str, path: str, body: dict[str, object] | None = None, **headers: str
) -> tuple[int, dict[str, Any]]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=data,
        method="GET" if body is None else "POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310
            return resp.status, dict(json.load(resp))
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(json.load(exc))


def post_form(upload: dict[str, Any], data: bytes) -> int:
    """The browser's form POST to the object store (policy fields, then the file)."""
    boundary = "----tritontube-e2e"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in upload["fields"].items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="c.mp4"\r\n'
        "Content-Type: video/mp4\r\n\r\n".encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(  # noqa: S310 - the stack's loopback object store
        upload["url"],
        data=b"".join(parts),
        method="POST",
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310
        return int(resp.status)


def session(port: int, token: str, title: str, size: int) -> dict[str, Any]:
    body = {"title": title, "fileName": "c.mp4", "contentType": "video/mp4", "sizeBytes": size}
    status, answer = call(port, token, "/v1/videos:uploadURL", body)
    assert status == 200, answer
    return answer


def complete(port: int, token: str, started: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return call(
        port,
        token,
        "/v1/videos:completeUpload",
        {"videoId": started["videoId"]},
        **{"If-Match": f'"{started["etag"]}"'},
    )


def wait_status(port: int, token: str, video_id: str, wanted: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status, body = call(port, token, f"/v1/videos/{video_id}/transcodeStatus")
        if status == 200 and body["status"] == wanted:
            return
        time.sleep(0.5)
    raise AssertionError(f"{video_id} never {wanted}: {body}")


def test_dev_survives_broker_and_store_kills_and_a_restart_keeps_everything(
    tmp_path: Path,
) -> None:
    """kill -9 of the broker, then of the object store, under `make dev`; then SIGTERM and a
    second `make dev` on the same folders: the READY video plays and is found, the pending
    session completes, the archive restore is not needed (it is off) and nothing is lost."""
    env, ports = _env(tmp_path)
    clip = tmp_path / "clip.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10:duration=1",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(clip))  # fmt: skip
    data = clip.read_bytes()
    http = ports["http"]
    dev = Dev(env, ports)
    try:
        token = dev.wait_ready()
        ready = session(http, token, "Zebra crossing at dusk", len(data))
        assert post_form(ready["upload"], data) == 204
        assert complete(http, token, ready)[0] == 200
        wait_status(http, token, ready["videoId"], "READY")
        pending = session(http, token, "Still uploading", len(data))
        dev.kill_child("broker", "tansu")
        late = session(http, token, "After the broker", len(data))
        dev.kill_child("objectstore", "weed mini")
        assert post_form(late["upload"], data) == 204
        assert complete(http, token, late)[0] == 200
        dev.stop(signal.SIGTERM)
    finally:
        dev.close()

    again = Dev(env, ports)
    try:
        token = again.wait_ready()
        assert "restored" not in "".join(again.lines)
        status, mine = call(http, token, "/v1/videos?owner=me")
        assert status == 200, mine
        listed = {v["videoId"]: v["status"] for v in mine["videos"]}
        assert listed[ready["videoId"]] == "READY", listed
        assert listed[pending["videoId"]] == "UPLOAD_PENDING", listed
        assert listed[late["videoId"]] in {"PENDING_TRANSCODE", "TRANSCODING", "READY"}, listed
        status, info = call(http, token, f"/v1/videos/{ready['videoId']}/playbackInfo")
        assert status == 200, info
        with urllib.request.urlopen(info["manifestUrl"], timeout=10) as resp:  # noqa: S310
            assert b"<MPD" in resp.read()
        status, found = call(http, token, "/v1/videos:search?q=zebra")
        assert [hit["videoId"] for hit in found["results"]] == [ready["videoId"]], found
        # The session acknowledged before the restart still completes.
        assert post_form(pending["upload"], data) == 204
        status, done = complete(http, token, pending)
        assert (status, done["status"]) == (200, "PENDING_TRANSCODE"), done
        again.stop(signal.SIGINT)
    finally:
        again.close()
