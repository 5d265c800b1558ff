"""The transcode agent: one job at a time from ``transcode-jobs`` to a DASH package in the store.

Per job: decode (bad bytes go to the DLQ); skip it unless the video's state says this job and
attempt are current; wait for ``not_before``; stream the source from the object store (a
pre-signed GET that ffmpeg reads with range requests; or, with ``stream_source`` off, a
download into the private scratch directory); probe, validate and plan; encode every
rendition in ONE ffmpeg pass into the scratch directory while
publishing TranscodeProgress about once a second; upload the smallest rendition (with the
audio) first and an interim manifest listing only what is uploaded, then each larger
rendition, the poster, and the full manifest last; publish RenditionReady per rendition and
TranscodeSucceeded. The scratch directory is removed whatever happens.

Delivery: Faust acks an event of ``stream.events()`` only when the loop body for it has
returned (the ack sits in the ``finally`` after the ``yield``), and commits only acked
offsets. A worker killed mid-job therefore never commits the job's offset; the restarted
worker (or the partition's new owner) gets the job again and redoes it. Every object key is
deterministic, the manifest is always written after the files it lists, and the terminal
events carry per-attempt ids, so the video ends READY once with a consistent manifest. On a
graceful stop or a rebalance Faust waits for the in-flight job (``stream_wait_empty``).

Failures: a MediaError that is not transient fails the video for good with its reason. A
transient one (ffmpeg killed, disk full), an unavailable object store or a broker error is
retried: the next attempt is published first (attempt + 1, ``not_before`` = now + backoff with
jitter), then TranscodeFailed(final=False). After ``max_attempts`` the video fails with the
last reason and the job's message goes to ``transcode-jobs.dlq``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import faust
import structlog
from aiokafka.errors import KafkaError
from faust.types import EventT, StreamT, TopicT

from tritontube import metrics
from tritontube.agents import scratch
from tritontube.agents.dlq import dead_letter
from tritontube.agents.tables import TypedTable
from tritontube.agents.topology import TRANSCODE_CHUNKS_TABLE, Topology
from tritontube.agents.video_state import read_state
from tritontube.deps import Deps
from tritontube.domain import chunks
from tritontube.domain import transcode as tx
from tritontube.domain.events import ChunkedJob, TranscodeChunk, TranscodeJob
from tritontube.domain.media import (
    LADDER,
    DashOutput,
    EncodeProgress,
    FailureReason,
    MediaError,
    OutputFile,
    Probe,
    RenditionSpec,
    describe,
    plan_renditions,
    validate_probe,
)
from tritontube.domain.retry import RetryPolicy
from tritontube.media.port import RemoteSource, Source
from tritontube.settings import Settings
from tritontube.storage.port import ObjectNotFound, ObjectStoreError
from tritontube.streams import catalogue
from tritontube.streams.codec import CodecError
from tritontube.streams.partitioning import partition_of

log = logging.getLogger(__name__)

AGENT_NAME = "transcode"
#: How often a worker sweeps the scratch directories other (dead) workers left behind.
_SWEEP_INTERVAL_SECONDS = 600.0
_SAFE_SUFFIX = re.compile(r"^\.[A-Za-z0-9]{1,5}$")
_PROGRESS_INTERVAL_SECONDS = 1.0
_UPLOAD_CONCURRENCY = 4
_SOURCE_URL_MARGIN_SECONDS = 600
_SOURCE_URL_MAX_SECONDS = 7 * 24 * 3600  # the longest an S3 SigV4 pre-signed URL may live

#: Errors worth another attempt: the input may be fine, the environment was not.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (ObjectStoreError, KafkaError, OSError)


def register(app: faust.App, topology: Topology, deps: Deps, settings: Settings) -> None:
    """Add the transcode agent (one job at a time per worker) and its scratch sweeper."""
    runner = TranscodeRunner(topology, deps, settings)

    @app.agent(topology.topic(catalogue.TRANSCODE_JOBS), name=AGENT_NAME, concurrency=1)
    async def transcode_agent(stream: StreamT) -> None:
        async for event in stream.events():
            await runner.handle(event)

    @app.task
    async def sweep_scratch() -> None:
        """Remove scratch directories left by workers killed mid-job: at start, then
        now and then (another worker on this machine may never come back)."""
        while True:
            try:
                removed = await asyncio.to_thread(scratch.sweep, runner.scratch_root)
            except OSError as exc:  # the root itself unreadable: try again next time
                log.warning("cannot sweep %s: %s", runner.scratch_root, exc)
            else:
                if removed:
                    log.info("removed %d abandoned transcode scratch dir(s)", removed)
            await asyncio.sleep(_SWEEP_INTERVAL_SECONDS)


class TranscodeRunner:
    """Runs jobs for one worker; holds collaborators only (durable state is in the topics)."""

    def __init__(self, topology: Topology, deps: Deps, settings: Settings) -> None:
        t = settings.transcode
        self.topology = topology
        self.deps = deps
        self.settings = t
        self.max_file_bytes = settings.upload.max_size_bytes
        self.policy = RetryPolicy(
            max_attempts=t.max_attempts,
            base_seconds=t.backoff_base_seconds,
            cap_seconds=max(t.backoff_base_seconds, t.backoff_max_seconds),
        )
        self.scratch_root = t.scratch_dir or Path(tempfile.gettempdir())
        self.partitions = catalogue.TRANSCODE_CHUNKS.partitions or settings.kafka.partitions
        self._rng = random.SystemRandom()

    # ---- one event

    async def handle(self, event: EventT) -> None:
        metrics.observe_consumed(AGENT_NAME, event.message.topic, event.message.timestamp)
        try:
            job: TranscodeJob = self.deps.codec.decode(event.value, expect=("TranscodeJob",))
        except CodecError as exc:
            await dead_letter(self.topology, self.deps, event, exc)
            return
        structlog.contextvars.bind_contextvars(job_id=job.job_id, attempt=job.attempt)
        if self._skip(job):
            return
        await self._wait_until_due(job)
        if self._skip(job):  # the state may have moved on while we waited
            return
        with metrics.TRANSCODE_IN_FLIGHT.track_inprogress():
            await self._attempt(event, job)

    def _skip(self, job: TranscodeJob) -> bool:
        why = tx.skip_reason(job, read_state(self.topology, self.deps, job.video_id))
        if why is not None:
            log.info("skipping job %s attempt %d: %s", job.job_id, job.attempt, why)
        return why is not None

    async def _wait_until_due(self, job: TranscodeJob) -> None:
        delay = (job.not_before - self.deps.clock.now()).total_seconds()
        if delay > 0:
            # Never longer than the largest backoff we schedule: a bogus not_before must
            # not park the agent.
            await asyncio.sleep(min(delay, self.policy.cap_seconds))

    async def _attempt(self, event: EventT, job: TranscodeJob) -> None:
        log.info("transcoding %s (job %s, attempt %d)", job.video_id, job.job_id, job.attempt)
        try:
            await self._run(job)
        except MediaError as exc:
            log.warning("job %s attempt %d failed: %s %s", job.job_id, job.attempt, exc, exc.detail)
            if exc.transient:
                await self._retry_or_fail(event, job, exc.reason, exc.message, exc)
            else:
                await self._fail(job, exc.reason, exc.message)
        except TRANSIENT_ERRORS as exc:
            log.warning("job %s attempt %d failed transiently: %r", job.job_id, job.attempt, exc)
            reason = FailureReason.TRANSCODE_FAILED
            await self._retry_or_fail(event, job, reason, describe(reason), exc)

    # ---- the job

    async def _run(self, job: TranscodeJob) -> None:
        started = time.monotonic()
        progress = _Progress(self, job)
        workspace = await asyncio.to_thread(scratch.ScratchDir, self.scratch_root)
        folder = workspace.path
        try:
            await progress.publish(tx.Step.PROBING, 0.0, force=True)
            source = await self._source(job, folder)
            probe = await self.deps.transcoder.probe(source)
            validate_probe(
                probe,
                max_duration=self.settings.max_duration_seconds,
                max_pixels=self.settings.max_pixels,
                max_file_bytes=self.max_file_bytes,
            )
            plan = _plan(probe, job.ladder or tuple(self.settings.ladder))
            if self._chunked(probe):
                await progress.publish(tx.Step.PROBING, 100.0, force=True)
                await self._dispatch(job, source, probe, plan, folder)
                return
            await progress.publish(tx.Step.PROBING, 100.0, force=True)
            output = await self.deps.transcoder.transcode(
                source, folder / "dash", plan, probe, on_progress=progress.encoding
            )
            poster = folder / tx.POSTER_NAME
            await self.deps.transcoder.thumbnail(source, poster, probe)
            await self._publish_outputs(job, output, poster, progress)
            wall = time.monotonic() - started
            # What the package plays, not what the container claimed (a truncated upload,
            # an MPEG-TS whose clock restarts mid-file).
            duration = output.duration_seconds or probe.duration_seconds or 0.0
            await self._deliver(
                catalogue.TRANSCODE_PROGRESS,
                job.video_id,
                tx.succeeded_event(
                    job,
                    output,
                    duration,
                    wall,
                    self.deps.clock.now(),
                    job.output_prefix + tx.POSTER_NAME,
                ),
            )
            _observe_success(output, duration, wall)
            log.info("job %s done in %.1f s (%d renditions)", job.job_id, wall, len(plan))
        finally:
            await asyncio.to_thread(workspace.remove)

    def _chunked(self, probe: Probe) -> bool:
        """Cut into chunks: a long source any worker can stream (a download per chunk would
        cost each worker the whole file)."""
        t = self.settings
        return t.stream_source and chunks.should_chunk(
            probe, t.chunk_threshold_seconds, t.chunk_seconds
        )

    async def _dispatch(
        self,
        job: TranscodeJob,
        source: Source,
        probe: Probe,
        renditions: Sequence[RenditionSpec],
        folder: Path,
    ) -> None:
        """Cut a long source into chunks: the poster, the plan (which the join agent waits
        for), one TranscodeChunk per part, then the plan again marked as dispatched. Every
        send is acknowledged before the job's message is. A job redelivered after a crash
        (its offset not yet committed) sends nothing again once its plan was dispatched;
        if the crash came while dispatching, it sends the parts not encoded yet."""
        known = self._known(job)
        if known is not None and known.dispatched:
            log.info("job %s was cut into chunks already", job.job_id)
            return
        chunk_plan = await self.deps.transcoder.plan_chunks(
            source, probe, self.settings.chunk_seconds
        )
        poster = folder / tx.POSTER_NAME
        await self.deps.transcoder.thumbnail(source, poster, probe)
        thumbnail_key = job.output_prefix + tx.POSTER_NAME
        await self._put_file(poster, thumbnail_key)
        now = self.deps.clock.now()
        planned = chunks.planned_event(job, probe, renditions, chunk_plan, thumbnail_key, now)
        await self._deliver(catalogue.TRANSCODE_CHUNK_RESULTS, job.video_id, planned)
        done = (
            {(p.kind, p.index) for p in known.parts if p.status == chunks.PartStatus.DONE}
            if known is not None
            else set()
        )
        topic = self.topic(catalogue.TRANSCODE_CHUNKS)
        pending = [
            await topic.send(
                key=chunks.message_key(part).encode(),
                value=self.deps.codec.encode(part),
                partition=self.chunk_partition(part),
            )
            for part in chunks.chunk_jobs(job, probe, renditions, chunk_plan, now)
            if (part.kind, part.index) not in done
        ]
        await asyncio.gather(*pending)
        await self._deliver(
            catalogue.TRANSCODE_CHUNK_RESULTS, job.video_id, chunks.dispatched_event(planned)
        )
        log.info(
            "job %s cut into %d chunk(s) of about %.0f s (%d part(s) sent)",
            job.job_id,
            len(chunk_plan.spans),
            self.settings.chunk_seconds,
            len(pending),
        )

    def chunk_partition(self, part: TranscodeChunk) -> int:
        return chunks.message_partition(
            part, partition_of(part.video_id.encode(), self.partitions), self.partitions
        )

    def _known(self, job: TranscodeJob) -> ChunkedJob | None:
        """This very attempt's chunked state in the owner's table, if it was planned."""
        state = TypedTable(
            self.topology.tables[TRANSCODE_CHUNKS_TABLE], self.deps.codec, ChunkedJob
        ).get(job.video_id)
        if state is None or (state.job_id, state.attempt) != (job.job_id, job.attempt):
            return None
        return state

    async def _source(self, job: TranscodeJob, folder: Path) -> Source:
        store = self.deps.object_store
        info = await store.head(job.source_key)
        if info is None:
            raise MediaError(FailureReason.SOURCE_MISSING, detail=job.source_key)
        if info.size == 0:
            raise MediaError(FailureReason.EMPTY_FILE)
        if info.size > self.max_file_bytes:
            raise MediaError(FailureReason.TOO_LARGE_FILE)
        if not self.settings.stream_source:
            return await self._download(job, folder)
        # Valid for the whole job: probe, the encode (bounded by the timeout), the poster.
        expires_in = min(
            int(self.settings.longest_run_seconds) + _SOURCE_URL_MARGIN_SECONDS,
            _SOURCE_URL_MAX_SECONDS,
        )
        url = await store.presign_get(job.source_key, expires_in, internal=True)
        return RemoteSource(url, info.size)

    async def _download(self, job: TranscodeJob, folder: Path) -> Path:
        store = self.deps.object_store
        # Keep a sane extension: ffprobe uses it as a demuxer hint.
        suffix = PurePosixPath(job.source_key).suffix
        source = folder / f"source{suffix if _SAFE_SUFFIX.match(suffix) else ''}"
        try:
            await store.download(job.source_key, source)
        except ObjectNotFound as exc:
            raise MediaError(FailureReason.SOURCE_MISSING, detail=job.source_key) from exc
        return source

    async def _publish_outputs(
        self, job: TranscodeJob, output: DashOutput, poster: Path, progress: _Progress
    ) -> None:
        """Files first, a manifest after each batch (listing only uploaded renditions, the
        full one last), RenditionReady per rendition, the poster before the final manifest."""
        out_dir = output.manifest.parent
        full_manifest = await asyncio.to_thread(output.manifest.read_text)
        manifest_key = job.output_prefix + tx.MANIFEST_NAME
        uploads = _UploadMeter(output.total_bytes, progress)
        await uploads.start()
        batches = tx.plan_uploads(output)
        stored = await self._stored_manifest(manifest_key, full_manifest)
        uploaded: set[str] = set()
        for index, batch in enumerate(batches):
            await self._upload_files(job, out_dir, batch.files, uploads)
            uploaded.update(f.path.as_posix() for f in batch.files)
            last = index == len(batches) - 1
            if last:
                await progress.publish(tx.Step.FINALIZING, 0.0, force=True)
                await self._put_file(poster, job.output_prefix + tx.POSTER_NAME)
                manifest: str | None = full_manifest
            else:
                ready = [r.representation_id for r in batch.ready]
                replace = tx.interim_may_replace(ready, stored)
                manifest = tx.interim_manifest(full_manifest, ready) if replace else None
            if manifest is not None:
                _check_complete(manifest, uploaded)
                await self.deps.object_store.put_bytes(
                    manifest_key, manifest.encode(), tx.content_type(tx.MANIFEST_NAME)
                )
            if batch.announce is not None:
                record = tx.rendition_record(batch.announce, output.files)
                await self._deliver(
                    catalogue.TRANSCODE_PROGRESS,
                    job.video_id,
                    tx.rendition_ready_event(job, record, manifest_key, self.deps.clock.now()),
                )
        await self._remove_stale(job, uploaded | {tx.MANIFEST_NAME, tx.POSTER_NAME})
        await progress.publish(tx.Step.FINALIZING, 100.0, force=True)

    async def _stored_manifest(self, key: str, full: str) -> str | None:
        """The manifest stored under ``key``; ``full`` (so no interim one replaces it)
        when the store cannot say: not worth losing the encode over."""
        try:
            data = await self.deps.object_store.get_bytes(key)
        except ObjectNotFound:
            return None
        except ObjectStoreError as exc:
            log.warning("cannot read %s (%s): no interim manifests this time", key, exc)
            return full
        return data.decode("utf-8", errors="replace")

    async def _upload_files(
        self,
        job: TranscodeJob,
        out_dir: Path,
        files: Sequence[OutputFile],
        meter: _UploadMeter,
    ) -> None:
        gate = asyncio.Semaphore(_UPLOAD_CONCURRENCY)

        async def one(item: OutputFile) -> None:
            async with gate:
                await self._put_file(out_dir / item.path, job.output_prefix + item.path.as_posix())
            await meter.add(item.size_bytes)

        tasks = [asyncio.create_task(one(item)) for item in files]
        try:
            await asyncio.gather(*tasks)
        finally:
            # On the first failure stop the rest; its error is the one that propagates.
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _put_file(self, path: Path, key: str) -> None:
        await self.deps.object_store.upload_file(
            path, key, tx.content_type(key), cache_control=tx.cache_control(key)
        )

    async def _remove_stale(self, job: TranscodeJob, names: set[str]) -> None:
        """Objects under the prefix that this package does not contain (an earlier, different
        output) would only confuse; the manifest never references them, so delete them."""
        stale = [
            info.key
            for info in await self.deps.object_store.list(job.output_prefix)
            if info.key[len(job.output_prefix) :] not in names
        ]
        if stale:
            log.info("removing %d stale object(s) under %s", len(stale), job.output_prefix)
            await self.deps.object_store.delete(stale)

    # ---- failures

    async def _retry_or_fail(
        self,
        event: EventT,
        job: TranscodeJob,
        reason: FailureReason,
        message: str,
        error: Exception,
    ) -> None:
        now = self.deps.clock.now()
        if not self.policy.can_retry(job.attempt):
            final_message = f"{message} (gave up after {job.attempt} attempts)"
            # The dead letter first: FAILED is terminal, so a job redelivered after dying
            # between the two would be skipped and never reach the DLQ; the other way round
            # it runs its last attempt again.
            await dead_letter(self.topology, self.deps, event, error, acknowledged=True)
            await self._fail(job, reason, final_message)
            return
        delay = self.policy.delay(job.attempt, self._rng)
        log.info("retrying job %s as attempt %d in %.2f s", job.job_id, job.attempt + 1, delay)
        # The next attempt first: if we die between the two sends, the redelivered job
        # (still the current attempt) simply runs again.
        await self._deliver(catalogue.TRANSCODE_JOBS, job.video_id, tx.retry_job(job, now, delay))
        await self._deliver(
            catalogue.TRANSCODE_PROGRESS,
            job.video_id,
            tx.failed_event(job, reason.value, message, final=False, now=now),
        )
        metrics.TRANSCODE_RETRIES.inc()

    async def _fail(self, job: TranscodeJob, reason: FailureReason, message: str) -> None:
        await self._deliver(
            catalogue.TRANSCODE_PROGRESS,
            job.video_id,
            tx.failed_event(job, reason.value, message, final=True, now=self.deps.clock.now()),
        )
        metrics.TRANSCODE_FAILURES.labels(reason.value).inc()

    # ---- publishing

    def topic(self, spec: catalogue.TopicSpec) -> TopicT:
        return self.topology.topic(spec)

    async def _deliver(self, spec: catalogue.TopicSpec, video_id: str, record: Any) -> None:
        """Send and wait for the broker's acknowledgement (results must not be lost)."""
        pending = await self.topic(spec).send(
            key=video_id.encode(), value=self.deps.codec.encode(record)
        )
        await pending

    async def send(self, spec: catalogue.TopicSpec, video_id: str, record: Any) -> None:
        """Send without waiting for delivery (progress: a lost one is superseded)."""
        await self.topic(spec).send(key=video_id.encode(), value=self.deps.codec.encode(record))


