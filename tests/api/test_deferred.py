"""Work routes leave for after their answer (api/deferred.py): failures are logged, shutdown waits, then cancels."""

from __future__ import annotations

import asyncio
import logging

import pytest

from helpgate.api.deferred import DeferredWork


async def test_a_failing_piece_is_logged_and_the_others_finish(caplog: pytest.LogCaptureFixture) -> None:
    deferred = DeferredWork()
    done: list[str] = []

    async def fail() -> None:
        raise RuntimeError("store gone")

    async def succeed() -> None:
        done.append("ok")

    deferred.start(fail(), what="reset")
    deferred.start(succeed(), what="signup")
    await deferred.idle()
    assert done == ["ok"] and deferred.pending == 0
    [record] = [record for record in caplog.records if "api.deferred_failed" in record.getMessage()]
    assert "what=reset" in record.getMessage() and record.levelno == logging.ERROR


async def test_stop_cancels_what_outlives_the_grace() -> None:
    deferred = DeferredWork()
    started, never, cancelled = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def hang() -> None:
        started.set()
        try:
            await never.wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    deferred.start(hang(), what="hang")
    await started.wait()
    await deferred.stop(0.0)
    assert cancelled.is_set() and deferred.pending == 0
