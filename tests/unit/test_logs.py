"""Logs are JSON lines with bound fields (``tritontube/logs.py``), whatever wrote them."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from tritontube import logs


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger of its own writing through the production formatter into a buffer."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logs.formatter("json"))
    logger = logging.getLogger("tritontube.test_logs")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    structlog.contextvars.clear_contextvars()
    try:
        yield logger, buffer
    finally:
        logger.removeHandler(handler)
        structlog.contextvars.clear_contextvars()


def lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_a_stdlib_call_becomes_one_json_line_with_the_bound_fields(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, buffer = captured
    structlog.contextvars.bind_contextvars(video_id="v1", topic="uploads", partition=2, offset=41)
    logger.info("transcoding %s (attempt %d)", "v1", 3, extra={"job_id": "j9"})
    (record,) = lines(buffer)
    assert record["event"] == "transcoding v1 (attempt 3)"
    assert (record["video_id"], record["topic"], record["partition"], record["offset"]) == (
        "v1",
        "uploads",
        2,
        41,
    )
    assert record["job_id"] == "j9"
    assert record["level"] == "info" and record["logger"] == "tritontube.test_logs"
    assert record["timestamp"].endswith("Z")


def test_control_characters_cannot_start_a_line(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, buffer = captured
    forged = "/static/x\n2030-01-01 INFO tritontube: FORGED\r\x1b[31m\u2028"
    logger.warning("no such file %s", forged, extra={"path": forged})
    text = buffer.getvalue()
    assert text.count("\n") == 1 and "\r" not in text and "\x1b" not in text
    assert lines(buffer)[0]["path"] == forged  # escaped, not lost


def test_exceptions_are_one_field_of_the_same_line(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, buffer = captured
    try:
        raise ValueError("bad input")
    except ValueError:
        logger.exception("failed")
    (record,) = lines(buffer)
    assert record["level"] == "error"
    assert "ValueError: bad input" in record["exception"]


def test_printable_escapes_and_cuts() -> None:
    assert logs.printable("a\nb\x00c\u2028") == "a\\nb\\x00c\\u2028"
    assert logs.printable("x" * 300, 10) == "x" * 10 + "..."


def test_the_dict_config_installs_the_formatter() -> None:
    config = logs.logging_config("DEBUG", "console", stream=io.StringIO())
    assert config["root"]["level"] == "DEBUG"
    made = config["formatters"]["structured"]
    assert made["()"] is logs.formatter and made["fmt"] == "console"
