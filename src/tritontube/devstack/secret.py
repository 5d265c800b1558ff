"""The embedded stack's own auth secret: random per data directory, kept in it (mode 0600).

`tritontube dev` never signs with the shipped placeholder (``settings.SHIPPED_AUTH_SECRET``,
public in the source): on its first start in a data directory it draws a random secret and
stores it there, and later starts (and ``tritontube token create`` next to them) reuse it, so
tokens minted for a dev stack keep working across restarts.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

SECRET_FILE = "auth-secret"  # noqa: S105 - a file name
_SECRET_BYTES = 48


class DevSecretError(RuntimeError):
    """The stored secret is unreadable, empty or readable by others."""


def secret_path(data_dir: Path) -> Path:
    return data_dir / SECRET_FILE


def read_dev_secret(data_dir: Path) -> str | None:
    """The stored secret, or None when the data directory has none yet."""
    path = secret_path(data_dir)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, encoding="ascii") as handle:
        if os.fstat(handle.fileno()).st_mode & 0o077:
            raise DevSecretError(f"{path} is readable by others; chmod 600 it or delete it")
        value = handle.read().strip()
    if len(value) < 32:
        raise DevSecretError(f"{path} holds no usable secret; delete it to draw a new one")
    return value


def load_or_create_dev_secret(data_dir: Path) -> str:
    """The data directory's secret, drawn and stored (0600) on first use.

    The file appears atomically with its content (written aside, then hard-linked into place,
    which fails when it exists), so two starts racing on one directory agree on one secret.
    """
    existing = read_dev_secret(data_dir)
    if existing is not None:
        return existing
    data_dir.mkdir(parents=True, exist_ok=True)
    path = secret_path(data_dir)
    aside = data_dir / f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
    value = secrets.token_urlsafe(_SECRET_BYTES)
    fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(value + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(aside, path)
        except FileExistsError:  # another start won the race: use its secret
            raced = read_dev_secret(data_dir)
            if raced is None:  # pragma: no cover - deleted in between
                raise DevSecretError(f"{path} vanished while being read") from None
            return raced
    finally:
        with contextlib.suppress(OSError):
            aside.unlink()
    return value
