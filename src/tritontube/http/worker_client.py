"""Reads video state from the worker that owns it (Faust table routing), over HTTP."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp


class WorkerUnavailableError(Exception):
    """No worker answered, or the worker is still recovering its tables."""


class WorkerClient:
    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=5)

    async def video_state(self, video_id: str) -> dict[str, Any] | None:
        """The video's state as JSON, or None when the worker has no such video."""
        url = f"{self._base}/videos/{video_id}"
        try:
            async with self._session.get(url, timeout=self._timeout) as resp:
                if resp.status == 404:
                    return None
                if resp.status != 200:
                    raise WorkerUnavailableError(f"worker answered {resp.status}")
                data: dict[str, Any] = await resp.json()
                return data
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise WorkerUnavailableError(str(exc) or type(exc).__name__) from exc

    async def wait_for(
        self,
        video_id: str,
        predicate: Any,
        timeout: float = 5.0,
        interval: float = 0.02,
        max_interval: float = 0.25,
    ) -> dict[str, Any] | None:
        """Poll until ``predicate(state)`` holds; the last state seen otherwise.

        The interval doubles up to ``max_interval``: a fold is usually visible within a few
        milliseconds, and many concurrent waiters must not flood the worker with reads.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        state = await self.video_state(video_id)
        while not predicate(state) and loop.time() < deadline:
            await asyncio.sleep(interval)
            interval = min(interval * 2, max_interval)
            state = await self.video_state(video_id)
        return state

    async def ping(self) -> None:
        try:
            async with self._session.get(f"{self._base}/readyz", timeout=self._timeout) as resp:
                if resp.status != 200:
                    raise WorkerUnavailableError(f"worker not ready ({resp.status})")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise WorkerUnavailableError(str(exc) or type(exc).__name__) from exc
