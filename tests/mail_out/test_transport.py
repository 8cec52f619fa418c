"""Transports against the Mailtrap-like sink (STARTTLS + AUTH) and the file transport."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpgate.core.errors import PermanentDeliveryError, TemporaryDeliveryError
from helpgate.core.settings import SmtpSecurity
from helpgate.mail_out.transport import FileTransport, SmtpConfig, SmtpTransport
from tests.mail_capture import PASSWORD, USERNAME, CaptureServer

MAIL = b"From: a@x\r\nTo: b@y\r\nSubject: hi\r\nMessage-ID: <hg.1.ab.cd@x>\r\n\r\nbody\r\n"


def _transport(sink: CaptureServer, **overrides: object) -> SmtpTransport:
    values: dict[str, object] = {
        "host": "127.0.0.1",
        "port": sink.port,
        "username": USERNAME,
        "password": PASSWORD,
        "ca_file": sink.certificate.cert,
        **overrides,
    }
    return SmtpTransport(SmtpConfig(**values))  # type: ignore[arg-type]


async def _nothing() -> None:
    return None


async def test_starttls_and_auth_then_many_mails_on_one_session(sink: CaptureServer) -> None:
    connection = _transport(sink).connect()
    try:
        replies = [
            await connection.deliver(MAIL, sender="a@x", recipients=["b@y"], before_data=_nothing) for _ in range(3)
        ]
    finally:
        await connection.close()
    assert all(reply.startswith("250 2.0.0") for reply in replies)
    assert [mail.tls for mail in sink.received] == [True, True, True]
    assert sink.received[0].login == USERNAME and sink.received[0].data.startswith(b"From: a@x")


async def test_wrong_password_is_temporary(sink: CaptureServer) -> None:
    connection = _transport(sink, password="wrong").connect()
    with pytest.raises(TemporaryDeliveryError, match="authentication refused: 535"):
        await connection.deliver(MAIL, sender="a@x", recipients=["b@y"], before_data=_nothing)
    assert sink.received == []


async def test_sink_refuses_plain_text_like_mailtrap(sink: CaptureServer) -> None:
    connection = _transport(sink, security=SmtpSecurity.NONE).connect()
    with pytest.raises(TemporaryDeliveryError):
        await connection.deliver(MAIL, sender="a@x", recipients=["b@y"], before_data=_nothing)
    assert sink.received == []


async def test_untrusted_certificate_is_not_accepted(sink: CaptureServer) -> None:
    connection = _transport(sink, ca_file=None).connect()
    with pytest.raises(TemporaryDeliveryError, match="CERTIFICATE_VERIFY_FAILED"):
        await connection.deliver(MAIL, sender="a@x", recipients=["b@y"], before_data=_nothing)


async def test_answers_to_data_decide_temporary_or_permanent(sink: CaptureServer) -> None:
    sink.handler.data_replies.extend(["421 4.7.0 Later", "554 5.7.1 Spam"])
    connection = _transport(sink).connect()
    with pytest.raises(TemporaryDeliveryError) as temporary:
        await connection.deliver(MAIL, sender="a@x", recipients=["b@y"], before_data=_nothing)
    with pytest.raises(PermanentDeliveryError) as permanent:
        await connection.deliver(MAIL, sender="a@x", recipients=["b@y"], before_data=_nothing)
    await connection.close()
    assert temporary.value.reply == "421 4.7.0 Later" and permanent.value.reply == "554 5.7.1 Spam"


async def test_some_refused_recipients_are_reported_not_fatal(sink: CaptureServer) -> None:
    sink.handler.rcpt_replies["gone@y"] = "550 5.1.1 Gone"
    connection = _transport(sink).connect()
    reply = await connection.deliver(MAIL, sender="a@x", recipients=["b@y", "gone@y"], before_data=_nothing)
    await connection.close()
    assert reply.endswith("refused: gone@y (550 5.1.1 Gone)")
    assert sink.received[0].rcpt_tos == ["b@y"]


async def test_nobody_listening_is_temporary() -> None:
    from tests.mail_capture import free_port

    connection = SmtpTransport(SmtpConfig(host="127.0.0.1", port=free_port(), timeout=2)).connect()
    with pytest.raises(TemporaryDeliveryError, match="cannot connect"):
        await connection.deliver(MAIL, sender="a@x", recipients=["b@y"], before_data=_nothing)


async def test_file_transport_writes_one_eml_per_message_id(tmp_path: Path) -> None:
    connection = FileTransport(tmp_path / "outbox").connect()
    first = await connection.deliver(MAIL, sender="a@x", recipients=["b@y"], before_data=_nothing)
    await connection.deliver(MAIL, sender="a@x", recipients=["b@y"], before_data=_nothing)
    [written] = list((tmp_path / "outbox").iterdir())
    assert written.name == "hg.1.ab.cd@x.eml" and written.read_bytes() == MAIL
    assert first == f"written to {written}"
