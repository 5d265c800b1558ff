"""Chunked transcoding: the chunk agent (any worker) and the join agent (the job's owner).

The owner of a long job (``agents.transcode``) publishes the plan (``TranscodeChunked``) on
``transcode-chunk-results`` and one ``TranscodeChunk`` per part on ``transcode-chunks``,
keyed by part so the parts spread over partitions.

**Chunk agent** (``transcode-chunk``, ``transcode.max_concurrent_chunks`` at once per
worker): decode (bad bytes to the DLQ); skip a part whose job has ended (asks the owner's
table through this worker's web view; encodes when nobody can say); wait for
``not_before``; encode it into a private scratch directory (a VIDEO part: its frames in
every rendition from one decode; the AUDIO part: the whole source's audio), publishing
``ChunkProgress`` about once a second; upload its files under their final names; publish
``ChunkEncoded`` and wait for the broker's acknowledgement; only then is the part's message
acknowledged. A worker killed mid-part never commits it: the part's partition goes to
another worker (or back to this one), which encodes that part again, and nothing else.
Failures: a MediaError that is not transient fails the part for good
(``ChunkFailed(final)``); a transient one, an unavailable store or a broker error schedules
the next try (``chunk_attempt + 1`` after a backoff with jitter) and reports
``ChunkFailed(final=False)``; after ``max_attempts`` tries the part fails for good and its
message goes to ``transcode-chunks.dlq``.

**Join agent** (``transcode-join``, on the owner of the video's partition): folds every
event of ``transcode-chunk-results`` into the ``transcode_chunks`` table
(``domain.chunks.apply``: the plan, each part's progress and result; a part's result is
kept under its own key), publishes ``TranscodeProgress`` from the parts' progress (at most
about once a second), and when the last part is in, joins: one manifest over every part's
segments (``domain.chunks.join`` refuses parts that do not fit), written after every file
it lists is in the store, then ``RenditionReady`` per rendition and ``TranscodeSucceeded``,
like the one pass. A part that failed for good fails the video with its reason and
removes what the job stored. A result that arrives for a job that failed (a part that was
running somewhere) has its files removed. A redelivered result, a second plan of the same
attempt or a result after the join change nothing; a join interrupted by a crash runs again
from the table with the same outcome (deterministic names and event ids).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import random
import socket
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import faust
from faust.types import EventT, StreamT, TableT
from faust.web import Request, Response, View

from tritontube import metrics
from tritontube.agents import queries, scratch
from tritontube.agents.dlq import dead_letter
from tritontube.agents.tables import TypedTable
from tritontube.agents.topology import TRANSCODE_CHUNKS_TABLE, Topology
from tritontube.agents.transcode import TRANSIENT_ERRORS
from tritontube.deps import Deps
from tritontube.domain import chunks
from tritontube.domain import transcode as tx
from tritontube.domain.events import (
    ChunkedJob,
    ChunkEncoded,
    ChunkFailed,
    TranscodeChunk,
    TranscodeChunked,
)
from tritontube.domain.manifest import ManifestError
from tritontube.domain.media import EncodeProgress, FailureReason, MediaError, describe
from tritontube.domain.retry import RetryPolicy
from tritontube.media.port import RemoteSource, Source
from tritontube.settings import Settings
from tritontube.storage.port import ObjectNotFound, ObjectStoreError
from tritontube.streams import catalogue
from tritontube.streams.codec import CodecError
from tritontube.streams.partitioning import partition_of

log = logging.getLogger(__name__)

CHUNK_AGENT = "transcode-chunk"
JOIN_AGENT = "transcode-join"
RESULT_RECORDS = catalogue.TRANSCODE_CHUNK_RESULTS.records
_PROGRESS_INTERVAL_SECONDS = 1.0
_UPLOAD_CONCURRENCY = 4
_SOURCE_URL_MARGIN_SECONDS = 600
_RETRY = {"Retry-After": queries.RETRY_AFTER}


def register(app: faust.App, topology: Topology, deps: Deps, settings: Settings) -> None:
    """Add the chunk agent, the join agent and the owner's view of a chunked job."""
    table = topology.tables[TRANSCODE_CHUNKS_TABLE]
    jobs = TypedTable(table, deps.codec, ChunkedJob)
    owners = queries.Queries(app, queries.QueryTables.of(topology, deps), deps, settings)
    encoder = ChunkRunner(topology, deps, settings, JobLookup(jobs, owners, deps))
    joiner = JoinRunner(topology, deps, table, encoder.policy)
    token = settings.internal_token().get_secret_value().encode()

    @app.agent(
        topology.topic(catalogue.TRANSCODE_CHUNKS),
        name=CHUNK_AGENT,
        concurrency=settings.transcode.max_concurrent_chunks,
    )
    async def chunk_agent(stream: StreamT) -> None:
        async for event in stream.events():
            await encoder.handle(event)

    @app.agent(topology.topic(catalogue.TRANSCODE_CHUNK_RESULTS), name=JOIN_AGENT)
    async def join_agent(stream: StreamT) -> None:
        async for event in stream.events():
            await joiner.handle(event)

    @app.page("/transcode/chunked/{video_id}")
    class ChunkedJobView(View):
        """A chunked job (``ChunkedJob``, Avro) as the owner of the video's partition holds
        it: what a chunk agent on another worker asks before it encodes a part. Guarded
        and routed like the query views (``agents.queries``)."""

        async def get(self, request: Request, video_id: str) -> Response:
            given = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, b"Bearer " + token):
                return self.json({"error": "internal token required"}, status=401)
            if not queries.is_ready(app):
                return self.json({"error": "rebalancing"}, status=503, headers=_RETRY)
            try:
                url = owners.owner_of(jobs, video_id)
                if url is None:
                    job = jobs.get(video_id)
                    body = b"" if job is None else deps.codec.encode(job)
                elif request.query.get(queries.FORWARDED):
                    raise queries.Unavailable("moved while forwarded (rebalancing)")
                else:
                    body = await owners.fetch(url, request.url.path, []) or b""
            except queries.Unavailable as exc:
                return self.json({"error": str(exc)}, status=503, headers=_RETRY)
            return self.bytes(
                body, status=200 if body else 404, content_type=queries.AVRO_CONTENT_TYPE
            )


