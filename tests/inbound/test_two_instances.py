"""Two helpgate installations that mail each other settle: the automatic mail of one is never answered by the other.

Two `helpgate serve` processes (each on its own database; Beanie binds models per process), and each one's
outbound relay is the other one's SMTP listener. A's acknowledgement to B's support address arrives at B as
a new message; B keeps it (a ticket an agent can see) but sends nothing back: it carries `Auto-Submitted`,
and helpgate never answers automatic mail.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from helpgate.core import db
from helpgate.models import ALL_MODELS, Message, OutboundMail, Ticket
from tests.health import serve_env, wait_healthy
from tests.mail import make_mail, send
from tests.mail_capture import free_port


async def _counts(store_uri: str, database: str) -> dict[str, int]:
    client = db.make_client(store_uri)
    try:
        await db.init_models(client, database, ALL_MODELS)
        return {
            "tickets": await Ticket.find_all().count(),
            "messages": await Message.find_all().count(),
            "outbound": await OutboundMail.find_all().count(),
            "sent": await OutboundMail.find({"status": "sent"}).count(),
        }
    finally:
        await client.close()


def _start(
    side: str, other_port: int, smtp_port: int, database: str, store_uri: str, directory: Path
) -> tuple[subprocess.Popen[bytes], int]:
    http_port = free_port()
    env = serve_env(
        store_uri=store_uri,
        database=database,
        data_dir=directory / "data",
        http_port=http_port,
        smtp_port=smtp_port,
        HELPGATE_SUPPORT_ADDRESSES=f"support@{side}.test",
        HELPGATE_MAIL_FROM=f"Support {side.upper()} <support@{side}.test>",
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(other_port),
        SMTP_SECURITY="none",
        JWT_SECRET="two-instances-secret-of-32-bytes-or-more",
    )
    directory.mkdir(parents=True)
    log = (directory / "serve.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "helpgate", "serve"], env=env, stdout=log, stderr=log)
    return process, http_port


@pytest.mark.slow
async def test_two_installations_mailing_each_other_settle(tmp_path: Path, store_uri: str) -> None:
    ports = {"a": free_port(), "b": free_port()}
    names = {side: f"test_loop_{side}_{uuid.uuid4().hex[:8]}" for side in ports}
    processes = {}
    try:
        for side, other in (("a", "b"), ("b", "a")):
            processes[side] = _start(side, ports[other], ports[side], names[side], store_uri, tmp_path / side)
        for side, (process, http_port) in processes.items():
            await asyncio.to_thread(wait_healthy, process, http_port, tmp_path / side / "serve.log")

        # B's address writes to A (as a person at B would); A acknowledges to B; B must not answer that.
        first = make_mail(sender="support@b.test", to="support@a.test", subject="Hello from B")
        await send(ports["a"], first, sender="support@b.test", recipients=["support@a.test"])
        deadline = time.monotonic() + 30
        while (await _counts(store_uri, names["b"]))["messages"] < 1:  # A's acknowledgement has reached B
            assert time.monotonic() < deadline, (tmp_path / "a" / "serve.log").read_text()
            await asyncio.sleep(0.2)
        await asyncio.sleep(3.0)  # long enough for any ping-pong to show
    finally:
        for process, _port in processes.values():
            process.send_signal(signal.SIGTERM)
        for process, _port in processes.values():
            process.wait(30)

    a, b = await _counts(store_uri, names["a"]), await _counts(store_uri, names["b"])
    assert a == {"tickets": 1, "messages": 1, "outbound": 1, "sent": 1}  # B's mail; A's one acknowledgement
    assert b == {"tickets": 1, "messages": 1, "outbound": 0, "sent": 0}  # the acknowledgement, never answered
    client = db.make_client(store_uri)
    for name in names.values():
        await client.drop_database(name)
    await client.close()
