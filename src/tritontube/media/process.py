"""Running the media tools: one child process, bounded, killable, with its output parsed.

Every tool runs through ``asyncio.create_subprocess_exec`` (argv list, no shell) in its own
session so that a timeout can kill the whole process group. Decisions worth knowing:

* Memory ceiling: RLIMIT_AS is applied with ``resource.prlimit(pid, ...)`` on the child
  right after it is spawned. CPython spawns with vfork/exec when no ``preexec_fn`` is
  given, so the child is already ffmpeg (or ``setpriv``, below, which keeps its limits
  when it runs ffmpeg) when the limit lands and every later allocation counts against it.
  ``preexec_fn`` is avoided on purpose: it is unsafe in a process with threads (Faust,
  aiokafka and boto3 all start some).
* A child dies with its worker: it is started through util-linux's ``setpriv --pdeathsig
  KILL`` (Linux; on Debian util-linux is an essential package), so the kernel kills it
  when the worker dies, even by ``kill -9`` or the OOM killer. ffmpeg ignores SIGPIPE
  and the write errors of ``-progress``, so without it an orphaned encode ran to its end,
  competing for the CPU with the job's redelivery. Without ``setpriv`` (another OS) the
  child is started directly.
* CPU time: ffmpeg's own ``-benchmark`` report (``getrusage(RUSAGE_SELF)`` in the child:
  user + system time of all of its threads). ``RUSAGE_CHILDREN`` deltas in the parent
  would mix in every other child reaped meanwhile (concurrent encodes, other tools), and
  asyncio's child watcher reaps the child itself, so ``os.wait4`` is not available.
* Failure mapping: an input ffprobe cannot recognise at all ("Invalid data found when
  processing input") is UNSUPPORTED_MEDIA; a recognised container that is structurally
  broken ("moov atom not found", decode errors) is CORRUPT_MEDIA. A text file renamed
  ``.mp4`` is therefore CORRUPT_MEDIA (ffprobe picks the MP4 demuxer from the
  extension, then finds no moov atom) while the same bytes without an extension, or
  streamed from the store (the URL ends in its signature), are UNSUPPORTED_MEDIA.
  Signed URLs are secrets while valid: error details carry them without their query string.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import re
import resource
import shutil
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from tritontube.domain.media import (
    EncodeProgress,
    FailureReason,
    MediaError,
    parse_progress_block,
)
from tritontube.media.port import ProgressCallback

__all__ = [
    "PROBE_STDOUT_LIMIT",
    "Completed",
    "LineHandler",
    "ProgressForwarder",
    "classify",
    "cpu_seconds",
    "error_lines",
    "failure",
    "run_tool",
]

log = logging.getLogger(__name__)

_SETPRIV = shutil.which("setpriv")
_STDERR_TAIL_BYTES = 16 * 1024
#: The most a probe may print (ffprobe's JSON); also the longest line any tool may print.
PROBE_STDOUT_LIMIT = 8 * 1024 * 1024
# ffprobe prints each tag on one line, and an upload's tags are as long as it likes (a
# 100 kB comment broke asyncio's 64 kB default): whatever fits the probe's output budget.
_STDOUT_LINE_LIMIT = PROBE_STDOUT_LIMIT
_PROGRESS_INTERVAL_SECONDS = 1.0
_BENCH_RE = re.compile(r"bench: utime=([0-9.]+)s stime=([0-9.]+)s")

LineHandler = Callable[[str], Awaitable[None]]


class _Tail:
    """The last ``limit`` bytes written to it: bounded memory for chatty stderr."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._buf = bytearray()

    def feed(self, chunk: bytes) -> None:
        self._buf += chunk
        if len(self._buf) > self._limit:
            del self._buf[: len(self._buf) - self._limit]

    def text(self) -> str:
        return self._buf.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class Completed:
    returncode: int
    stderr_tail: str
    wall_seconds: float


async def _pump_tail(stream: asyncio.StreamReader, tail: _Tail) -> None:
    while chunk := await stream.read(4096):
        tail.feed(chunk)