class JobLookup:
    """A chunked job's state from wherever it lives: this worker's table when it owns the
    video's partition, else the owner's view."""

    def __init__(self, jobs: TypedTable[ChunkedJob], owners: queries.Queries, deps: Deps) -> None:
        self.jobs = jobs
        self.owners = owners
        self.deps = deps

    async def get(self, video_id: str) -> ChunkedJob | None:
        """The job (None: the owner has none); raises queries.Unavailable when nobody can
        say now (rebalancing, the owner unreachable)."""
        url = self.owners.owner_of(self.jobs, video_id)
        if url is None:
            return self.jobs.get(video_id)
        body = await self.owners.fetch(url, f"/transcode/chunked/{video_id}", [])
        return None if body is None else self.deps.codec.decode_as(body, ChunkedJob)


# --------------------------------------------------------------------------- chunk agent


class ChunkRunner:
    """Encodes parts for one worker; holds collaborators only (state is in the topics)."""

    def __init__(
        self, topology: Topology, deps: Deps, settings: Settings, lookup: JobLookup
    ) -> None:
        t = settings.transcode
        self.lookup = lookup
        self.topology = topology
        self.deps = deps
        self.settings = t
        self.policy = RetryPolicy(
            max_attempts=t.max_attempts,
            base_seconds=t.backoff_base_seconds,
            cap_seconds=max(t.backoff_base_seconds, t.backoff_max_seconds),
        )
        self.scratch_root = t.scratch_dir or Path(tempfile.gettempdir())
        self.partitions = catalogue.TRANSCODE_CHUNKS.partitions or settings.kafka.partitions
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self._rng = random.SystemRandom()

    async def handle(self, event: EventT) -> None:
        metrics.observe_consumed(CHUNK_AGENT, event.message.topic, event.message.timestamp)
        try:
            chunk: TranscodeChunk = self.deps.codec.decode(event.value, expect=("TranscodeChunk",))
        except CodecError as exc:
            await dead_letter(self.topology, self.deps, event, exc)
            return
        if await self._abandoned(chunk):
            return
        delay = (chunk.not_before - self.deps.clock.now()).total_seconds()
        if delay > 0:
            await asyncio.sleep(min(delay, self.policy.cap_seconds))
        with metrics.TRANSCODE_CHUNKS_IN_FLIGHT.track_inprogress():
            await self._attempt(event, chunk)

    async def _abandoned(self, chunk: TranscodeChunk) -> bool:
        """Whether the part is not needed: its job has ended or moved on, or the part is
        already encoded (a redelivery after a crash: Faust commits offsets now and then,
        so a part finished just before a worker died comes back). False when the owner
        cannot be asked: the part is encoded, a wasted encode but never a lost one."""
        try:
            job = await self.lookup.get(chunk.video_id)
        except queries.Unavailable as exc:
            log.info("cannot ask about %s (%s); encoding it", chunk.video_id, exc)
            return False
        why = chunks.skip_part(job, chunk)
        if why is not None:
            log.info("skipping %s part %s%d: %s", chunk.video_id, chunk.kind, chunk.index, why)
        return why is not None

    async def _attempt(self, event: EventT, chunk: TranscodeChunk) -> None:
        log.info(
            "encoding %s part %s%d (job %s, try %d)",
            chunk.video_id,
            chunk.kind,
            chunk.index,
            chunk.job_id,
            chunk.chunk_attempt,
        )
        try:
            await self._run(chunk)
        except MediaError as exc:
            log.warning(
                "part %s%d of %s failed: %s %s",
                chunk.kind,
                chunk.index,
                chunk.video_id,
                exc,
                exc.detail,
            )
            if exc.transient:
                await self._retry_or_fail(event, chunk, exc.reason, exc.message, exc)
            else:
                await self._fail(chunk, exc.reason, exc.message)
        except TRANSIENT_ERRORS as exc:
            log.warning(
                "part %s%d of %s failed transiently: %r",
                chunk.kind,
                chunk.index,
                chunk.video_id,
                exc,
            )
            reason = FailureReason.TRANSCODE_FAILED
            await self._retry_or_fail(event, chunk, reason, describe(reason), exc)

    async def _run(self, chunk: TranscodeChunk) -> None:
        started = time.monotonic()
        workspace = await asyncio.to_thread(scratch.ScratchDir, self.scratch_root)
        try:
            source = await self._source(chunk)
            progress = _PartProgress(self, chunk)
            out_dir = workspace.path / "part"
            transcoder = self.deps.transcoder
            if chunk.kind == chunks.AUDIO:
                output = await transcoder.encode_audio(
                    source,
                    out_dir,
                    chunk.probe,
                    chunk.renditions,
                    str(len(chunk.renditions)),
                    on_progress=progress.encoding,
                )
            else:
                output = await transcoder.encode_chunk(
                    source,
                    out_dir,
                    chunk.probe,
                    chunk.renditions,
                    chunks.rate_of(chunk),
                    chunk.segment_seconds,
                    chunks.span_of(chunk),
                    on_progress=progress.encoding,
                )
            await self._upload(chunk, out_dir, [f.path for f in output.files])
            wall = time.monotonic() - started
            encoded = chunks.encoded_of(chunk, output, wall, self.worker, self.deps.clock.now())
            await self._deliver(catalogue.TRANSCODE_CHUNK_RESULTS, chunk.video_id, encoded)
            metrics.TRANSCODE_CHUNK_SECONDS.labels(chunk.kind.lower()).observe(wall)
            log.info(
                "part %s%d of %s done in %.1f s (%.1f s of media)",
                chunk.kind,
                chunk.index,
                chunk.video_id,
                wall,
                output.encoded_seconds,
            )
        finally:
            await asyncio.to_thread(workspace.remove)

    async def _source(self, chunk: TranscodeChunk) -> Source:
        store = self.deps.object_store
        info = await store.head(chunk.source_key)
        if info is None:
            raise MediaError(FailureReason.SOURCE_MISSING, detail=chunk.source_key)
        expires_in = int(
            self.settings.timeout_seconds
            + self.settings.timeout_per_source_second * (chunk.probe.duration_seconds or 0.0)
            + _SOURCE_URL_MARGIN_SECONDS
        )
        url = await store.presign_get(
            chunk.source_key, min(expires_in, 7 * 24 * 3600), internal=True
        )
        return RemoteSource(url, info.size)

    async def _upload(self, chunk: TranscodeChunk, out_dir: Path, files: Sequence[Path]) -> None:
        gate = asyncio.Semaphore(_UPLOAD_CONCURRENCY)
        store = self.deps.object_store

        async def one(path: Path) -> None:
            key = chunk.output_prefix + path.as_posix()
            async with gate:
                await store.upload_file(
                    out_dir / path, key, tx.content_type(key), cache_control=tx.cache_control(key)
                )

        tasks = [asyncio.create_task(one(path)) for path in files]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _retry_or_fail(
        self,
        event: EventT,
        chunk: TranscodeChunk,
        reason: FailureReason,
        message: str,
        error: Exception,
    ) -> None:
        now = self.deps.clock.now()
        if not self.policy.can_retry(chunk.chunk_attempt):
            final = f"{message} (gave up on part {chunk.index} after {chunk.chunk_attempt} tries)"
            await dead_letter(self.topology, self.deps, event, error, acknowledged=True)
            await self._fail(chunk, reason, final)
            return
        delay = self.policy.delay(chunk.chunk_attempt, self._rng)
        log.info(
            "retrying part %s%d of %s as try %d in %.2f s",
            chunk.kind,
            chunk.index,
            chunk.video_id,
            chunk.chunk_attempt + 1,
            delay,
        )
        # The next try first: if we die between the two sends, the redelivered part (still
        # this try) simply runs again.
        retry = chunks.retry_chunk(chunk, now, delay)
        partition = chunks.message_partition(
            retry, partition_of(retry.video_id.encode(), self.partitions), self.partitions
        )
        await self._deliver(
            catalogue.TRANSCODE_CHUNKS, chunks.message_key(retry), retry, partition=partition
        )
        failed = chunks.failed_of(chunk, reason.value, message, False, now)
        await self._deliver(catalogue.TRANSCODE_CHUNK_RESULTS, chunk.video_id, failed)
        metrics.TRANSCODE_CHUNK_RETRIES.inc()

    async def _fail(self, chunk: TranscodeChunk, reason: FailureReason, message: str) -> None:
        failed = chunks.failed_of(chunk, reason.value, message, True, self.deps.clock.now())
        await self._deliver(catalogue.TRANSCODE_CHUNK_RESULTS, chunk.video_id, failed)

    async def _deliver(
        self, spec: catalogue.TopicSpec, key: str, record: Any, *, partition: int | None = None
    ) -> None:
        pending = await self.topology.topic(spec).send(
            key=key.encode(), value=self.deps.codec.encode(record), partition=partition
        )
        await pending

    async def send(self, spec: catalogue.TopicSpec, key: str, record: Any) -> None:
        await self.topology.topic(spec).send(key=key.encode(), value=self.deps.codec.encode(record))


