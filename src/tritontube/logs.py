"""Logs are data: one JSON object per line, from every process, with bound fields.

``configure(settings)`` (called once, in ``cli.main``) routes every standard ``logging`` call,
ours, Faust's, aiohttp's and aiokafka's alike, through structlog's ``ProcessorFormatter``:

    {"timestamp": "2030-01-01T12:00:00.123456Z", "level": "info", "logger": "tritontube...",
     "event": "transcoding 5f3c... (job 9a1e..., attempt 1)", "video_id": "5f3c...",
     "job_id": "9a1e...", "topic": "transcode-jobs", "partition": 2, "offset": 41}

The code keeps calling ``log.info("... %s", x)``; the fields come from context variables bound
where the work is identified: the API's request middleware (``request_id``, ``route``, the
path's ``video_id``; ``http/requestlog.py``), the worker's stream sensor for every event an
agent takes (``topic``, ``partition``, ``offset``, the key as its catalogue name, usually
``video_id``, and the ``request_id`` of the API request that published it;
``agents/logcontext.py``), and the transcode agent (``job_id``, ``attempt``). Keyword
``extra={...}`` on a logging call adds fields too. So ``grep '"video_id": "5f3c..."'`` over
the API's and the workers' logs follows one video through every process.

JSON escapes every control character, so no logged value (a request path, a file name) can
start a line of its own. ``log_format=console`` renders the same fields for a terminal.
"""

from __future__ import annotations

import logging
import logging.config
import re
from typing import IO, Any, Literal

import structlog

LogFormat = Literal["json", "console"]
MAX_LOGGED_CHARS = 200
# C0 and C1 controls, DEL, and the Unicode line/paragraph separators: anything that could
# start a new line (or rewrite one) in a log viewer.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def printable(text: str, limit: int = MAX_LOGGED_CHARS) -> str:
    """``text`` safe for a log line: controls as ``\\xNN``/``\\uNNNN``, cut at ``limit``."""
    cut = text[:limit]
    safe = _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), cut)
    return safe + ("..." if len(text) > limit else "")


_TIMESTAMP = structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp")


def _pre_chain() -> list[Any]:
    """Processors for every record, whether from ``logging`` or from structlog itself."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        _TIMESTAMP,
    ]


def formatter(fmt: LogFormat = "json") -> structlog.stdlib.ProcessorFormatter:
    """The formatter of every handler: bound fields merged, rendered as JSON (or for a tty)."""
    renderer: Any
    if fmt == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=False)
        tail: list[Any] = []
    else:
        renderer = structlog.processors.JSONRenderer(sort_keys=False)
        tail = [structlog.processors.format_exc_info]
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_pre_chain(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *tail,
            renderer,
        ],
    )


def logging_config(
    level: str = "INFO", fmt: LogFormat = "json", stream: IO[str] | None = None
) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` document: one stderr handler with :func:`formatter`.

    The Faust worker is handed the same document (mode applies its own logging set-up at
    start and would otherwise replace ours with coloured text).
    """
    handler: dict[str, Any] = {
        "class": "logging.StreamHandler",
        "formatter": "structured",
        "level": level.upper(),
    }
    if stream is not None:
        handler["stream"] = stream
    else:
        handler["stream"] = "ext://sys.stderr"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"structured": {"()": formatter, "fmt": fmt}},
        "handlers": {"default": handler},
        "root": {"handlers": ["default"], "level": level.upper()},
        # Per-request and per-fetch chatter of libraries stays out of INFO.
        "loggers": {
            "aiokafka": {"level": "WARNING"},
            "aiohttp.access": {"level": "WARNING"},
        },
    }


def configure(level: str = "INFO", fmt: LogFormat = "json") -> dict[str, Any]:
    """Set up logging for this process once; returns the document (for the Faust worker)."""
    config = logging_config(level, fmt)
    logging.config.dictConfig(config)
    logging.captureWarnings(True)  # warnings become log lines too, not raw text on stderr
    structlog.configure(
        processors=[
            *_pre_chain(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    return config