async def _pump_lines(stream: asyncio.StreamReader, on_line: LineHandler | None) -> None:
    while True:
        try:
            raw = await stream.readline()
        except ValueError:  # a line longer than the stream's limit (_STDOUT_LINE_LIMIT)
            raise MediaError(
                FailureReason.UNSUPPORTED_MEDIA,
                detail=f"a line of tool output is longer than {_STDOUT_LINE_LIMIT} bytes",
            ) from None
        if not raw:
            return
        if on_line is not None:
            await on_line(raw.decode("utf-8", errors="replace").rstrip("\r\n"))


def _lower_priority(pid: int, niceness: int) -> None:
    """Encodes yield the CPU to the event path (agents, API) on a shared machine.

    Set right after spawn, before ffmpeg starts its encoder threads (which inherit it)."""
    if niceness <= 0:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.setpriority(os.PRIO_PROCESS, pid, niceness)


def _limit_memory(pid: int, limit_bytes: int | None) -> None:
    if limit_bytes is None:
        return
    with contextlib.suppress(ProcessLookupError):
        resource.prlimit(pid, resource.RLIMIT_AS, (limit_bytes, limit_bytes))


async def _kill_group(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    await proc.wait()


def _dying_with_parent(argv: Sequence[str]) -> list[str]:
    if _SETPRIV is None:
        return list(argv)
    # A missing tool must stay a FileNotFoundError (the agent retries it: a broken
    # deployment, not a bad upload), not setpriv's exit status 127.
    if shutil.which(argv[0]) is None:
        raise FileNotFoundError(f"{argv[0]} is not an executable on PATH")
    return [_SETPRIV, "--pdeathsig", "KILL", "--", *argv]


async def run_tool(
    argv: Sequence[str],
    *,
    timeout: float | Callable[[], float],
    memory_limit_bytes: int | None,
    on_stdout_line: LineHandler | None = None,
    niceness: int = 0,
) -> Completed:
    """Run argv to completion; kill its process group on timeout, error or cancellation.

    Raises MediaError(TRANSCODE_TIMEOUT) when ``timeout`` seconds of wall clock pass. A
    callable ``timeout`` is read again after every stdout line: the budget of an encode
    grows with what ffmpeg reports it has encoded.
    """
    budget = timeout if callable(timeout) else (lambda: timeout)
    started = time.monotonic()
    started_on_loop = asyncio.get_running_loop().time()
    proc = await asyncio.create_subprocess_exec(
        *_dying_with_parent(argv),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
        limit=_STDOUT_LINE_LIMIT,
    )
    _limit_memory(proc.pid, memory_limit_bytes)
    _lower_priority(proc.pid, niceness)
    if proc.stdout is None or proc.stderr is None:  # pragma: no cover - PIPE always sets them
        raise RuntimeError("subprocess pipes were not created")
    tail = _Tail(_STDERR_TAIL_BYTES)
    stderr_task = asyncio.create_task(_pump_tail(proc.stderr, tail))
    deadline = asyncio.timeout_at(started_on_loop + budget())
    try:
        async with deadline:

            async def on_line(line: str) -> None:
                if on_stdout_line is not None:
                    await on_stdout_line(line)
                if not deadline.expired():
                    deadline.reschedule(started_on_loop + budget())

            await _pump_lines(proc.stdout, on_line)
            await proc.wait()
            # Shielded: a timeout here must not cancel the reader the finally awaits.
            await asyncio.shield(stderr_task)
    except TimeoutError:
        if not deadline.expired():  # raised by on_stdout_line (a send), not our budget
            raise
        log.warning(
            "%s timed out after %.1f s; killing process group %s",
            argv[0],
            time.monotonic() - started,
            proc.pid,
        )
        await _kill_group(proc)
        raise MediaError(FailureReason.TRANSCODE_TIMEOUT, detail=error_lines(tail.text())) from None
    finally:
        if proc.returncode is None:
            await _kill_group(proc)
        await stderr_task
    returncode = proc.returncode
    if returncode is None:  # pragma: no cover - wait() above always sets it
        raise RuntimeError("process has no return code after wait()")
    return Completed(returncode, tail.text(), time.monotonic() - started)


# --------------------------------------------------------------------------- failure mapping

_UNSUPPORTED_MARKERS = (
    "format not on whitelist",
    "protocol not on whitelist",
    "decoder not found",
    "unknown decoder",
    "unsupported codec",
    "no decoder for",
)
_CORRUPT_MARKERS = (
    "moov atom not found",
    "invalid nal unit",
    "error while decoding",
    "non-existing pps",
    "corrupt",
    "truncat",
    "partial file",
    "ebml header parsing failed",
)
_TRANSIENT_MARKERS = (
    "received signal",
    "no space left on device",
    # Streaming from the object store: it may be restarting, or the network failing.
    "connection refused",
    "connection reset",
    "timed out",
    "network is unreachable",
    "input/output error",
    "server returned 5",
    "server returned 403",  # an expired signature: a new attempt signs a new URL
)
_SIGNED_QUERY = re.compile(r"(https?://[^\s?]+)\?\S*")


def error_lines(stderr: str, keep: int = 20) -> str:
    """The most useful part of a stderr tail: error lines if any, else the last lines, with
    the signatures of pre-signed URLs cut off."""
    lines = [_SIGNED_QUERY.sub(r"\1?…", line) for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(("[error]", "[fatal]", "[panic]"))]
    return "\n".join((errors or lines)[-keep:])


def classify(stderr: str, default: FailureReason) -> MediaError:
    text = stderr.lower()
    detail = error_lines(stderr)
    if any(marker in text for marker in _TRANSIENT_MARKERS):
        return MediaError(FailureReason.TRANSCODE_FAILED, transient=True, detail=detail)
    if "server returned 404" in text:  # deleted from the store while queued
        return MediaError(FailureReason.SOURCE_MISSING, detail=detail)
    if any(marker in text for marker in _UNSUPPORTED_MARKERS):
        return MediaError(FailureReason.UNSUPPORTED_MEDIA, detail=detail)
    if any(marker in text for marker in _CORRUPT_MARKERS):
        return MediaError(FailureReason.CORRUPT_MEDIA, detail=detail)
    if "invalid data found when processing input" in text:
        return MediaError(FailureReason.UNSUPPORTED_MEDIA, detail=detail)
    return MediaError(default, detail=detail)


def failure(done: Completed, default: FailureReason) -> MediaError:
    if done.returncode < 0:
        signum = -done.returncode
        return MediaError(
            FailureReason.TRANSCODE_FAILED,
            f"The media tool was stopped by signal {signum}; the job can be retried.",
            transient=True,
            detail=error_lines(done.stderr_tail),
        )
    return classify(done.stderr_tail, default)


def cpu_seconds(stderr: str) -> float | None:
    matches = _BENCH_RE.findall(stderr)
    if not matches:
        return None
    utime, stime = matches[-1]
    return float(utime) + float(stime)


# --------------------------------------------------------------------------- progress


class ProgressForwarder:
    """Collects ``-progress`` key=value lines into blocks and forwards EncodeProgress at
    most once per interval, plus always the final block. ``encoded_seconds`` is the
    furthest point ffmpeg has reported, whether or not anyone is listening."""

    def __init__(
        self,
        callback: ProgressCallback | None,
        duration: float | None,
        names: Sequence[str],
        interval: float = _PROGRESS_INTERVAL_SECONDS,
    ) -> None:
        self._callback = callback
        self._duration = duration
        self._names = tuple(names)
        self._interval = interval
        self._block: dict[str, str] = {}
        self._last_sent = -math.inf
        self._last_percent = 0.0
        self.encoded_seconds = 0.0

    async def feed(self, line: str) -> None:
        key, sep, value = line.partition("=")
        if not sep:
            return
        self._block[key.strip()] = value.strip()
        if key.strip() != "progress":
            return
        progress = parse_progress_block(self._block, self._duration, self._names)
        self._block = {}
        self.encoded_seconds = max(self.encoded_seconds, progress.out_time_seconds)
        if self._callback is None:
            return
        now = time.monotonic()
        if progress.finished or now - self._last_sent >= self._interval:
            await self._send(progress, now)

    async def _send(self, progress: EncodeProgress, now: float) -> None:
        # ffmpeg's clock can step back a little between blocks (audio vs video); callers
        # are promised a non-decreasing percent.
        if progress.percent < self._last_percent:
            progress = EncodeProgress(
                progress.out_time_seconds,
                self._last_percent,
                progress.speed,
                progress.eta_seconds,
                tuple((name, self._last_percent) for name in self._names),
                progress.finished,
            )
        self._last_percent = progress.percent
        self._last_sent = now
        if self._callback is not None:
            await self._callback(progress)
