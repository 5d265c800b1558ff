"""The API's one client of the workers: typed reads of the tables, whichever worker answers.

Every method returns domain types decoded by the shared codec from the worker's Avro answers
(``agents.queries``). Any worker of the group will do: it forwards a keyed read to the
partition's owner and fans out a read over all partitions itself. The client starts from
``settings.worker_seed_urls()``, learns every member from ``/cluster`` (checking it is the
group of these settings), and moves on to the next member when one does not answer, so a
worker that dies costs a retry, not an outage.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

import aiohttp

from tritontube.domain import analytics as an
from tritontube.domain.events import VideoState
from tritontube.domain.queries import (
    OwnerVideosPage,
    TrendingAnswer,
    VideoStateBatch,
    WorkerCluster,
)
from tritontube.domain.queue import QueuePosition
from tritontube.settings import Settings
from tritontube.streams.codec import CodecError
from tritontube.streams.records import EventCodec

log = logging.getLogger(__name__)

MAX_BATCH = 100  # ids per /video-states request (the worker's limit)
_MEMBERS_TTL_SECONDS = 30.0


class WorkerUnavailableError(Exception):
    """No worker could answer completely now (down, rebalancing, recovering tables)."""


class WorkerQueryError(Exception):
    """A worker refused the query itself (a bug on our side, not an outage)."""


class WorkerClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        settings: Settings,
        codec: EventCodec,
        *,
        timeout_seconds: float = 5.0,
    ) -> None:
        self._session = session
        self._codec = codec
        self._app_id = settings.worker.app_id
        self._seeds = settings.worker_seed_urls()
        self._headers = {"Authorization": f"Bearer {settings.internal_token().get_secret_value()}"}
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._members: tuple[str, ...] = ()
        self._members_at = -_MEMBERS_TTL_SECONDS
        self._preferred = 0

    # -- typed reads ----------------------------------------------------------------------
    async def video_state(self, video_id: str) -> VideoState | None:
        body = await self._get(f"/videos/{video_id}")
        return None if body is None else self._codec.decode_as(body, VideoState)

    async def video_states(self, video_ids: Sequence[str]) -> list[VideoState]:
        """The states of those ids that exist, in the order given."""
        ids = list(dict.fromkeys(video_ids))
        chunks = [ids[i : i + MAX_BATCH] for i in range(0, len(ids), MAX_BATCH)]
        bodies = await asyncio.gather(
            *(self._get("/video-states", [("id", v) for v in chunk]) for chunk in chunks)
        )
        found = {
            s.video_id: s
            for body in bodies
            if body is not None
            for s in self._codec.decode_as(body, VideoStateBatch).videos
        }
        return [found[v] for v in ids if v in found]

    async def owned(self, owner: str, page_size: int, page_token: str | None) -> OwnerVideosPage:
        """One page of ``owner``'s videos, newest first (``page_token`` from the last page)."""
        params = [("pageSize", str(page_size))]
        if page_token:
            params.append(("pageToken", page_token))
        body = await self._get(f"/owners/{owner}/videos", params)
        return OwnerVideosPage() if body is None else self._codec.decode_as(body, OwnerVideosPage)

    async def history(self, user_id: str) -> an.UserHistory:
        body = await self._get(f"/users/{user_id}/history")
        if body is None:
            return an.UserHistory(user_id=user_id)
        return self._codec.decode_as(body, an.UserHistory)

    async def stats(self, video_id: str) -> an.VideoAnalytics | None:
        body = await self._get(f"/stats/{video_id}")
        return None if body is None else self._codec.decode_as(body, an.VideoAnalytics)

    async def trending(self, limit: int) -> TrendingAnswer:
        """Trending videos of every partition, best first, scored now."""
        body = await self._get("/trending", [("limit", str(limit))])
        if body is None:
            raise WorkerQueryError("the worker has no trending view")
        return self._codec.decode_as(body, TrendingAnswer)

    async def queue_position(self, video_id: str) -> QueuePosition | None:
        """Where the video stands among every video waiting to be encoded; None when it
        does not wait."""
        body = await self._get(f"/transcode/queue/{video_id}")
        return None if body is None else self._codec.decode_as(body, QueuePosition)

    async def cluster(self) -> WorkerCluster:
        body = await self._get("/cluster")
        if body is None:
            raise WorkerQueryError("the worker has no cluster view")
        return self._codec.decode_as(body, WorkerCluster)

    async def wait_for(
        self,
        video_id: str,
        predicate: Callable[[VideoState | None], bool],
        timeout: float = 5.0,
        interval: float = 0.02,
        max_interval: float = 0.25,
    ) -> VideoState | None:
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
        """Return when a worker of this group answers its query views; raise otherwise."""
        await self.cluster()

    # -- transport ------------------------------------------------------------------------
    async def _get(self, path: str, params: Sequence[tuple[str, str]] = ()) -> bytes | None:
        """The body of a 200 (None for a 404) from the first worker that answers."""
        errors: list[str] = []
        urls = await self._candidates()
        for attempt in range(len(urls)):
            index = (self._preferred + attempt) % len(urls)
            url = urls[index]
            try:
                body = await self._get_from(url, path, params)
            except _Unreachable as exc:
                errors.append(str(exc))
                self._members_at = -_MEMBERS_TTL_SECONDS  # learn the group anew next time
                continue
            self._preferred = index
            return body
        raise WorkerUnavailableError("; ".join(errors) or "no worker configured")

    async def _get_from(
        self, url: str, path: str, params: Sequence[tuple[str, str]]
    ) -> bytes | None:
        try:
            async with self._session.get(
                url + path, params=list(params), headers=self._headers, timeout=self._timeout
            ) as resp:
                body = await resp.read()
                if resp.status == 200:
                    return body
                if resp.status == 404:
                    return None
                if resp.status == 503:
                    # The group is rebalancing (or the key's owner is recovering): another
                    # member would say the same; the caller answers 503 + Retry-After.
                    raise WorkerUnavailableError(_reason(body) or "worker rebalancing")
                if resp.status == 401:
                    raise _Unreachable(f"{url} refused our internal token (another stack?)")
                raise WorkerQueryError(f"{url}{path} answered {resp.status}: {_reason(body)}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _Unreachable(f"{url}: {exc!r}") from exc

    async def _candidates(self) -> tuple[str, ...]:
        """Known members first (refreshed every 30 s), then the seeds."""
        if time.monotonic() - self._members_at >= _MEMBERS_TTL_SECONDS:
            self._members_at = time.monotonic()
            self._members = await self._learn_members()
        return tuple(dict.fromkeys((*self._members, *self._seeds)))

    async def _learn_members(self) -> tuple[str, ...]:
        for url in (*self._members, *self._seeds):
            try:
                body = await self._get_from(url, "/cluster", ())
                if body is None:
                    continue
                cluster = self._codec.decode_as(body, WorkerCluster)
            except (_Unreachable, WorkerUnavailableError, WorkerQueryError, CodecError) as exc:
                log.debug("no cluster from %s: %s", url, exc)
                continue
            if cluster.app_id != self._app_id:
                log.warning("%s serves app %r, not %r: ignored", url, cluster.app_id, self._app_id)
                continue
            return cluster.urls()
        return ()


class _Unreachable(Exception):
    """This worker did not answer (or is not ours): try another."""


def _reason(body: bytes) -> str:
    return body[:200].decode("utf-8", errors="replace")
