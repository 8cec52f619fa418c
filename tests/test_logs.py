"""The log context and the JSON format (helpgate/logs.py, core/log_context.py) without a gateway around them."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest

from helpgate import logs
from helpgate.core import log_context


@pytest.fixture
def json_log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    logger = logging.getLogger("helpgate.test_logs")
    handler = logs.make_handler("json", stream)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield logger, stream
    logger.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_concurrent_work_keeps_its_own_fields(json_log: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = json_log

    async def work(ticket: int) -> None:
        with log_context.scope(ticket=ticket, message_id=f"m{ticket}@example.org"):
            await asyncio.sleep(0)  # the other task runs in between
            logger.info("test.step ticket=%s", ticket)

    await asyncio.gather(work(1), work(2))
    logger.info("test.after")

    written = {entry["message"]: entry for entry in lines(stream)}
    assert (
        written["test.step ticket=1"]["ticket"] == 1 and written["test.step ticket=1"]["message_id"] == "m1@example.org"
    )
    assert (
        written["test.step ticket=2"]["ticket"] == 2 and written["test.step ticket=2"]["message_id"] == "m2@example.org"
    )
    assert "ticket" not in written["test.after"]  # the scope ended with the work


def test_update_lasts_until_its_scope_ends_and_extra_wins(json_log: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = json_log
    with log_context.scope(raw="r1"):
        log_context.update(ticket=7, message_id="")  # "" and None are left out
        logger.info("test.one", extra={"ticket": 8})
    logger.info("test.two")

    one, two = lines(stream)
    assert one["raw"] == "r1" and one["ticket"] == 8 and "message_id" not in one
    assert one["event"] == "test.one" and one["level"] == "INFO" and one["logger"] == "helpgate.test_logs"
    assert "raw" not in two and "ticket" not in two


def test_a_traceback_stays_inside_its_json_line(json_log: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = json_log
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        logger.exception("test.failed reason=%s", "bad")

    [entry] = lines(stream)
    assert entry["level"] == "ERROR" and entry["message"] == "test.failed reason=bad"
    assert str(entry["exception"]).startswith("Traceback") and "ValueError: bad" in str(entry["exception"])


def test_text_format_is_unchanged() -> None:
    stream = io.StringIO()
    handler = logs.make_handler("text", stream)
    with log_context.scope(ticket=3):
        handler.handle(
            logging.makeLogRecord({"name": "helpgate.x", "levelname": "INFO", "msg": "x.y a=%s", "args": (1,)})
        )
    assert stream.getvalue().split(" ", 2)[2] == "INFO helpgate.x x.y a=1\n"


@pytest.mark.parametrize(("level", "smtp_level"), [("INFO", logging.WARNING), ("DEBUG", logging.NOTSET)])
def test_smtp_library_lines_wait_for_debug(level: str, smtp_level: int) -> None:
    smtp_logger = logging.getLogger(logs.SMTP_LOGGER)
    before = logging.getLogger().level, smtp_logger.level
    try:
        logs.configure(level=level, log_format="text", stream=io.StringIO())
        assert smtp_logger.level == smtp_level  # NOTSET: as the root logger, at DEBUG
    finally:
        logging.getLogger().setLevel(before[0])
        smtp_logger.setLevel(before[1])