class _PartProgress:
    """ChunkProgress for one part, at most about once a second."""

    def __init__(self, runner: ChunkRunner, chunk: TranscodeChunk) -> None:
        self._runner = runner
        self._chunk = chunk
        self._last_sent = -float("inf")

    async def encoding(self, update: EncodeProgress) -> None:
        limit = self._runner.settings.max_duration_seconds
        if update.out_time_seconds > limit:
            raise MediaError(
                FailureReason.TOO_LONG, f"the video is longer than the limit of {limit:.0f} s"
            )
        now = time.monotonic()
        if not update.finished and now - self._last_sent < _PROGRESS_INTERVAL_SECONDS:
            return
        self._last_sent = now
        record = chunks.progress_of(
            self._chunk,
            uuid.uuid4().hex,
            update.out_time_seconds,
            update.speed,
            self._runner.deps.clock.now(),
        )
        await self._runner.send(catalogue.TRANSCODE_CHUNK_RESULTS, self._chunk.video_id, record)


# --------------------------------------------------------------------------- join agent


class JoinRunner:
    """Folds chunk results into the table and joins; the owner of the video's partition."""

    def __init__(
        self, topology: Topology, deps: Deps, table: TableT[Any, Any], policy: RetryPolicy
    ) -> None:
        self.topology = topology
        self.deps = deps
        self.table = table
        self.jobs = TypedTable(table, deps.codec, ChunkedJob)
        self.policy = policy
        self._rng = random.SystemRandom()
        # When progress was last published per video: a throttle, not state (a restarted
        # worker publishes the next report at once).
        self._last_progress: dict[str, float] = {}

    async def handle(self, event: EventT) -> None:
        metrics.observe_consumed(JOIN_AGENT, event.message.topic, event.message.timestamp)
        try:
            change = self.deps.codec.decode(event.value, expect=RESULT_RECORDS)
        except CodecError as exc:
            await dead_letter(self.topology, self.deps, event, exc)
            return
        before = self.jobs.get(change.video_id)
        after = chunks.apply(before, change)
        if isinstance(change, ChunkEncoded):
            await self._keep_or_remove(before, after, change)
        if after is not None and after is not before:
            self._write(after)
        if after is None:
            return
        if isinstance(change, TranscodeChunked):
            new_plan = before is None or (before.job_id, before.attempt) != (
                after.job_id,
                after.attempt,
            )
            if new_plan:
                await self._publish_progress(after, tx.Step.QUEUED, force=True)
            return
        if after.status == chunks.JobStatus.FAILED and (
            before is None or before.status != chunks.JobStatus.FAILED
        ):
            await self._fail(after)
        elif chunks.ready_to_join(after):
            await self._join(after)
        elif after is not before:
            await self._progress(after, force=isinstance(change, ChunkEncoded | ChunkFailed))

    def _write(self, job: ChunkedJob) -> None:
        self.jobs.put(job.video_id, job)

    async def _keep_or_remove(
        self, before: ChunkedJob | None, after: ChunkedJob | None, result: ChunkEncoded
    ) -> None:
        """Keep a result of the running job; remove the files of a job that failed."""
        if after is None or (after.job_id, after.attempt) != (result.job_id, result.attempt):
            return  # another job's (or an unknown one's): its names may be the current job's
        if after.status == chunks.JobStatus.FAILED:
            keys = [after.output_prefix + f.path for f in result.files]
            log.info(
                "removing %d file(s) of part %d of failed job %s",
                len(keys),
                result.index,
                result.job_id,
            )
            await self._delete(keys)
            return
        if after.status != chunks.JobStatus.ENCODING:
            return  # a redelivered result after the join: the package has it
        key = chunks.part_key(result.video_id, result.kind, result.index).encode()
        if after is not before or key not in self.table:
            self.table[key] = self.deps.codec.encode(result)

    async def _progress(self, job: ChunkedJob, *, force: bool = False) -> None:
        now = time.monotonic()
        last = self._last_progress.get(job.video_id, -float("inf"))
        if not force and now - last < _PROGRESS_INTERVAL_SECONDS:
            return
        self._last_progress[job.video_id] = now
        report = chunks.encoding_progress(job, self.deps.clock.now())
        step = tx.Step.ENCODING if report.done or report.encoding else tx.Step.QUEUED
        await self._publish_progress(job, step, report=report)

    async def _publish_progress(
        self,
        job: ChunkedJob,
        step: tx.Step,
        *,
        report: chunks.EncodingProgress | None = None,
        force: bool = False,
    ) -> None:
        percent = report.percent if report is not None else 0.0
        eta = report.eta_seconds if report is not None else None
        renditions = (
            [(name, percent) for name in job.renditions] if step == tx.Step.ENCODING else []
        )
        event = tx.progress_event(
            job, uuid.uuid4().hex, step, percent, self.deps.clock.now(), eta, renditions
        )
        await self.topology.topic(catalogue.TRANSCODE_PROGRESS).send(
            key=job.video_id.encode(), value=self.deps.codec.encode(event)
        )

    async def _join(self, job: ChunkedJob) -> None:
        started = time.monotonic()
        await self._publish_progress(job, tx.Step.FINALIZING)
        try:
            results = self._results(job)
            package = chunks.join(job, results)
        except ManifestError as exc:
            log.error("cannot join job %s: %s", job.job_id, exc)
            reason = FailureReason.TRANSCODE_FAILED
            failed = chunks.failed_job(job, reason.value, describe(reason))
            self._write(failed)
            await self._fail(failed)
            return
        manifest_key = job.output_prefix + tx.MANIFEST_NAME
        names = {f.path.as_posix() for f in package.output.files}
        if not await self._store_manifest(job, manifest_key, package.manifest, names):
            return
        now = self.deps.clock.now()
        # Smallest first, as the one pass announces them.
        for rendition in sorted(
            package.output.renditions, key=lambda r: (r.bandwidth_bps, r.height)
        ):
            record = tx.rendition_record(rendition, package.output.files)
            await self._deliver(tx.rendition_ready_event(job, record, manifest_key, now))
        wall = (now - job.planned_at).total_seconds()
        duration = package.output.duration_seconds or job.duration_seconds
        await self._deliver(
            tx.succeeded_event(job, package.output, duration, wall, now, job.thumbnail_key)
        )
        self._write(chunks.joined(job))
        self._forget(job)
        metrics.TRANSCODE_DURATION_SECONDS.observe(wall)
        if package.output.cpu_seconds:
            metrics.TRANSCODE_CPU_SECONDS.observe(package.output.cpu_seconds)
        if duration and wall > 0:
            metrics.TRANSCODE_SPEED.observe(duration / wall)
        log.info(
            "joined %d part(s) of job %s in %.2f s (%.1f s since planned)",
            len(results),
            job.job_id,
            time.monotonic() - started,
            wall,
        )

    async def _store_manifest(
        self, job: ChunkedJob, key: str, manifest: str, names: set[str]
    ) -> bool:
        """Write the manifest (every file it lists is stored: each part uploaded its files
        before reporting) and remove what an earlier, different output left; retried with
        backoff while the store is unavailable, then the job fails."""
        attempt = 1
        while True:
            try:
                await self.deps.object_store.put_bytes(
                    key, manifest.encode(), tx.content_type(tx.MANIFEST_NAME)
                )
                await self._remove_stale(job, names | {tx.MANIFEST_NAME, tx.POSTER_NAME})
                return True
            except ObjectStoreError as exc:
                if not self.policy.can_retry(attempt):
                    log.error("join of %s gave up writing to the store: %s", job.job_id, exc)
                    reason = FailureReason.TRANSCODE_FAILED
                    message = f"{describe(reason)} (the object store failed {attempt} times)"
                    failed = chunks.failed_job(job, reason.value, message)
                    self._write(failed)
                    await self._fail(failed)
                    return False
                delay = self.policy.delay(attempt, self._rng)
                log.warning("join of %s: store error %s; again in %.1f s", job.job_id, exc, delay)
                await asyncio.sleep(delay)
                attempt += 1

    def _results(self, job: ChunkedJob) -> list[ChunkEncoded]:
        results = []
        for part in job.parts:
            raw = self.table.get(chunks.part_key(job.video_id, part.kind, part.index).encode())
            result = None if raw is None else self.deps.codec.decode(raw, expect=("ChunkEncoded",))
            if result is None or (result.job_id, result.attempt) != (job.job_id, job.attempt):
                raise ManifestError(f"part {part.kind}{part.index} has no stored result")
            results.append(result)
        return results

    def _forget(self, job: ChunkedJob) -> None:
        """Drop the parts' results from the table (the package has what they said)."""
        for part in job.parts:
            key = chunks.part_key(job.video_id, part.kind, part.index).encode()
            if key in self.table:
                del self.table[key]
        self._last_progress.pop(job.video_id, None)

    async def _fail(self, job: ChunkedJob) -> None:
        reason = job.error_code or FailureReason.TRANSCODE_FAILED.value
        message = job.error_message or describe(FailureReason.TRANSCODE_FAILED)
        log.warning("chunked job %s failed: %s %s", job.job_id, reason, message)
        await self._deliver(tx.failed_event(job, reason, message, True, self.deps.clock.now()))
        self._forget(job)
        try:
            removed = await self.deps.object_store.delete_prefix(job.output_prefix)
        except ObjectStoreError as exc:
            log.warning("could not remove the output of failed job %s: %s", job.job_id, exc)
            return
        if removed:
            log.info("removed %d object(s) of failed job %s", removed, job.job_id)
        metrics.TRANSCODE_FAILURES.labels(reason).inc()

    async def _remove_stale(self, job: ChunkedJob, names: set[str]) -> None:
        stale = [
            info.key
            for info in await self.deps.object_store.list(job.output_prefix)
            if info.key[len(job.output_prefix) :] not in names
        ]
        if stale:
            log.info("removing %d stale object(s) under %s", len(stale), job.output_prefix)
            await self.deps.object_store.delete(stale)

    async def _delete(self, keys: Sequence[str]) -> None:
        try:
            await self.deps.object_store.delete(keys)
        except (ObjectStoreError, ObjectNotFound) as exc:
            log.warning("could not remove %d object(s): %s", len(keys), exc)

    async def _deliver(self, record: Any) -> None:
        pending = await self.topology.topic(catalogue.TRANSCODE_PROGRESS).send(
            key=record.video_id.encode(), value=self.deps.codec.encode(record)
        )
        await pending
