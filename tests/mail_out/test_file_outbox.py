"""With no SMTP_HOST, an agent's reply is written to <data dir>/outbox/ as an .eml file, and says where."""

from __future__ import annotations

import email
import logging
from email import policy

import httpx
import pytest

from helpgate.core.settings import Settings
from helpgate.gateway import Gateway
from helpgate.models import Role
from tests.conftest import login, make_user
from tests.mail import make_mail, send
from tests.mail_capture import wait_for_status


async def test_reply_is_written_to_the_outbox(
    gateway: Gateway, api: httpx.AsyncClient, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="helpgate")
    assert settings.outbound_smtp_host is None and gateway.smtp is not None
    await send(gateway.smtp.port, make_mail(message_id="<first@example.org>"))
    await gateway.worker.idle()
    await make_user("agent@example.com", Role.AGENT)
    headers = await login(api, "agent@example.com")

    response = await api.post("/api/tickets/1/replies", json={"text": "Written, not sent."}, headers=headers)

    key = response.json()["message_id"]
    mail = await wait_for_status(key, "sent")
    path = settings.data_dir / "outbox" / f"{key}.eml"
    assert mail.smtp_reply == f"written to {path}"
    written = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    assert written["To"] == "jane@example.org" and written["In-Reply-To"] == "<first@example.org>"
    assert written["From"] == "support@localhost"  # no HELPGATE_MAIL_FROM: the first support address
    assert any("mail.written" in record.message and str(path) in record.message for record in caplog.records)
    health = (await api.get("/healthz")).json()
    assert health["outbound"]["transport"] == f"file://{settings.data_dir / 'outbox'}"
