"""What the work in progress is about (a ticket number, a Message-ID), for every log line written meanwhile.

The parts that work on one message or ticket at a time (the inbound pipeline, a workflow run, the outbound
sender) open a `scope` around that work and `update` it as they learn more; a logging filter
(helpgate/logs.py) copies the fields onto each record. Nothing is threaded through calls, and as asyncio
tasks each carry their own context, concurrent work never mixes its fields.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType

type Value = str | int

_EMPTY: Mapping[str, Value] = MappingProxyType({})
_fields: ContextVar[Mapping[str, Value]] = ContextVar("helpgate_log_fields", default=_EMPTY)


def _merged(fields: Mapping[str, Value | None]) -> Mapping[str, Value]:
    current = dict(_fields.get())
    current.update({name: value for name, value in fields.items() if value is not None and value != ""})
    return MappingProxyType(current)


@contextmanager
def scope(**fields: Value | None) -> Iterator[None]:
    """Fields for the lines logged inside the block (None and "" are left out); all undone on leaving it."""
    token = _fields.set(_merged(fields))
    try:
        yield
    finally:
        _fields.reset(token)


def update(**fields: Value | None) -> None:
    """Add or change fields until the enclosing `scope` ends."""
    _fields.set(_merged(fields))


def current() -> Mapping[str, Value]:
    return _fields.get()
