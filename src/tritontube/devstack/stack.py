"""The embedded stack: object store, broker, search directory, worker and API on loopback.

``tritontube dev`` (``make dev``) runs it in the foreground until SIGINT/SIGTERM; the test suite
starts the same stack on free ports. Every child runs in its own process group and is stopped
(SIGTERM, then SIGKILL) whatever happens.

``tritontube dev`` also supervises its children, as systemd or Kubernetes would in production:
a child that dies is started again, so faults can be injected from outside (``kill -9`` the
object store, the broker, the worker, the API) and their recovery watched. The broker keeps its
log in the object store (Tansu's ``s3://`` engine on SeaweedFS): what it acknowledged survives
its death and the store's, and a restarted ``make dev`` finds every event again. A child that
dies :data:`RESTART_LIMIT` times within :data:`RESTART_WINDOW_SECONDS` stops the stack instead.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr

from tritontube.devstack.broker import s3_storage, tansu_process
from tritontube.devstack.process import ManagedProcess, ProcessFailedError, free_port, port_open
from tritontube.devstack.seaweedfs import (
    BROKER_BUCKET,
    Credentials,
    SeaweedFSServer,
    with_keys,
)
from tritontube.replay.restore import restore_from_archive
from tritontube.settings import S3Settings, Settings
from tritontube.storage.s3 import S3ObjectStore
from tritontube.streams.admin import ensure_topics

log = logging.getLogger(__name__)

RESTART_LIMIT = 5
RESTART_WINDOW_SECONDS = 120.0


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a child process build exactly these settings."""
    env: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}__{key.upper()}" if prefix else key.upper(), inner)
            return
        if isinstance(value, SecretStr):
            env[f"TRITONTUBE_{prefix}"] = value.get_secret_value()
        elif value is None:
            return
        elif isinstance(value, bool):
            env[f"TRITONTUBE_{prefix}"] = "true" if value else "false"
        elif isinstance(value, list | tuple):
            env[f"TRITONTUBE_{prefix}"] = json.dumps([str(v) for v in value])
        else:
            env[f"TRITONTUBE_{prefix}"] = str(value)

    walk("", settings.model_dump())
    return env


def explicit_credentials(s3: S3Settings) -> Credentials | None:
    """The app's keys when the settings name them, else None (the store's own are used)."""
    if s3.access_key_id is None or s3.secret_access_key is None:
        return None
    return Credentials(s3.access_key_id, s3.secret_access_key.get_secret_value())


def store_settings(settings: Settings, store: SeaweedFSServer) -> Settings:
    """``settings`` with the embedded store's app keys when they name none themselves."""
    if explicit_credentials(settings.s3) is not None:
        return settings
    return with_keys(settings, store.credentials["app"])


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url if "://" in url else f"tcp://{url}")
    if parts.hostname is None or parts.port is None:
        raise ValueError(f"need host:port in {url!r}")
    return parts.hostname, parts.port


def worker_settings(settings: Settings, index: int, port: int) -> Settings:
    """The settings of worker ``index`` (0-based) of a stack: its own web port and data
    directory; everything else, the group included, shared."""
    base = settings.worker.data_dir
    data_dir = base if index == 0 else base.with_name(f"{base.name}-{index + 1}")
    worker = settings.worker.model_copy(
        update={"web_port": port, "data_dir": data_dir, "advertised_url": None}
    )
    return settings.model_copy(update={"worker": worker})


def worker_name(index: int) -> str:
    return "worker" if index == 0 else f"worker-{index + 1}"


