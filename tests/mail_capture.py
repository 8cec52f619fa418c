"""A local SMTP sink that behaves like Mailtrap's sandbox: STARTTLS and AUTH required, a self-signed certificate.

It records every accepted mail as the bytes it received, and can be told to answer DATA with scripted replies
(a 421, a 550) or to hold its answer for a while (a slow server, a crash mid-send). It runs in aiosmtpd's
threaded Controller: a sink for tests and benchmarks, never part of helpgate.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import email
import ipaddress
import json
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from helpgate.mail_out import outbound
from helpgate.models import OutboundMail

USERNAME = "mailtrap-user"
PASSWORD = "mailtrap-password"


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path


def make_certificate(directory: Path) -> Certificate:
    """A self-signed certificate for 127.0.0.1 and localhost (its own CA: clients trust exactly this file)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "helpgate test sink")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    paths = Certificate(cert=directory / "sink.crt", key=directory / "sink.key")
    paths.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths.key.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    tls: bool
    login: str

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.data, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class CaptureHandler:
    received: list[Received] = field(default_factory=list)
    data_replies: deque[str] = field(default_factory=deque)  # scripted answers to DATA, used up in order
    rcpt_replies: dict[str, str] = field(default_factory=dict)  # address → scripted answer to its RCPT
    data_delay: float = 0.0  # hold every DATA answer this long
    data_started: threading.Event = field(default_factory=threading.Event)
    sessions: int = 0

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        scripted = self.rcpt_replies.get(address)
        if scripted is not None:
            return scripted
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.data_started.set()
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        if self.data_replies:
            return self.data_replies.popleft()
        data = envelope.original_content
        assert isinstance(data, bytes)
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else ""
        self.received.append(
            Received(
                mail_from=envelope.mail_from or "",
                rcpt_tos=list(envelope.rcpt_tos),
                data=data,
                tls=session.ssl is not None,
                login=login,
            )
        )
        return f"250 2.0.0 Ok: queued as {len(self.received)}"


@dataclass
class OAuthCaptureHandler(CaptureHandler):
    """A sink that takes AUTH XOAUTH2 only (as smtp.office365.com does for OAuth2 apps), asking `valid` whether
    a token is good for a user. A refused token gets the base64 JSON challenge and, after the client's empty
    line, 535."""

    valid: Callable[[str, str], bool] = lambda _user, _token: False
    refused: int = 0

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        try:
            user, token = _xoauth2(args[1]) if len(args) > 1 else ("", "")
        except ValueError:
            return AuthResult(success=False, handled=False)
        if self.valid(user, token):
            return AuthResult(success=True, auth_data=LoginPassword(user.encode(), b""))
        self.refused += 1
        await server.challenge_auth(json.dumps({"status": "401", "schemes": "bearer"}))
        return AuthResult(success=False, handled=False)  # not handled: aiosmtpd answers 535


def _xoauth2(initial: str) -> tuple[str, str]:
    fields = dict(
        part.split("=", 1) for part in base64.b64decode(initial, validate=True).decode().split("\x01") if "=" in part
    )
    return fields["user"], fields["auth"].removeprefix("Bearer ")


def _authenticate(server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (USERNAME.encode(), PASSWORD.encode())
    return AuthResult(success=ok, handled=False, auth_data=data)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class CaptureServer:
    """The sink, started on a free port of 127.0.0.1; `stop` closes it."""

    def __init__(
        self,
        certificate: Certificate,
        *,
        require_tls: bool = True,
        xoauth2: Callable[[str, str], bool] | None = None,
    ) -> None:
        """`xoauth2`: take AUTH XOAUTH2 only, with tokens this says are valid for the user."""
        self.handler = CaptureHandler() if xoauth2 is None else OAuthCaptureHandler(valid=xoauth2)
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(certificate.cert, certificate.key)
        self.certificate = certificate
        self.port = free_port()
        self._controller = Controller(
            self.handler,
            hostname="127.0.0.1",
            port=self.port,
            ready_timeout=10.0,
            tls_context=tls,
            require_starttls=require_tls,
            auth_required=True,
            auth_require_tls=require_tls,
            authenticator=_authenticate,
            decode_data=False,
            auth_exclude_mechanism=["PLAIN", "LOGIN"] if xoauth2 is not None else None,
        )

    def start(self) -> CaptureServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def settings(self) -> dict[str, Any]:
        """Settings that point a gateway at this sink, as an operator would point it at Mailtrap."""
        return {
            "outbound_smtp_host": "127.0.0.1",
            "outbound_smtp_port": self.port,
            "outbound_smtp_username": USERNAME,
            "outbound_smtp_password": PASSWORD,
            "outbound_smtp_security": "starttls",
            "outbound_smtp_ca_file": self.certificate.cert,
        }

    async def wait_for(self, count: int, timeout: float = 15.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} mails at the sink, got {len(self.received)}")
            await asyncio.sleep(0.02)
        return list(self.received)


async def wait_for_status(key: str, *statuses: str, timeout: float = 15.0) -> OutboundMail:
    """Poll the queue until the mail with this Message-ID reaches one of `statuses`."""
    deadline = time.monotonic() + timeout
    while True:
        mail = await outbound.get(key)
        if mail is not None and mail.status in statuses:
            return mail
        if time.monotonic() > deadline:
            raise AssertionError(f"mail {key} is {mail.status if mail else 'missing'}, not {statuses}")
        await asyncio.sleep(0.02)
