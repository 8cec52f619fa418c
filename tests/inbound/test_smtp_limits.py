"""What one SMTP client can make the listener hold: sessions, recipients, time. Caps answer 421/451/452, never
a 5xx, and a client at its cap does not keep another one out. Raw bytes over sockets, real listener and store."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from collections.abc import Callable, Iterator

import pytest

from helpgate.gateway import Gateway
from helpgate.models import RawMessage
from tests.smtp_wire import WireClient, deliver

MAIL = b"From: jane@example.org\r\nSubject: hello\r\n\r\nhello\r\n"


async def until(check: Callable[[], bool]) -> None:
    """Wait for `check()` to hold: the server releases a session's slot once it has noticed the close."""
    async with asyncio.timeout(10):
        while not check():  # noqa: ASYNC110 - polls a counter the server updates
            await asyncio.sleep(0.01)


@pytest.mark.parametrize("settings_overrides", [{"smtp_max_sessions_per_client": 2}])
async def test_a_client_over_its_session_cap_gets_421_while_another_address_delivers(gateway: Gateway) -> None:
    assert gateway.smtp is not None
    port, slots = gateway.smtp.port, gateway.smtp.slots
    held = [await WireClient.connect(port) for _ in range(2)]
    refused = await WireClient.connect(port)
    try:
        assert [client.banner.code for client in held] == [220, 220]
        assert refused.banner.code == 421 and b"4.7.0" in refused.banner.text, str(refused.banner)
        assert (await refused.reply()).code == 0  # and closed

        other = await deliver(port, MAIL + b".\r\n", source="127.0.0.2")
        assert other.code == 250, str(other)
        assert await RawMessage.find_all().count() == 1
    finally:
        for client in (*held, refused):
            await client.close()
    await until(lambda: slots.open == 0)
    again = await WireClient.connect(port)
    await again.close()
    assert again.banner.code == 220


async def test_the_101st_recipient_gets_452_and_the_100_are_delivered(gateway: Gateway) -> None:
    assert gateway.smtp is not None
    client = await WireClient.connect(gateway.smtp.port)
    try:
        await client.envelope(recipients=tuple(b"support+%d@localhost" % n for n in range(100)))
        over = await client.command(b"RCPT TO:<support+100@localhost>")
        stored = await client.data(MAIL + b".\r\n")
    finally:
        await client.close()

    assert over.code == 452 and b"4.5.3" in over.text, str(over)
    assert stored.code == 250, str(stored)
    [raw] = await RawMessage.find_all().to_list()
    assert len(raw.envelope_to) == 100


@pytest.mark.parametrize("settings_overrides", [{"smtp_data_timeout_seconds": 1.0}])
async def test_data_that_takes_too_long_gets_451_and_nothing_is_stored(gateway: Gateway) -> None:
    assert gateway.smtp is not None
    client = await WireClient.connect(gateway.smtp.port)
    try:
        await client.envelope()
        assert (await client.command(b"DATA")).code == 354
        await client.write(MAIL)  # and then nothing: a client that stalls, or trickles
        timed_out = await client.reply()
        closed = await client.reply()
    finally:
        await client.close()

    assert timed_out.code == 451 and b"4.4.2" in timed_out.text, str(timed_out)
    assert closed.code == 0
    assert await RawMessage.find_all().count() == 0
    await until(lambda: gateway.smtp is not None and gateway.smtp.slots.open == 0)


@pytest.mark.parametrize("settings_overrides", [{"smtp_idle_timeout_seconds": 0.5}])
async def test_an_idle_connection_is_closed_with_421_but_a_slow_data_is_not(gateway: Gateway) -> None:
    assert gateway.smtp is not None
    sending = await WireClient.connect(gateway.smtp.port)
    try:
        await sending.envelope()
        assert (await sending.command(b"DATA")).code == 354
        await sending.write(MAIL)
        # Connected after `sending` entered DATA: when this one's idle timer has fired, a timer `sending` had
        # kept through DATA would have fired first.
        idle = await WireClient.connect(gateway.smtp.port)
        timed_out = await idle.reply()
        closed = await idle.reply()
        await idle.close()
        await sending.write(b".\r\n")
        stored = await sending.reply()
    finally:
        await sending.close()

    assert timed_out.code == 421 and b"4.4.2" in timed_out.text, str(timed_out)
    assert closed.code == 0
    assert stored.code == 250, str(stored)


def held_mib() -> float:
    """What Python objects hold now (tracemalloc): unlike RSS, it does not depend on whether freed memory went back
    to the system, nor on what other tests left in this process's heap."""
    return tracemalloc.get_traced_memory()[0] / 1024 / 1024


@pytest.fixture
def traced() -> Iterator[None]:
    """tracemalloc on, and the cycle collector off: memory the server frees only through a reference cycle (a
    traceback kept on an exception) then stays held, as it does until the collector happens to run."""
    tracemalloc.start()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        tracemalloc.stop()


async def test_memory_held_by_sessions_sending_data_goes_back_when_they_close(gateway: Gateway, traced: None) -> None:
    """bench/smtp_flood.py at a small scale: 3 sessions x 6 MiB of DATA that never ends, then they close."""
    assert gateway.smtp is not None
    port, slots = gateway.smtp.port, gateway.smtp.slots
    block = (b"x" * 1022 + b"\r\n") * 1024  # 1 MiB of full lines
    before = held_mib()
    clients = [await WireClient.connect(port) for _ in range(3)]
    try:
        for client in clients:
            await client.envelope()
            assert (await client.command(b"DATA")).code == 354
            for _ in range(6):
                await client.write(block)
        # The server holds what it read; wait until it has read all of it.
        await until(lambda: held_mib() - before >= 16)
    finally:
        for client in clients:
            await client.close()
    await until(lambda: slots.open == 0)
    assert held_mib() - before < 6, f"{held_mib() - before:.1f} MiB still held"