@dataclass
class EmbeddedStack:
    """All embedded services for one settings object; ``start()`` then ``stop()``.

    ``workers`` Faust workers form one group: worker ``i`` listens on
    ``settings.worker.web_port + i`` (or a free port when that one is taken) and keeps its
    tables under its own data directory; the API is given every worker's URL."""

    settings: Settings
    log_dir: Path
    with_api: bool = True
    workers: int = 1
    processes: list[ManagedProcess] = field(default_factory=list)
    worker_ports: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError("a stack needs at least one worker")
        a = self.settings.archive
        if port_open(a.web_host, a.web_port):
            archive = a.model_copy(update={"web_port": free_port(a.web_host)})
            self.settings = self.settings.model_copy(update={"archive": archive})
        host, base = self.settings.worker.web_host, self.settings.worker.web_port
        if self.worker_ports and len(self.worker_ports) != self.workers:
            raise ValueError("worker_ports must name one port per worker")
        for index in range(len(self.worker_ports), self.workers):
            port = base + index
            if index and (port > 65535 or port_open(host, port) or port in self.worker_ports):
                port = free_port(host)
            self.worker_ports.append(port)
        if not self.settings.http.worker_urls:
            urls = tuple(
                worker_settings(self.settings, i, port).worker_advertised_url()
                for i, port in enumerate(self.worker_ports)
            )
            http = self.settings.http.model_copy(update={"worker_urls": urls})
            self.settings = self.settings.model_copy(update={"http": http})

    def _python(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "tritontube.cli", *args]

    def object_store(self) -> SeaweedFSServer:
        """The embedded object store of these settings (not started), in data_dir/objects."""
        s = self.settings
        if s.s3.endpoint_url is None:
            raise ValueError("the embedded stack needs settings.s3.endpoint_url")
        s3_host, s3_port = _host_port(s.s3.endpoint_url)
        return SeaweedFSServer(
            directory=s.data_dir / "objects",
            port=s3_port,
            bucket=s.s3.bucket,
            cors_origins=list(s.http.cors_origins) or [self.public_url],
            host=s3_host,
            app_credentials=explicit_credentials(s.s3),
            log_path=self.log_dir / "objectstore.log",
        )

    def start_infrastructure(self) -> None:
        """The object store, then the broker whose storage it is (stopped the other way round:
        Tansu cannot stop cleanly once its store is gone)."""
        store = self.object_store()
        self.settings = store_settings(self.settings, store)
        proc = store.build_process()
        self._start(proc)
        store.wait_ready(proc)
        host, port = _host_port(self.settings.kafka.bootstrap_servers.split(",")[0])
        if self.settings.kafka.embedded_log_storage == "memory":
            broker = tansu_process(host, port, self.log_dir)
        else:
            broker = tansu_process(
                host,
                port,
                self.log_dir,
                storage=s3_storage(BROKER_BUCKET),
                storage_env=store.broker_env(),
            )
        self._start(broker)
        # Run in a thread of its own: callers may be inside an event loop (async tests).
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, self._prepare()).result()

    async def _prepare(self) -> None:
        await ensure_topics(self.settings.kafka)
        store = S3ObjectStore.from_settings(self.settings.s3)
        try:
            await store.ensure_bucket()
            if self.settings.archive.restore_on_start:
                # Opt-in (off by default: the broker is durable): refill empty partitions.
                await restore_from_archive(self.settings, store)
        finally:
            store.close()
        self.settings.search.path.mkdir(parents=True, exist_ok=True)

    def worker_process(self, index: int = 0) -> ManagedProcess:
        """Worker ``index``'s process (not started)."""
        s = worker_settings(self.settings, index, self.worker_ports[index])
        return ManagedProcess(
            name=worker_name(index),
            argv=self._python("worker"),
            host=s.worker.web_host,
            port=s.worker.web_port,
            log_path=self.log_dir / f"{worker_name(index)}.log",
            env=settings_env(s),
        )

    def start_worker(self, index: int = 0) -> ManagedProcess:
        """Start worker ``index`` and wait until it has its partitions and tables."""
        return self.start_workers([index])[0]

    def start_workers(self, indexes: list[int] | None = None) -> list[ManagedProcess]:
        """Start the workers (all by default) together, then wait until each is ready: one
        rebalance for the lot instead of one per worker."""
        chosen = list(range(self.workers)) if indexes is None else indexes
        started = []
        for index in chosen:
            worker = self.worker_process(index)
            self._start(worker, timeout=60)
            started.append(worker)
        for worker in started:
            self._wait_http_ok(worker, f"http://{worker.host}:{worker.port}/readyz")
        return started

    def worker_processes(self) -> list[ManagedProcess]:
        return [p for p in self.processes if p.name.startswith("worker")]

    def start_archiver(self) -> ManagedProcess | None:
        """The archiver process (``tritontube archiver``), when the archive is enabled."""
        a = self.settings.archive
        if not a.enabled:
            return None
        archiver = ManagedProcess(
            name="archiver",
            argv=self._python("archiver"),
            host=a.web_host,
            port=a.web_port,
            log_path=self.log_dir / "archiver.log",
            env=settings_env(self.settings),
        )
        self._start(archiver, timeout=30)
        return archiver

    def _wait_http_ok(self, proc: ManagedProcess, url: str, timeout: float = 90.0) -> None:
        """Wait until ``url`` answers 200 (the worker has its partitions and tables)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not proc.running():
                raise ProcessFailedError(f"{proc.name} exited: {proc.tail_log()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback URL
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise ProcessFailedError(f"{proc.name} not ready at {url}: {proc.tail_log()}")

    def start_api(self) -> ManagedProcess:
        s = self.settings
        api = ManagedProcess(
            name="api",
            argv=self._python("api"),
            host=s.http.host,
            port=s.http.port,
            log_path=self.log_dir / "api.log",
            env=settings_env(s),
        )
        self._start(api, timeout=30)
        return api

    def start(self) -> None:
        try:
            self.start_infrastructure()
            self.start_archiver()
            self.start_workers()
            if self.with_api:
                self.start_api()
        except BaseException:
            self.stop()
            raise

    def revive(self, proc: ManagedProcess) -> None:
        """Start a child that died again (fault recovery); see the module docstring. The
        broker and the object store keep their data on disk, so nothing needs refilling."""
        proc.start(timeout=60 if proc.name.startswith("worker") else 30)

    def _start(self, proc: ManagedProcess, timeout: float = 30.0) -> None:
        self.processes.append(proc)
        proc.start(timeout=timeout)

    @property
    def public_url(self) -> str:
        s = self.settings
        return s.http.public_url or f"http://{s.http.host}:{s.http.port}"

    def wait_ready(self, timeout: float = 60.0) -> dict[str, Any]:
        """Poll the API's /readyz until it answers 200; the last answer otherwise."""
        deadline = time.monotonic() + timeout
        body: dict[str, Any] = {}
        while time.monotonic() < deadline:
            for proc in self.processes:
                if not proc.running():
                    raise ProcessFailedError(f"{proc.name} exited: {proc.tail_log()}")
            try:
                with urllib.request.urlopen(f"{self.public_url}/readyz", timeout=5) as resp:  # noqa: S310 - our own loopback URL
                    return dict(json.load(resp))
            except urllib.error.HTTPError as exc:
                body = json.load(exc)
            except (urllib.error.URLError, OSError):
                body = {"ready": False}
            time.sleep(0.25)
        return body

    def stop(self) -> None:
        """Stop every child, the last started first (the broker before its store). Without
        its store Tansu ignores SIGTERM, and without a broker a worker's (or the archiver's)
        graceful stop waits for its full grace with nothing to commit: those are ended at
        once."""

        def down(name: str) -> bool:
            return not any(p.name == name and p.running() for p in self.processes)

        for names, needs in ((("broker",), "objectstore"), (("worker", "archiver"), "broker")):
            if down(needs):
                for proc in self.processes:
                    if proc.name.startswith(names):
                        proc.kill()
        for proc in reversed(self.processes):
            proc.stop()
        self.processes.clear()


