"""The sweep of abandoned transcode scratch directories, on the real filesystem."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tritontube.agents import scratch


def left_by_a_dead_process(root: Path) -> Path:
    """A scratch directory whose job's process has exited without removing it."""
    before = set(root.iterdir()) if root.exists() else set()
    subprocess.run(
        [sys.executable, "-c", "import sys; from pathlib import Path; "
         "from tritontube.agents.scratch import ScratchDir; ScratchDir(Path(sys.argv[1]))",
         str(root)],
        check=True,
    )  # fmt: skip
    (left,) = set(root.iterdir()) - before
    return left


def test_a_directory_held_by_a_live_job_is_kept(tmp_path: Path) -> None:
    held = scratch.ScratchDir(tmp_path)
    assert held.path.name.startswith(scratch.PREFIX)
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
    left = left_by_a_dead_process(tmp_path)
    reused = left.rename(tmp_path / f"{scratch.PREFIX}{os.getpid()}-abc")
    assert scratch.sweep(tmp_path) == 1
    assert not reused.exists()


def test_a_directory_still_being_created_is_left_alone(tmp_path: Path) -> None:
    """Before its lock is taken a directory has a dotted name, which the sweep skips."""
    creating = tmp_path / f".{scratch.PREFIX}1-new"
    creating.mkdir()
    (creating / scratch.LOCK_NAME).touch()
    assert scratch.sweep(tmp_path) == 0
    assert creating.is_dir()


def test_a_directory_without_a_lock_file_goes_by_its_pid(tmp_path: Path) -> None:
    """A worker of the previous version (no lock files) on the same machine."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          check=True, capture_output=True, text=True).stdout.strip()  # fmt: skip
    running = tmp_path / f"{scratch.PREFIX}{os.getpid()}-old"
    gone = tmp_path / f"{scratch.PREFIX}{dead}-old"
    unnumbered = tmp_path / f"{scratch.PREFIX}³-old"  # '³'.isdigit(), yet no PID
    other = tmp_path / "someone-else"
    for folder in (running, gone, unnumbered, other):
        folder.mkdir()
    assert scratch.sweep(tmp_path) == 2
    assert running.is_dir() and other.is_dir()
    assert not gone.exists() and not unnumbered.exists()


def test_a_directory_that_cannot_be_examined_is_left_and_the_sweep_goes_on(
    tmp_path: Path,
) -> None:
    """A lock file that cannot be opened (here: a directory in its place) is logged."""
    odd = tmp_path / f"{scratch.PREFIX}1-odd"
    (odd / scratch.LOCK_NAME).mkdir(parents=True)
    abandoned = left_by_a_dead_process(tmp_path)
    assert scratch.sweep(tmp_path) == 1
    assert odd.is_dir() and not abandoned.exists()


def test_sweeping_a_missing_root_removes_nothing(tmp_path: Path) -> None:
    assert scratch.sweep(tmp_path / "absent") == 0