class _Progress:
    """TranscodeProgress for one job, at most about once a second except on step changes."""

    def __init__(self, runner: TranscodeRunner, job: TranscodeJob) -> None:
        self._runner = runner
        self._job = job
        self._last_sent = -float("inf")
        self._last_percent = 0.0

    async def publish(
        self,
        step: tx.Step,
        step_percent: float,
        eta_seconds: float | None = None,
        renditions: Sequence[tuple[str, float]] = (),
        *,
        force: bool = False,
    ) -> None:
        now = time.monotonic()
        if not force and now - self._last_sent < _PROGRESS_INTERVAL_SECONDS:
            return
        event = tx.progress_event(
            self._job,
            uuid.uuid4().hex,
            step,
            step_percent,
            self._runner.deps.clock.now(),
            eta_seconds,
            renditions,
        )
        if event.percent < self._last_percent:
            return
        self._last_percent, self._last_sent = event.percent, now
        await self._runner.send(catalogue.TRANSCODE_PROGRESS, self._job.video_id, event)

    async def encoding(self, update: EncodeProgress) -> None:
        # A source may not declare its duration (a live-style stream); the limit still holds:
        # stop as soon as the encode passes it (ffmpeg is killed with its process group).
        limit = self._runner.settings.max_duration_seconds
        if update.out_time_seconds > limit:
            raise MediaError(
                FailureReason.TOO_LONG,
                f"the video is longer than the limit of {limit:.0f} s",
            )
        await self.publish(
            tx.Step.ENCODING,
            update.percent,
            update.eta_seconds,
            update.renditions,
            force=update.finished,
        )


