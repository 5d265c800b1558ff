"""The API's HTTP server: aiohttp's, with what its protocol layer gets wrong for a public API.

aiohttp answers requests its parser refuses (an oversized request line, an unknown
``Transfer-Encoding``, garbage) from its protocol class, before any middleware runs: a
``text/plain`` body and an ERROR log line with a traceback for every such client error. It
also has no limit on how long a client may take to send its headers, so slow clients
("slowloris") hold connections for as long as they like. :class:`HardenedRequestHandler`

* answers those errors with ``application/problem+json`` (the API's only error format),
* logs client-caused failures (parse errors, a body the client cut off or mis-encoded) as one
  INFO line without a traceback, and
* closes a connection whose request headers are not complete ``header_timeout`` seconds after
  their first byte (or after connecting).

aiohttp builds its protocol objects in ``Server.__call__`` with no hook to choose the class, so
:class:`HardenedAppRunner` builds a :class:`HardenedServer` from the ``Server`` the app makes.
That relies on aiohttp internals (``RequestHandler._messages``, ``_request_count``,
``Server._kwargs``), so this module refuses to load on an aiohttp it was not checked against;
``tests/component/test_http_server.py`` reproduces each defect and the fix.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from http import HTTPStatus
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_server import Server

from tritontube.http.problems import problem_response
from tritontube.logs import printable

log = logging.getLogger(__name__)

CHECKED_AIOHTTP = ("3.14.",)
if not aiohttp.__version__.startswith(CHECKED_AIOHTTP):  # pragma: no cover - guard
    raise ImportError(
        f"tritontube.http.server was checked against aiohttp {CHECKED_AIOHTTP}, "
        f"not {aiohttp.__version__}: re-check the RequestHandler internals it uses"
    )

# Failures a client causes: never our bug, never a traceback in the log.
CLIENT_FAULTS: tuple[type[BaseException], ...] = (
    HttpProcessingError,
    web.RequestPayloadError,
    ConnectionError,
)


def _is_request_target(line: object) -> bool:
    """Whether an over-long line aiohttp reports is a request target (``/path...``,
    ``http://...``, ``*``) rather than a header name or value."""
    head = bytes(line[:12]) if isinstance(line, bytes | bytearray) else str(line)[:12].encode()
    return head.startswith((b"/", b"*")) or b"://" in head


def _client_error_status(exc: BaseException | None, status: int) -> tuple[int, str]:
    """The status and title for a request the parser refused."""
    if isinstance(exc, LineTooLong) and exc.args:
        # aiohttp says 400 for both; RFC 9110 has a status for each.
        code = 414 if _is_request_target(exc.args[0]) else 431
        return code, HTTPStatus(code).phrase
    try:
        return status, HTTPStatus(status).phrase
    except ValueError:
        return status, "Error"


class HardenedRequestHandler(RequestHandler):
    """aiohttp's protocol with problem+json errors, quiet client faults and a header timeout."""

    def __init__(self, *args: Any, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timeout = header_timeout
        self._header_deadline: asyncio.TimerHandle | None = None
        self._last_payload: Any = None

    # -- slow clients -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm_header_timer()

    def _arm_header_timer(self) -> None:
        if self._header_deadline is None:
            self._header_deadline = self._loop.call_later(
                self._header_timeout, self._on_header_timeout
            )

    def _disarm_header_timer(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _on_header_timeout(self) -> None:
        self._header_deadline = None
        if self.transport is None:
            return
        peer = self.transport.get_extra_info("peername")
        log.info("closing a connection from %s: request headers not complete in time", peer)
        self.force_close()

    def data_received(self, data: bytes) -> None:
        in_body = self._last_payload is not None and not self._last_payload.is_eof()
        before = self._request_count
        super().data_received(data)
        if self._request_count != before:  # a request's headers are complete
            self._disarm_header_timer()
            self._last_payload = self._messages[-1][1] if self._messages else None
        elif data and not in_body and not self._force_close:
            self._arm_header_timer()  # bytes of the next request's head

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm_header_timer()
        self._last_payload = None
        super().connection_lost(exc)

    # -- errors -------------------------------------------------------------------------------

    def log_exception(self, *args: Any, **kw: Any) -> None:
        exc = kw.get("exc_info")
        if isinstance(exc, CLIENT_FAULTS):
            log.info("client fault: %s: %s", type(exc).__name__, printable(str(exc)))
            return
        super().log_exception(*args, **kw)

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        ours = status >= 500 and not isinstance(exc, CLIENT_FAULTS)
        if ours:
            log.error("unhandled error in the HTTP server", exc_info=exc)
        else:
            log.info("refused a request from %s: %s", request.remote, printable(message or ""))
        if request.writer.output_size > 0:
            raise ConnectionError("a response was already sent on this connection")
        status, title = _client_error_status(exc, status)
        detail = None if ours else printable(message or "") or None
        response = problem_response(status, title, detail, code=None if ours else "BAD_REQUEST")
        response.force_close()
        return response


class HardenedServer(Server):
    """aiohttp's low-level server, building :class:`HardenedRequestHandler` protocols."""

    def __init__(self, *args: Any, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout

    def __call__(self) -> RequestHandler:
        return HardenedRequestHandler(
            self, loop=self._loop, header_timeout=self.header_timeout, **self._kwargs
        )


class HardenedAppRunner(web.AppRunner):
    """An ``AppRunner`` whose server is a :class:`HardenedServer`."""

    def __init__(self, app: web.Application, *, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._header_timeout = header_timeout

    async def _make_server(self) -> Server:
        made = await super()._make_server()
        return HardenedServer(
            made.request_handler,
            request_factory=made.request_factory,
            handler_cancellation=made.handler_cancellation,
            loop=asyncio.get_running_loop(),
            header_timeout=self._header_timeout,
            **made._kwargs,
        )


async def serve(app: web.Application, host: str, port: int, *, header_timeout: float) -> None:
    """Serve ``app`` until SIGINT/SIGTERM (what ``web.run_app`` does, with our runner)."""
    runner = HardenedAppRunner(
        app, header_timeout=header_timeout, handle_signals=True, access_log=None
    )
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        await asyncio.Event().wait()  # until a signal raises GracefulExit
    finally:
        await runner.cleanup()


def run(app: web.Application, host: str, port: int, *, header_timeout: float) -> None:
    """Run :func:`serve` in a new event loop; SIGINT/SIGTERM end it cleanly."""
    with contextlib.suppress(web.GracefulExit, KeyboardInterrupt):
        asyncio.run(serve(app, host, port, header_timeout=header_timeout))
