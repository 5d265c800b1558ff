"""Private scratch directories of transcode jobs, and the sweep of those left behind.

A job's directory holds a lock file that the job keeps locked (``flock``) for as long as
the directory lives. The kernel drops the lock when the process dies, however it dies, so
the sweep removes exactly the directories nobody holds. A PID in the name (still there,
for people reading ``ls``) cannot tell that: a container's worker is PID 1 again after
``docker restart``, which keeps ``/tmp``, so its killed job's directory looked alive for
ever. A directory is locked before it gets its name (it is created under a dotted name
and renamed), so the sweep never sees one that is not locked yet. Directories without a
lock file (a worker of an earlier version, on the same machine during an upgrade) still
go by their PID.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger(__name__)

PREFIX = "tritontube-transcode-"
LOCK_NAME = ".lock"


class ScratchDir:
    """A new directory under ``root``, locked until ``remove`` (or until this object is
    garbage collected: the lock file closes with it, so a dropped one is swept later)."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix=f".{PREFIX}{os.getpid()}-", dir=root))
        try:
            self._lock: BinaryIO = (self.path / LOCK_NAME).open("wb")
        except OSError:
            shutil.rmtree(self.path, ignore_errors=True)
            raise
        try:
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            named = self.path.with_name(self.path.name.removeprefix("."))
            self.path.rename(named)
            self.path = named
        except OSError:
            self.remove()
            raise

    def remove(self) -> None:
        """Delete the directory, then let go of it."""
        shutil.rmtree(self.path, ignore_errors=True)
        self._lock.close()


def sweep(root: Path) -> int:
    """Delete the scratch directories under ``root`` that no live job holds; how many.

    A directory that cannot be examined (another user's, a file-descriptor shortage) is
    logged and left; the sweep never raises for one of them."""
    if not root.is_dir():
        return 0
    removed = 0
    for path in root.iterdir():
        if not path.name.startswith(PREFIX):
            continue
        try:
            if _abandoned(path):
                shutil.rmtree(path, ignore_errors=True)
                removed += 1
        except OSError as exc:
            log.warning("cannot sweep %s: %s", path, exc)
    return removed


def _abandoned(path: Path) -> bool:
    if not path.is_dir():
        return False
    try:
        lock = os.open(path / LOCK_NAME, os.O_RDWR)
    except FileNotFoundError:
        return not _pid_alive(path.name[len(PREFIX) :].split("-")[0])
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False  # held by a live job
    finally:
        os.close(lock)  # also lets go of the lock: rmtree needs none
    return True


def _pid_alive(pid: str) -> bool:
    if not (pid.isascii() and pid.isdigit()):  # '³'.isdigit(), and int('³') raises
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True
