"""Logging set-up for the command line: the text format, or one JSON object per line.

Both carry the fields of core/log_context.py (ticket, message_id) on every record; the text format does
not print them (it stays as it was), the JSON format does, with any `extra=` fields of the call.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from helpgate.core import log_context

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
SMTP_LOGGER = "mail.log"  # aiosmtpd's
# The attributes every LogRecord has: anything else on a record came from `extra=` or the context filter.
# (uvicorn adds `color_message`, its message with terminal colour codes.)
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName", "color_message"}
_EVENT = re.compile(r"^([a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+)(?:\s|$)")  # "inbound.processed raw=..." → its event

type LogFormat = Literal["text", "json"]


class ContextFilter(logging.Filter):
    """Copies the current log context onto each record (fields given with `extra=` win)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in log_context.current().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, event, then the extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": message,
        }
        if match := _EVENT.match(message):
            entry["event"] = match[1]
        for name, value in vars(record).items():
            if name not in _STANDARD and not name.startswith("_"):
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def make_handler(log_format: LogFormat, stream: TextIO | None = None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    return handler


def configure(*, level: str, log_format: LogFormat, stream: TextIO | None = None) -> None:
    """Log to stderr (or `stream`) at `level`; like logging.basicConfig, adds no handler if the root logger
    already has one (a test runner's, say). aiosmtpd's INFO lines show only when `level` is DEBUG."""
    logging.basicConfig(level=level, handlers=[make_handler(log_format, stream)])
    # aiosmtpd logs each SMTP connection and command at INFO ("mail.log"): a flood on a busy listener.
    logging.getLogger(SMTP_LOGGER).setLevel(logging.NOTSET if level == "DEBUG" else logging.WARNING)
