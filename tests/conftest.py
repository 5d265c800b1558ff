"""Shared fixtures: real local services on free loopback ports, always stopped."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from helpers import StoreBucket
from tritontube.deps import build_deps
from tritontube.devstack.broker import tansu_process
from tritontube.devstack.process import free_port
from tritontube.devstack.seaweedfs import Credentials, SeaweedFSServer
from tritontube.devstack.stack import EmbeddedStack
from tritontube.settings import (
    AuthSettings,
    HttpSettings,
    KafkaSettings,
    S3Settings,
    SearchSettings,
    Settings,
    UploadSettings,
    WorkerSettings,
)
from tritontube.storage.s3 import S3ObjectStore
from tritontube.streams.records import EventCodec

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
SHARED_BUCKET_PREFIX = "tt-test-"


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests build their settings explicitly; a developer's TRITONTUBE_* must not leak in."""
    for key in list(os.environ):
        if key.startswith("TRITONTUBE_"):
            monkeypatch.delenv(key)


@pytest.fixture
def artifacts_dir(request: pytest.FixtureRequest) -> Path:
    """Kept after the run (screenshots, service logs of failures)."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)[-120:]
    path = ARTIFACTS / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[str]:
    """A fresh embedded Kafka-protocol broker (Tansu, memory storage); yields bootstrap servers."""
    port = free_port()
    proc = tansu_process("127.0.0.1", port, tmp_path / "logs")
    proc.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def shared_object_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFSServer]:
    """One embedded object store (SeaweedFS) for the session: tests get a bucket each."""
    root = tmp_path_factory.mktemp("shared-object-store")
    server = SeaweedFSServer(
        directory=root / "objects",
        port=free_port(),
        bucket=f"{SHARED_BUCKET_PREFIX}shared",
        cors_origins=["http://127.0.0.1"],
        app_scope=f"{SHARED_BUCKET_PREFIX}*",
        log_path=root / "objectstore.log",
    )
    with server:
        yield server


@pytest.fixture
def object_store(shared_object_store: SeaweedFSServer) -> StoreBucket:
    """A fresh, empty bucket of its own on the session's object store (with its app keys):
    starting a store per test cost ~3 s each. Tests that stop or kill the store use
    :func:`private_object_store`."""
    bucket = StoreBucket.of(shared_object_store, f"{SHARED_BUCKET_PREFIX}{uuid.uuid4().hex[:20]}")
    bucket.create()
    return bucket


@pytest.fixture
def private_object_store(tmp_path: Path) -> Iterator[SeaweedFSServer]:
    """An embedded object store of this test's own, bucket ``tritontube`` (to stop or kill)."""
    server = SeaweedFSServer(
        directory=tmp_path / "objects",
        port=free_port(),
        bucket="tritontube",
        cors_origins=["http://127.0.0.1"],
        log_path=tmp_path / "logs" / "objectstore.log",
    )
    with server:
        yield server


@pytest.fixture
def codec() -> EventCodec:
    """The event codec the app builds (schemas only; no service behind it)."""
    return build_deps(Settings()).codec


@pytest.fixture
def store_for() -> Iterator[Callable[[Settings], S3ObjectStore]]:
    """S3 clients for the object store of given settings; every one is closed at the end."""
    stores: list[S3ObjectStore] = []

    def make(settings: Settings) -> S3ObjectStore:
        stores.append(S3ObjectStore.from_settings(settings.s3))
        return stores[-1]

    yield make
    for store in stores:
        store.close()


SettingsFactory = Callable[..., Settings]


@pytest.fixture
def make_settings(tmp_path: Path) -> SettingsFactory:
    """Settings for an embedded stack on free ports under tmp_path (override groups by kwarg)."""

    def factory(*, transcode_agent: bool = True, **overrides: object) -> Settings:
        """``transcode_agent=False``: no transcode agent (tests that publish its events by hand)."""
        worker_port = free_port()
        http_port = free_port()
        keys = Credentials.generate()  # the stack's object store takes the app's keys from here
        groups: dict[str, object] = {
            "kafka": KafkaSettings(
                bootstrap_servers=f"127.0.0.1:{free_port()}",
                embedded_broker_compat=True,
                partitions=2,
            ),
            "s3": S3Settings(
                endpoint_url=f"http://127.0.0.1:{free_port()}",
                access_key_id=keys.access_key_id,
                secret_access_key=keys.secret_access_key,  # type: ignore[arg-type]
            ),
            "http": HttpSettings(port=http_port),
            "worker": WorkerSettings(
                web_port=worker_port,
                data_dir=tmp_path / "worker",
                transcode_enabled=transcode_agent,
            ),
            "search": SearchSettings(path=tmp_path / "search"),
            "upload": UploadSettings(),
            "data_dir": tmp_path / "data",
            # A secret of its own, as in production: `tritontube api`/`worker` refuse the
            # shipped placeholder outside dev mode.
            "auth": AuthSettings(secret=secrets.token_urlsafe(32)),
        }
        groups.update(overrides)
        return Settings(**groups)  # type: ignore[arg-type]

    return factory


@pytest.fixture
def stack_factory(
    tmp_path: Path, artifacts_dir: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., EmbeddedStack]]:
    """Start embedded stacks; every one is stopped at the end, logs kept when the test failed."""
    stacks: list[EmbeddedStack] = []

    def factory(
        settings: Settings,
        *,
        with_api: bool = False,
        worker: bool = True,
        workers: int = 1,
        archiver: bool = True,
    ) -> EmbeddedStack:
        """``archiver=False``: no archiver process (a test that drives an Archiver itself)."""
        # Free ports for every worker (``make dev`` takes consecutive ones): a port next to a
        # free one may be anybody's on a busy machine.
        ports = [settings.worker.web_port, *(free_port() for _ in range(workers - 1))]
        stack = EmbeddedStack(
            settings=settings,
            log_dir=tmp_path / "logs",
            with_api=with_api,
            workers=workers,
            worker_ports=ports,
        )
        stacks.append(stack)
        try:
            stack.start_infrastructure()
            if archiver:
                stack.start_archiver()
            if worker:
                stack.start_workers()
            if with_api:
                stack.start_api()
        except BaseException:
            stack.stop()
            raise
        return stack

    try:
        yield factory
    finally:
        for stack in stacks:
            stack.stop()
        logs = tmp_path / "logs"
        if logs.exists():
            shutil.copytree(logs, artifacts_dir / "logs", dirs_exist_ok=True)
