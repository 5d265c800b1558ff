"""The embedded object store: s3rver (npm) persisting to a folder, for `make dev` and tests.

s3rver is installed by ``npm ci`` in the repository root (``package.json`` pins it). It keeps
buckets and objects as plain files under ``directory``, so uploads and the event archive survive a
restart. It does not enforce POST policies; the app verifies every upload with ``head()``.

The bucket and its CORS rules are (re)applied at every start with ``--configure-bucket``: the
SPA, served from another origin, POSTs uploads straight to s3rver and dash.js GETs segments.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

from tritontube.devstack.process import ManagedProcess

__all__ = [
    "S3rverNotInstalledError",
    "S3rverServer",
    "cors_configuration_xml",
    "find_s3rver_script",
]

_SCRIPT = Path("s3rver") / "bin" / "s3rver.js"
_INSTALL_HINT = "run `npm ci` in the repository root (or `make dev`, which does it)"

CORS_METHODS: tuple[str, ...] = ("GET", "HEAD", "POST", "PUT")
# What a browser may read from responses: dash.js needs ranges, the SPA the upload's ETag.
CORS_EXPOSE_HEADERS: tuple[str, ...] = (
    "ETag",
    "Content-Length",
    "Content-Range",
    "Accept-Ranges",
    "Location",
)


class S3rverNotInstalledError(RuntimeError):
    """node_modules/s3rver (or node itself) is missing."""


def find_s3rver_script(node_modules: Path | None = None, *, start: Path | None = None) -> Path:
    """Path of ``s3rver/bin/s3rver.js``.

    With ``node_modules`` given, look only there. Otherwise walk up from ``start`` (default:
    this file, i.e. the repository in a src-layout editable install) and then from the current
    directory, taking the first ``node_modules/s3rver`` found.
    """
    if node_modules is not None:
        script = Path(node_modules) / _SCRIPT
        if script.is_file():
            return script.resolve()
        raise S3rverNotInstalledError(f"{script} not found: {_INSTALL_HINT}")
    origins = [start or Path(__file__).resolve().parent, Path.cwd()]
    for origin in origins:
        for directory in (origin, *origin.parents):
            candidate = directory / "node_modules" / _SCRIPT
            if candidate.is_file():
                return candidate.resolve()
    raise S3rverNotInstalledError(
        f"node_modules/{_SCRIPT} not found above {origins[0]} or {origins[1]}: {_INSTALL_HINT}"
    )


def cors_configuration_xml(
    origins: Sequence[str],
    *,
    methods: Sequence[str] = CORS_METHODS,
    expose_headers: Sequence[str] = CORS_EXPOSE_HEADERS,
    max_age_seconds: int = 3000,
) -> str:
    """An S3 ``CORSConfiguration`` document: one rule for ``origins`` (``*`` allowed)."""
    if not origins:
        raise ValueError("at least one CORS origin is required (use '*' to allow any)")
    lines = ["<CORSConfiguration>", "  <CORSRule>"]
    lines += [f"    <AllowedOrigin>{escape(origin)}</AllowedOrigin>" for origin in origins]
    lines += [f"    <AllowedMethod>{escape(method.upper())}</AllowedMethod>" for method in methods]
    lines.append("    <AllowedHeader>*</AllowedHeader>")
    lines += [f"    <ExposeHeader>{escape(header)}</ExposeHeader>" for header in expose_headers]
    lines += [f"    <MaxAgeSeconds>{max_age_seconds}</MaxAgeSeconds>", "  </CORSRule>"]
    lines.append("</CORSConfiguration>")
    return "\n".join(lines) + "\n"


@dataclass
class S3rverServer:
    """One s3rver process serving ``bucket`` from ``directory`` on ``host:port``.

    ``start()`` writes the CORS document next to the data directory, (re)configures the bucket
    and waits until the port accepts connections; ``stop()`` ends the process group. Use it as
    a context manager in tests so it stops even when the test fails. Credentials are s3rver's
    fixed pair ``S3RVER``/``S3RVER``.
    """

    directory: Path
    port: int
    bucket: str
    cors_origins: Sequence[str]
    host: str = "127.0.0.1"
    node_modules: Path | None = None
    node: str = "node"
    log_path: Path | None = None
    silent: bool = False
    process: ManagedProcess | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        # s3rver runs with its package folder as working directory: relative paths would break.
        self.directory = self.directory.resolve()
        if self.log_path is not None:
            self.log_path = self.log_path.resolve()

    access_key_id = "S3RVER"
    secret_access_key = "S3RVER"  # noqa: S105 - s3rver's built-in, publicly documented dev key

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def cors_path(self) -> Path:
        return self.directory.parent / f"{self.directory.name}.cors.xml"

    def build_process(self) -> ManagedProcess:
        """Write the CORS document and return the (not yet started) ManagedProcess."""
        script = find_s3rver_script(self.node_modules)
        node = shutil.which(self.node)
        if node is None:
            raise S3rverNotInstalledError(f"{self.node!r} is not on PATH: install Node.js >= 18")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.cors_path.write_text(cors_configuration_xml(self.cors_origins), encoding="utf-8")
        argv = [
            node,
            # s3rver 3.7 encrypts ListObjectsV2 continuation tokens with DES, which OpenSSL 3
            # (Node >= 17) only offers through its legacy provider: without this flag every
            # listing longer than one page fails with a 500 (ERR_OSSL_EVP_UNSUPPORTED).
            "--openssl-legacy-provider",
            str(script),
            "--directory",
            str(self.directory),
            "--address",
            self.host,
            "--port",
            str(self.port),
            # Path-style only: otherwise a non-IP Host header (e.g. `minio`, `s3.local`) is
            # taken for a bucket name.
            "--no-vhost-buckets",
            "--configure-bucket",
            self.bucket,
            str(self.cors_path),
        ]
        if self.silent:
            argv.insert(3, "--silent")
        log_path = self.log_path or self.directory.parent / f"{self.directory.name}.log"
        return ManagedProcess(
            name="s3rver",
            argv=argv,
            host=self.host,
            port=self.port,
            log_path=log_path,
            cwd=script.parent.parent,
        )

    def start(self, timeout: float = 30.0) -> None:
        if self.process is not None and self.process.running():
            return
        self.process = self.build_process()
        self.process.start(timeout=timeout)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            process.stop()

    def running(self) -> bool:
        return self.process is not None and self.process.running()

    def __enter__(self) -> S3rverServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
