"""Private scratch directories of transcode jobs, and the sweep of those left behind.

A job's directory holds a lock file that the job keeps locked (``flock``) for as long as
the directory lives. The kernel drops the lock when the process dies, however it dies, so
the sweep removes exactly the directories nobody holds. A PID in the name (still there,
for people reading ``ls``) cannot tell that: a container's worker is PID 1 again after
``docker restart``, which keeps ``/tmp``, so its killed job's directory looked alive for
ever.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import time
from pathlib import Path

PREFIX = "tritontube-transcode-"
LOCK_NAME = ".lock"
#: A directory without a lock file is at most this old while its job is starting
#: (``mkdtemp`` then the lock file, microseconds apart); older, it is a leftover.
_UNLOCKED_GRACE_SECONDS = 60.0


class ScratchDir:
    """A new directory under ``root``, locked until ``remove``."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=root))
        self._lock = os.open(self.path / LOCK_NAME, os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def remove(self) -> None:
        """Delete the directory, then let go of it."""
        shutil.rmtree(self.path, ignore_errors=True)
        os.close(self._lock)


def sweep(root: Path) -> int:
    """Delete the scratch directories under ``root`` that no live job holds; how many."""
    if not root.is_dir():
        return 0
    removed = 0
    for path in root.iterdir():
        if not path.name.startswith(PREFIX) or not path.is_dir():
            continue
        if _remove_if_abandoned(path):
            removed += 1
    return removed


def _remove_if_abandoned(path: Path) -> bool:
    try:
        lock = os.open(path / LOCK_NAME, os.O_RDWR)
    except FileNotFoundError:
        try:
            age = time.time() - path.stat().st_mtime
        except FileNotFoundError:
            return False  # another sweep got there first
        if age < _UNLOCKED_GRACE_SECONDS:
            return False  # a job is creating it right now
        shutil.rmtree(path, ignore_errors=True)
        return True
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # held by a live job
        shutil.rmtree(path, ignore_errors=True)
        return True
    finally:
        os.close(lock)
