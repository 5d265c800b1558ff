"""faust_fixes: Faust's producer buffer flush waits for every table change it holds.

Faust flushes this buffer (table changelog writes) before it commits offsets. Faust's own
``ProducerBuffer`` is used with a channel whose hand-over is slow, as the first send to a
topic is while aiokafka fetches its metadata.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from types import SimpleNamespace

import pytest
from faust.transport.producer import ProducerBuffer

from tritontube.agents import faust_fixes

HAND_OVER_SECONDS = 0.3  # longer than the 0.1 s Faust's flush waits for one message


class SlowChannel:
    def __init__(self) -> None:
        self.sent: list[int] = []
        self.handing_over = asyncio.Event()

    async def publish_message(self, fut: SimpleNamespace, wait: bool = False) -> None:
        self.handing_over.set()
        await asyncio.sleep(HAND_OVER_SECONDS)
        self.sent.append(fut.n)


@pytest.fixture
def patched() -> Iterator[None]:
    was_applied = ProducerBuffer.flush is faust_fixes._flush_buffer
    faust_fixes.apply()
    yield
    if not was_applied:
        faust_fixes.remove()


@pytest.fixture
async def buffer() -> AsyncIterator[ProducerBuffer]:
    buffer = ProducerBuffer()
    buffer.app = SimpleNamespace(conf=SimpleNamespace(producer_threaded=False))  # type: ignore[assignment]
    await buffer.start()
    yield buffer
    await buffer.flush()
    await buffer.stop()


def put(buffer: ProducerBuffer, channel: SlowChannel, n: int) -> None:
    buffer.put(SimpleNamespace(n=n, message=SimpleNamespace(channel=channel)))  # type: ignore[arg-type]


async def test_flush_returns_only_once_every_queued_message_is_handed_over(
    patched: None, buffer: ProducerBuffer
) -> None:
    channel = SlowChannel()
    for n in range(3):
        put(buffer, channel, n)
    await buffer.flush()
    assert channel.sent == [0, 1, 2]
    assert buffer.size == 0


async def test_flush_waits_for_the_message_taken_from_the_queue(
    patched: None, buffer: ProducerBuffer
) -> None:
    channel = SlowChannel()
    put(buffer, channel, 7)
    await channel.handing_over.wait()  # taken from the queue: the buffer's size is 0
    assert buffer.size == 0
    await buffer.flush()
    assert channel.sent == [7]


async def test_faust_alone_returns_with_messages_unsent(buffer: ProducerBuffer) -> None:
    # The defect itself, so that this file fails if an upgrade fixes or changes it.
    was_applied = ProducerBuffer.flush is faust_fixes._flush_buffer
    faust_fixes.remove()
    try:
        channel = SlowChannel()
        for n in range(3):
            put(buffer, channel, n)
        await buffer.flush()
        assert channel.sent == [] and buffer.size > 0
    finally:
        await faust_fixes._flush_buffer(buffer)  # drain before the buffer stops
        if was_applied:
            faust_fixes.apply()
        else:
            faust_fixes.remove()
