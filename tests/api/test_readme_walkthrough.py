"""The "An agent's day, with curl" block of docs/api.md (the README's Quickstart sends agents there), run as written
with bash and curl against a live gateway."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from helpgate.gateway import Gateway
from helpgate.models import Direction, MessageKind, OutboundMail, Role, Ticket, TicketStatus
from helpgate.models import Message as TicketMessage
from tests.conftest import PASSWORD, make_user
from tests.mail import make_mail, send

WALKTHROUGH = Path(__file__).resolve().parents[2] / "docs" / "api.md"
MARKER = "<!-- tests/api/test_readme_walkthrough.py runs the next block"
AGENT = "walker@example.com"


def walkthrough() -> str:
    """The ```sh block right after the marker comment in docs/api.md."""
    lines = WALKTHROUGH.read_text(encoding="utf-8").splitlines()
    start = next((n for n, line in enumerate(lines) if line.startswith(MARKER)), None)
    assert start is not None, f"docs/api.md has lost the marker {MARKER!r}"
    assert lines[start + 1] == "```sh", "the marker must stand right above a ```sh block"
    end = lines.index("```", start + 2)
    return "\n".join(lines[start + 2 : end]) + "\n"


def test_walkthrough_block_is_found() -> None:
    block = walkthrough()
    for route in ("/api/auth/login", "/api/tickets?", "/replies", "/notes", "-X PATCH"):
        assert route in block


def test_readme_sends_agents_to_the_walkthrough() -> None:
    readme = (WALKTHROUGH.parents[1] / "README.md").read_text(encoding="utf-8")
    assert "(docs/api.md#an-agents-day-with-curl)" in readme


async def run_block(block: str, env: dict[str, str]) -> tuple[int, str, str]:
    """bash -euo pipefail: any failing curl (or a missing field) stops the walk with a non-zero status."""
    process = await asyncio.create_subprocess_exec(
        "bash",
        "-euo",
        "pipefail",
        "-c",
        block,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


@pytest.mark.skipif(not (shutil.which("curl") and shutil.which("bash")), reason="needs bash and curl")
@pytest.mark.parametrize("settings_overrides", [{"run_workflows": True}])  # the "solved" mail is the workflows'
async def test_agents_day_from_the_docs(gateway: Gateway) -> None:
    await make_user(AGENT, Role.AGENT)
    assert gateway.smtp is not None
    await send(gateway.smtp.port, make_mail(subject="Printer out of toner", body="It prints blank pages."))
    await gateway.worker.idle()
    ticket = await Ticket.find_one({"subject": "Printer out of toner"})
    assert ticket is not None and ticket.status is TicketStatus.NEW

    status, stdout, stderr = await run_block(
        walkthrough(),
        {"HELPGATE_URL": f"http://127.0.0.1:{gateway.http_port}", "AGENT_EMAIL": AGENT, "AGENT_PASSWORD": PASSWORD},
    )

    assert status == 0, f"stdout:\n{stdout}\nstderr:\n{stderr}"
    assert stderr == ""
    assert '"subject": "Printer out of toner"' in stdout and '"status": "solved"' in stdout
    after = await Ticket.find_one({"number": ticket.number})
    assert after is not None and after.status is TicketStatus.SOLVED
    messages = await TicketMessage.find({"ticket_number": ticket.number}).sort("created_at").to_list()
    assert [(m.direction, m.kind) for m in messages] == [
        (Direction.INBOUND, MessageKind.EMAIL),
        (Direction.OUTBOUND, MessageKind.EMAIL),
        (Direction.INTERNAL, MessageKind.NOTE),
    ]
    reply, note = messages[1], messages[2]
    assert "new toner" in reply.text and "last spare toner" in note.text
    assert gateway.workflows is not None
    await gateway.workflows.wait_idle(30)
    mails = await OutboundMail.find({"ticket_number": ticket.number}).to_list()
    queued = [mail for mail in mails if mail.message_ref == reply.id]
    assert len(queued) == 1 and queued[0].to == ["jane@example.org"]
    to_customer = sorted(mail.template for mail in mails if mail.to == ["jane@example.org"])
    assert to_customer == ["agent_reply", "ticket_acknowledgement", "ticket_solved"]
    assert all(mail.message_ref != note.id for mail in mails)  # the note is never mailed
