"""STARTTLS on the listener: offered when a certificate is configured, checked by a client that requires it,
and a certificate renewed on disk is what the next connection gets, without a restart."""

from __future__ import annotations

import shutil
import ssl
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest

from helpgate.gateway import Gateway
from helpgate.models import RawMessage
from tests.mail import make_mail
from tests.mail_capture import Certificate, make_certificate

HOSTNAME = "mx.helpgate.test"


@pytest.fixture
def certificate(tmp_path: Path) -> Certificate:
    (tmp_path / "tls").mkdir()
    return make_certificate(tmp_path / "tls")


@pytest.fixture
def settings_overrides(certificate: Certificate) -> dict[str, Any]:
    return {"smtp_tls_cert": certificate.cert, "smtp_tls_key": certificate.key, "smtp_hostname": HOSTNAME}


def trusting(*certificates: Certificate) -> ssl.SSLContext:
    """A client context that verifies the chain and the host name (127.0.0.1) against these CAs only."""
    context = ssl.create_default_context()
    for certificate in certificates:
        context.load_verify_locations(certificate.cert)
    assert context.check_hostname and context.verify_mode is ssl.CERT_REQUIRED
    return context


def der(certificate: Certificate) -> bytes:
    return ssl.PEM_cert_to_DER_cert(certificate.cert.read_text())


async def session_over_tls(port: int, context: ssl.SSLContext, mail: bytes | None = None) -> dict[str, Any]:
    """EHLO, STARTTLS (required: aiosmtplib raises when it is not offered), EHLO again, then maybe a mail."""
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, tls_context=context, timeout=30)
    banner = await client.connect()
    try:
        await client.ehlo(hostname="client.example")
        before = dict(client.esmtp_extensions)
        await client.starttls(tls_context=context)
        await client.ehlo(hostname="client.example")
        served = client.get_transport_info("ssl_object").getpeercert(binary_form=True)
        if mail is not None:
            await client.sendmail("jane@example.org", ["support@localhost"], mail)
        return {"banner": banner.message, "before": before, "after": client.esmtp_extensions, "served": served}
    finally:
        await client.quit()


async def test_starttls_with_a_checked_certificate_and_the_configured_host_name(
    gateway: Gateway, certificate: Certificate
) -> None:
    assert gateway.smtp is not None
    session = await session_over_tls(gateway.smtp.port, trusting(certificate), bytes(make_mail()))

    assert session["banner"].startswith(HOSTNAME + " ")
    assert "starttls" in session["before"] and "starttls" not in session["after"]
    assert "auth" not in session["after"]  # no AUTH to offer: nobody logs in to hand us mail
    assert session["served"] == der(certificate)
    assert await RawMessage.find_all().count() == 1


async def test_a_certificate_renewed_on_disk_is_served_to_the_next_connection(
    gateway: Gateway, certificate: Certificate, tmp_path: Path
) -> None:
    assert gateway.smtp is not None
    (tmp_path / "renewed").mkdir()
    renewed = make_certificate(tmp_path / "renewed")
    both = trusting(certificate, renewed)
    assert (await session_over_tls(gateway.smtp.port, both))["served"] == der(certificate)

    shutil.copyfile(renewed.cert, certificate.cert)  # written over the configured files, as a renewal does
    shutil.copyfile(renewed.key, certificate.key)

    assert (await session_over_tls(gateway.smtp.port, both))["served"] == der(renewed)
