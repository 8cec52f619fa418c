"""What the listener accepts on the wire, as Postfix 3.9 does: bare-LF lines (normalised to CRLF once DATA has
ended), lines of any length up to the size limit, and CRLF "." CRLF as the only end of data (no smuggling).

Raw bytes over a socket to the real listener, then the real store.
"""

from __future__ import annotations

import hashlib

import httpx
import pytest

from helpgate.gateway import Gateway
from helpgate.inbound import raw_messages
from helpgate.models import Message, RawMessage, RawStatus
from tests.smtp_wire import WireClient, deliver
from tests.test_observability import delta, scrape

HEADERS = b"From: Jane Doe <jane@example.org>\nTo: support@localhost\nSubject: Printer log\n"


#: How a client ends DATA after a message whose last line ends in a bare LF (Python's smtplib adds the CRLF).
END = b"\r\n.\r\n"


def bare_lf_mail(lines: int = 40) -> bytes:
    """As some mailers send it: every line ends in a bare LF, and one is dot-stuffed."""
    body = b"".join(b"log line %03d: the printer reports paper jam in tray 2\n" % n for n in range(lines))
    return HEADERS + b"\n" + body + b"..stuffed by the client\nend\n"


async def only_raw() -> tuple[RawMessage, bytes]:
    [raw] = await RawMessage.find_all().to_list()
    return raw, await raw_messages.read_bytes(raw)


async def test_bare_lf_mail_over_a_line_long_is_stored_with_crlf_flagged_and_counted(
    gateway: Gateway, api: httpx.AsyncClient
) -> None:
    assert gateway.smtp is not None
    mail = bare_lf_mail()
    assert len(mail) > 1001 and b"\r" not in mail
    before = await scrape(api)
    reply = await deliver(gateway.smtp.port, mail + END)
    await gateway.worker.idle()
    after = await scrape(api)

    assert reply.code == 250, str(reply)
    raw, stored = await only_raw()
    expected = mail.replace(b"\n..stuffed", b"\n.stuffed").replace(b"\n", b"\r\n") + b"\r\n"
    assert stored == expected
    assert raw.normalised and raw.sha256 == hashlib.sha256(expected).hexdigest() and raw.size == len(expected)
    assert raw.status is RawStatus.PROCESSED
    # No Message-ID: the synthetic one comes from the bytes stored, which are the normalised ones.
    [message] = await Message.find_all().to_list()
    assert message.message_id == f"sha256-{hashlib.sha256(expected).hexdigest()}@helpgate.invalid"
    assert delta(before, after, "helpgate_inbound_normalised_total") == 1


async def test_crlf_mail_with_a_line_of_5000_octets_is_stored_unchanged(gateway: Gateway) -> None:
    assert gateway.smtp is not None
    mail = HEADERS.replace(b"\n", b"\r\n") + b"\r\n" + b"x" * 5000 + b"\r\n..dot\r\n"
    reply = await deliver(gateway.smtp.port, mail + b".\r\n")

    assert reply.code == 250, str(reply)
    raw, stored = await only_raw()
    assert stored == mail.replace(b"\n..dot", b"\n.dot") and not raw.normalised


@pytest.mark.parametrize(
    "smuggled",
    [b"\n.\n", b"\n.\r\n", b"\r\n.\n", b"\r.\r"],
    ids=["lf-dot-lf", "lf-dot-crlf", "crlf-dot-lf", "cr-dot-cr"],
)
async def test_smuggled_end_of_data_is_content_one_reply_one_message(gateway: Gateway, smuggled: bytes) -> None:
    """CVE-2023-51766 / CVE-2024-27305: the second transaction must be part of the first message."""
    assert gateway.smtp is not None
    second = b"MAIL FROM:<ceo@example.org>\r\nRCPT TO:<support@localhost>\r\nDATA\r\nSubject: smuggled\r\n\r\nx\r\n"
    mail = bare_lf_mail(lines=3) + b"body" + smuggled + second
    client = await WireClient.connect(gateway.smtp.port)
    try:
        await client.envelope()
        first = await client.data(mail + b".\r\n")
        after = await client.command(b"QUIT")  # a smuggled MAIL FROM would answer 250 here
    finally:
        await client.close()

    assert (first.code, after.code) == (250, 221), (str(first), str(after))
    raw, stored = await only_raw()
    expected = {
        b"\n.\n": b"body\r\n\r\n",  # a "." line after a bare LF loses its dot, as stuffing
        b"\n.\r\n": b"body\r\n\r\n",
        b"\r\n.\n": b"body\r\n\r\n",  # after CRLF too
        b"\r.\r": b"body\r.\r",  # no line ending at all
    }[smuggled]
    assert stored.endswith(expected + second) and raw.normalised


@pytest.mark.parametrize("settings_overrides", [{"max_message_bytes": 4000}])
async def test_one_line_over_the_size_limit_gets_552_and_the_session_goes_on(gateway: Gateway) -> None:
    assert gateway.smtp is not None
    client = await WireClient.connect(gateway.smtp.port)
    try:
        await client.envelope()
        too_large = await client.data(HEADERS + b"\n" + b"y" * 10_000 + b"\r\n.\r\n")
        await client.envelope()
        accepted = await client.data(bare_lf_mail(lines=2) + END)
    finally:
        await client.close()

    assert too_large.code == 552 and b"5.3.4" in too_large.text, str(too_large)
    assert accepted.code == 250, str(accepted)
    _, stored = await only_raw()
    assert stored.startswith(HEADERS.replace(b"\n", b"\r\n"))
