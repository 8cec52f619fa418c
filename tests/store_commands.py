"""The store commands a test's code sends, recorded by a pymongo CommandListener (the `commands` fixture of
tests/conftest.py): each with the kind of task that sent it, its name and its collection."""

from __future__ import annotations

import asyncio

from pymongo import monitoring

READS = frozenset({"find", "aggregate", "getMore", "count", "distinct"})


class Commands(monitoring.CommandListener):
    """The commands sent while `recording`, as (task kind, command, collection). The kind is `request` for
    uvicorn's task serving an HTTP request (its answer is sent when the task ends), `deferred` for work a route
    started without waiting for it (api/deferred.py), `other` for everything else (the gateway's loops, a test)."""

    def __init__(self) -> None:
        self.recording = False
        self.seen: list[tuple[str, str, str]] = []

    @staticmethod
    def _kind() -> str:
        task = asyncio.current_task()
        if task is None:
            return "other"
        if task.get_name().startswith("deferred:"):
            return "deferred"
        coroutine = task.get_coro()
        return "request" if getattr(coroutine, "__qualname__", "").endswith("Cycle.run_asgi") else "other"

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if self.recording:
            target = event.command.get(event.command_name)
            self.seen.append((self._kind(), event.command_name, target if isinstance(target, str) else ""))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        return None

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        return None

    def of(self, kind: str) -> list[tuple[str, str]]:
        """(command, collection) of the commands tasks of this kind sent, in order."""
        return [(name, collection) for seen_kind, name, collection in self.seen if seen_kind == kind]

    def on(self, collection: str) -> list[str]:
        """The commands sent to `collection`, in order."""
        return [name for _kind, name, target in self.seen if target == collection]

    def writes(self, collection: str) -> list[str]:
        """The commands that wrote to `collection` (or may have: findAndModify), in order."""
        return [name for name in self.on(collection) if name not in READS]
