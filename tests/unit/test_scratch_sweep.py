"""The sweep of abandoned transcode scratch directories, on the real filesystem."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tritontube.agents import scratch


def test_a_directory_held_by_a_live_job_is_kept(tmp_path: Path) -> None:
    held = scratch.ScratchDir(tmp_path)
    (held.path / "segment.m4s").write_bytes(b"x")
    assert scratch.sweep(tmp_path) == 0
    assert held.path.is_dir()
    held.remove()
    assert not held.path.exists()


def test_a_directory_whose_process_died_is_removed_even_if_its_pid_is_alive(
    tmp_path: Path,
) -> None:
    """PID reuse: a dead job's directory named with a PID that is alive again (here: ours,
    as a container's worker is PID 1 again after a restart) is still removed."""
    subprocess.run(
        [sys.executable, "-c", "import sys; from pathlib import Path; "
         "from tritontube.agents.scratch import ScratchDir; ScratchDir(Path(sys.argv[1]))",
         str(tmp_path)],
        check=True,
    )  # fmt: skip
    (left,) = tmp_path.iterdir()
    reused = left.rename(tmp_path / f"{scratch.PREFIX}{os.getpid()}-abc")
    assert scratch.sweep(tmp_path) == 1
    assert not reused.exists()


def test_a_directory_without_a_lock_is_kept_while_young(tmp_path: Path) -> None:
    young = tmp_path / f"{scratch.PREFIX}1-young"
    old = tmp_path / f"{scratch.PREFIX}1-old"
    other = tmp_path / "someone-else"
    for folder in (young, old, other):
        folder.mkdir()
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    os.utime(other, (an_hour_ago, an_hour_ago))
    assert scratch.sweep(tmp_path) == 1
    assert young.is_dir() and not old.exists() and other.is_dir()


def test_sweeping_a_missing_root_removes_nothing(tmp_path: Path) -> None:
    assert scratch.sweep(tmp_path / "absent") == 0