class _UploadMeter:
    """UPLOADING progress by bytes, with an ETA from the observed rate."""

    def __init__(self, total_bytes: int, progress: _Progress) -> None:
        self._total = max(1, total_bytes)
        self._done = 0
        self._progress = progress
        self._started = time.monotonic()

    async def start(self) -> None:
        self._started = time.monotonic()
        await self._progress.publish(tx.Step.UPLOADING, 0.0, force=True)

    async def add(self, size: int) -> None:
        self._done += size
        elapsed = time.monotonic() - self._started
        rate = self._done / elapsed if elapsed > 0 else 0.0
        eta = (self._total - self._done) / rate if rate > 0 else None
        await self._progress.publish(tx.Step.UPLOADING, 100.0 * self._done / self._total, eta)


def _plan(probe: Probe, names: Sequence[str]) -> tuple[RenditionSpec, ...]:
    try:
        return plan_renditions(probe, LADDER, names=names)
    except ValueError as exc:  # unknown rendition names: a bad job, not a bad input
        raise MediaError(FailureReason.TRANSCODE_FAILED, detail=str(exc)) from exc


def _check_complete(manifest: str, uploaded: set[str]) -> None:
    missing = [name for name in tx.referenced_files(manifest) if name not in uploaded]
    if missing:
        raise MediaError(
            FailureReason.TRANSCODE_FAILED,
            detail=f"manifest references {len(missing)} file(s) not produced: {missing[:5]}",
        )


def _observe_success(output: DashOutput, duration: float, wall: float) -> None:
    metrics.TRANSCODE_DURATION_SECONDS.observe(wall)
    if output.cpu_seconds is not None:
        metrics.TRANSCODE_CPU_SECONDS.observe(output.cpu_seconds)
    if duration > 0 and output.wall_seconds > 0:
        metrics.TRANSCODE_SPEED.observe(duration / output.wall_seconds)
