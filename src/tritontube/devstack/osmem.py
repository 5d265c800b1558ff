"""osmem-server (in-memory, OpenSearch-compatible) for tests of the OpenSearch adapter.

The binary ships in the ``osmem-server`` wheel (a dev dependency), so it is located
lazily. The server exits when our process disappears (``-parent-pid``); stdin watching
is off because ManagedProcess gives children /dev/null as stdin.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tritontube.devstack.process import ManagedProcess, free_port

HOST = "127.0.0.1"


def osmem_binary() -> str:
    """Path of the osmem-server binary (``OSMEM_SERVER_BIN`` overrides the bundled one)."""
    from osmem_server import resolve_binary  # dev dependency: import only when used

    return resolve_binary()


def osmem_process(log_path: Path, port: int | None = None, host: str = HOST) -> ManagedProcess:
    """An unstarted osmem-server on ``host:port`` (a free port when not given)."""
    port = port if port is not None else free_port(host)
    argv = [
        osmem_binary(),
        "-addr",
        f"{host}:{port}",
        "-no-stdin-watch",
        "-no-ja",
        "-parent-pid",
        str(os.getpid()),
    ]
    return ManagedProcess(name="osmem-server", argv=argv, host=host, port=port, log_path=log_path)


def osmem_url(process: ManagedProcess) -> str:
    return f"http://{process.host}:{process.port}"


@contextmanager
def running_osmem(log_path: Path, timeout: float = 30.0) -> Iterator[ManagedProcess]:
    """Start osmem-server, yield it, and stop it even when the body fails."""
    process = osmem_process(log_path)
    process.start(timeout=timeout)
    try:
        yield process
    finally:
        process.stop()