def run_dev(settings: Settings, workers: int = 1) -> int:
    """Run the stack with ``workers`` workers in the foreground until Ctrl-C / SIGTERM."""
    from tritontube.http.auth import mint_token

    log_dir = settings.data_dir / "logs"
    stack = EmbeddedStack(settings=settings, log_dir=log_dir, workers=workers)
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    print(f"starting the embedded stack (logs in {log_dir}) ...", flush=True)
    started = time.monotonic()
    try:
        stack.start()
        ready = stack.wait_ready()
        if not ready.get("ready"):
            print(f"stack not ready: {json.dumps(ready)}", flush=True)
            return 1
        token = mint_token(settings.auth, "demo")
        listening = ", ".join(f"{p.name} :{p.port}" for p in stack.processes)
        print(
            f"\nTritonTube is ready in {time.monotonic() - started:.1f}s at {stack.public_url}\n"
            f"  processes: {listening}\n"
            f"  demo user token (Authorization: Bearer ...):\n  {token}\n"
            "Press Ctrl-C to stop.",
            flush=True,
        )
        restarts: dict[str, list[float]] = {}
        while not stop.wait(0.5):
            for proc in list(stack.processes):
                if proc.running() or stop.is_set():
                    continue
                now = time.monotonic()
                window = now - RESTART_WINDOW_SECONDS
                recent = [t for t in restarts.get(proc.name, []) if t > window]
                restarts[proc.name] = [*recent, now]
                if len(recent) >= RESTART_LIMIT:
                    print(
                        f"{proc.name} exited ({proc.returncode}) {len(recent) + 1} times in "
                        f"{RESTART_WINDOW_SECONDS:.0f}s; stopping. Log tail:\n{proc.tail_log()}",
                        flush=True,
                    )
                    return 1
                print(f"{proc.name} exited ({proc.returncode}); restarting it ...", flush=True)
                try:
                    stack.revive(proc)
                except ProcessFailedError as exc:
                    print(f"{proc.name} did not come back: {exc}; stopping.", flush=True)
                    return 1
                print(f"{proc.name} restarted (pid {proc.pid}).", flush=True)
        return 0
    finally:
        print("stopping ...", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stack.stop()
        print("stopped.", flush=True)
