"""Publishing events from the API: acknowledged by the broker before the API answers."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from tritontube.streams import catalogue
from tritontube.streams.catalogue import TopicSpec
from tritontube.streams.records import EventCodec

log = logging.getLogger(__name__)

# Published at DEBUG: one line per viewer heartbeat would drown everything else.
_HIGH_VOLUME = frozenset({catalogue.WATCH_EVENTS.name})


class BrokerUnavailableError(Exception):
    """The event could not be acknowledged by the broker; nothing was accepted."""


class EventPublisher:
    """Encodes domain events and waits for the broker's acknowledgement (acks=all).

    The producer starts lazily, so the API comes up (and reports not-ready) while the broker
    is down, and recovers by itself when it returns.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        codec: EventCodec,
        timeout: float = 10.0,
        cooldown: float = 0.0,
    ) -> None:
        self._bootstrap = bootstrap_servers
        self._codec = codec
        self._timeout = timeout
        # After a failed publish, fail at once for `cooldown` seconds: a dead broker must not
        # hold every request for the full timeout (aiokafka buffers and retries silently).
        self._cooldown = cooldown
        self._down_until = 0.0
        self._last_error = ""
        self._producer: AIOKafkaProducer | None = None
        self._stopping: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()

    def _check_circuit(self) -> None:
        if asyncio.get_running_loop().time() < self._down_until:
            raise BrokerUnavailableError(f"broker recently unavailable: {self._last_error}")

    async def _trip(self, exc: BaseException) -> None:
        """Open the circuit and drop the producer: its buffered sends must never go out late.

        The dropped producer is stopped in the background (its stop waits for in-flight
        requests, up to the request timeout) so the request that failed is answered at once;
        :meth:`close` waits for those stops, so no producer is ever left unclosed."""
        self._last_error = str(exc) or type(exc).__name__
        self._down_until = asyncio.get_running_loop().time() + self._cooldown
        producer, self._producer = self._producer, None
        if producer is not None:
            self._stop_later(producer)

    def _stop_later(self, producer: AIOKafkaProducer) -> None:
        task = asyncio.create_task(self._stop(producer))
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    async def _stop(self, producer: AIOKafkaProducer) -> None:
        try:
            await producer.stop()
        except (KafkaError, OSError) as stop_exc:
            log.warning("closing the producer after a failure: %r", stop_exc)

    async def _ensure(self) -> AIOKafkaProducer:
        if self._producer is not None:
            return self._producer
        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self._bootstrap,
                    acks="all",
                    request_timeout_ms=int(self._timeout * 1000),
                    retry_backoff_ms=200,
                )
                try:
                    await asyncio.wait_for(producer.start(), self._timeout)
                except (KafkaError, TimeoutError, OSError) as exc:
                    await producer.stop()
                    raise BrokerUnavailableError(str(exc) or type(exc).__name__) from exc
                except asyncio.CancelledError:
                    # A caller's own deadline (readiness probes have one) cancelled the
                    # start: the half-started producer is still stopped, in the background.
                    self._stop_later(producer)
                    raise
                self._producer = producer
            return self._producer

    async def publish(self, topic: TopicSpec, key: str, event: Any) -> None:
        """Publish ``event`` keyed by ``key``; the request's log context names the key (its
        catalogue name, ``video_id`` on every topic the API writes) from here on."""
        structlog.contextvars.bind_contextvars(**{topic.key: key})
        await self.publish_raw(
            topic.name,
            key.encode(),
            self._codec.encode(event),
            level=logging.DEBUG if topic.name in _HIGH_VOLUME else logging.INFO,
            record=type(event).__name__,
        )

    async def publish_raw(
        self,
        topic: str,
        key: bytes,
        value: bytes,
        *,
        level: int = logging.DEBUG,
        record: str = "",
    ) -> None:
        self._check_circuit()
        try:
            producer = await self._ensure()
        except BrokerUnavailableError as exc:
            await self._trip(exc)
            raise
        request_id = structlog.contextvars.get_contextvars().get("request_id")
        headers = [(catalogue.REQUEST_ID_HEADER, str(request_id).encode())] if request_id else None
        try:
            sent = await asyncio.wait_for(
                producer.send_and_wait(topic, value=value, key=key, headers=headers),
                self._timeout,
            )
        except (KafkaError, TimeoutError, OSError) as exc:
            log.warning("publish to %s failed: %r", topic, exc)
            await self._trip(exc)
            raise BrokerUnavailableError(str(exc) or type(exc).__name__) from exc
        log.log(
            level,
            "published %s",
            record or "a record",
            extra={"topic": topic, "partition": sent.partition, "offset": sent.offset},
        )

    async def ping(self) -> None:
        producer = await self._ensure()
        try:
            # A fresh metadata request (not the cached cluster view): a dead broker must fail.
            await asyncio.wait_for(producer.client.fetch_all_metadata(), 3.0)
        except (KafkaError, TimeoutError, OSError) as exc:
            await self._trip(exc)
            raise BrokerUnavailableError(str(exc) or type(exc).__name__) from exc

    async def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()
        if self._stopping:
            await asyncio.gather(*self._stopping)
