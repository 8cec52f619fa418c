"""Transports hand a composed mail to the world: SMTP through aiosmtplib (Mailtrap, any relay) or .eml files.

A transport gives each sender of the outbound worker a Connection of its own, kept open while there is
mail to send. `deliver` calls `before_data` right before the DATA command: from that point a lost connection
means the mail may have been delivered (RFC 1047), and the worker records that instead of sending twice.
Failures come back as TemporaryDeliveryError (4xx, connection trouble: retry later) or
PermanentDeliveryError (5xx: never retry), with the server's answer when it gave one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import aiosmtplib

from helpgate.core.errors import HelpgateError, PermanentDeliveryError, TemporaryDeliveryError
from helpgate.core.settings import SmtpSecurity

log = logging.getLogger(__name__)

BeforeData = Callable[[], Awaitable[None]]
#: An OAuth2 access token for XOAUTH2; given the token the server refused, another one (unless already replaced).
TokenSource = Callable[[str | None], Awaitable[str]]
# Exchange Online's answer when SMTP AUTH is off for the tenant or the mailbox: no token mends that.
_AUTH_DISABLED = "5.7.139"


DEFAULT_PORTS = {SmtpSecurity.STARTTLS: 587, SmtpSecurity.TLS: 465, SmtpSecurity.NONE: 25}


class Connection(Protocol):
    async def deliver(self, data: bytes, *, sender: str, recipients: list[str], before_data: BeforeData) -> str:
        """Send one mail; the server's final answer (or where it went)."""
        ...

    async def close(self) -> None: ...


class Transport(Protocol):
    description: str  # for logs and /healthz; never contains a password

    def connect(self) -> Connection: ...


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    security: SmtpSecurity = SmtpSecurity.STARTTLS
    username: str | None = None
    password: str | None = None
    ca_file: Path | None = None  # trust this CA (a self-signed relay) instead of the system's
    timeout: float = 30.0
    local_hostname: str | None = None
    verify_tls: bool = True
    oauth_token: TokenSource | None = None  # log in with XOAUTH2 as `username` instead of a password


class SmtpTransport:
    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self.description = f"smtp://{config.host}:{config.port} ({config.security})"
        self._tls = ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)
        if not config.verify_tls:
            self._tls.check_hostname = False
            self._tls.verify_mode = ssl.CERT_NONE

    def connect(self) -> SmtpConnection:
        return SmtpConnection(self.config, self._tls)


class SmtpConnection:
    """One SMTP session, opened on first use and reopened after any error."""

    def __init__(self, config: SmtpConfig, tls: ssl.SSLContext) -> None:
        self._config = config
        self._tls = tls
        self._client: aiosmtplib.SMTP | None = None
        self._sent_token: str | None = None  # the XOAUTH2 token of the last login
        self._refused: str | None = None  # the token the server just refused, to be replaced

    async def _token(self) -> str:
        assert self._config.oauth_token is not None
        try:
            self._sent_token = await self._config.oauth_token(self._refused)
        except HelpgateError as error:  # no token (needs consent, the provider is down): keep the mail, retry
            raise TemporaryDeliveryError(f"no OAuth2 token: {error.detail}") from None
        return self._sent_token

    async def _connected(self) -> aiosmtplib.SMTP:
        if self._client is not None and self._client.is_connected:
            return self._client
        self._refused = None
        try:
            return await self._connect()
        except _TokenRefused:
            pass
        # An OAuth2 token refused before it should have expired (revoked, clocks): once more with another one.
        try:
            return await self._connect()
        except _TokenRefused as refused:
            raise refused.error from None
        finally:
            self._refused = None

    async def _connect(self) -> aiosmtplib.SMTP:
        config = self._config
        client = aiosmtplib.SMTP(
            hostname=config.host,
            port=config.port,
            username=config.username,
            password=None if config.oauth_token is not None else config.password,
            oauth_token_generator=self._token if config.oauth_token is not None else None,
            use_tls=config.security is SmtpSecurity.TLS,
            start_tls=config.security is SmtpSecurity.STARTTLS,
            tls_context=self._tls if config.security is not SmtpSecurity.NONE else None,
            timeout=config.timeout,
            local_hostname=config.local_hostname,
        )
        try:
            await client.connect()
        except aiosmtplib.SMTPAuthenticationError as error:
            # Wrong credentials are the operator's to fix: keep the mail and retry, do not fail it.
            client.close()
            failed = TemporaryDeliveryError(f"authentication refused: {_reply(error)}", reply=_reply(error))
            if config.oauth_token is not None and self._refused is None and _AUTH_DISABLED not in error.message:
                self._refused = self._sent_token
                raise _TokenRefused(failed) from None
            raise failed from None
        except aiosmtplib.SMTPResponseException as error:
            raise TemporaryDeliveryError(f"connection refused: {_reply(error)}", reply=_reply(error)) from None
        except (aiosmtplib.SMTPException, OSError) as error:
            raise TemporaryDeliveryError(f"cannot connect: {type(error).__name__}: {error}") from None
        self._client = client
        return client

    async def deliver(self, data: bytes, *, sender: str, recipients: list[str], before_data: BeforeData) -> str:
        client = await self._connected()
        try:
            options = [f"SIZE={len(data)}"] if client.supports_extension("size") else []
            await client.mail(sender, options=options)
            refused = await _recipients(client, recipients)
            await before_data()
            response = await client.data(data)
        except aiosmtplib.SMTPResponseException as error:
            await self.close()
            raise _by_code(error.code, f"{error.code} {error.message}") from None
        except (aiosmtplib.SMTPException, OSError) as error:
            await self.close()
            raise TemporaryDeliveryError(f"connection lost: {type(error).__name__}: {error}") from None
        except BaseException:
            await self.close()
            raise
        answer = f"{response.code} {response.message}"
        if refused:
            answer += "; refused: " + ", ".join(f"{address} ({reply})" for address, reply in refused.items())
        return answer

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is None or not client.is_connected:
            return
        try:
            await asyncio.wait_for(client.quit(), 5.0)
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            client.close()


class _TokenRefused(Exception):
    def __init__(self, error: TemporaryDeliveryError) -> None:
        super().__init__(error.detail)
        self.error = error


async def _recipients(client: aiosmtplib.SMTP, recipients: list[str]) -> dict[str, str]:
    """RCPT for each; the refused ones with the server's answer. All refused: the worst answer decides."""
    refused: dict[str, tuple[int, str]] = {}
    for address in recipients:
        try:
            await client.rcpt(address)
        except aiosmtplib.SMTPRecipientRefused as error:
            refused[address] = (error.code, f"{error.code} {error.message}")
    if refused and len(refused) == len(recipients):
        code, reply = max(refused.values())  # one permanent refusal among temporary ones: the 5xx wins
        await client.rset()
        raise _by_code(code, reply)
    return {address: reply for address, (_code, reply) in refused.items()}


def _by_code(code: int, reply: str) -> TemporaryDeliveryError | PermanentDeliveryError:
    if 400 <= code < 500:
        return TemporaryDeliveryError(f"deferred: {reply}", reply=reply)
    return PermanentDeliveryError(f"refused: {reply}", reply=reply)


def _reply(error: aiosmtplib.SMTPResponseException) -> str:
    return f"{error.code} {error.message}"


class FileTransport:
    """No SMTP configured: each mail becomes ``<outbox>/<Message-ID>.eml``, so a newcomer sees what would go.

    The file name comes from the Message-ID, so writing the same mail again only replaces its file: this
    transport is idempotent and needs no `before_data` mark.
    """

    def __init__(self, outbox: Path) -> None:
        self.outbox = outbox
        self.description = f"file://{outbox}"

    def connect(self) -> FileConnection:
        return FileConnection(self.outbox)


class FileConnection:
    def __init__(self, outbox: Path) -> None:
        self._outbox = outbox

    async def deliver(self, data: bytes, *, sender: str, recipients: list[str], before_data: BeforeData) -> str:
        match = re.search(rb"^Message-ID:\s*<([^>\r\n]+)>", data, re.IGNORECASE | re.MULTILINE)
        name = re.sub(r"[^A-Za-z0-9._@-]", "_", match.group(1).decode("ascii", "replace")) if match else "mail"
        path = self._outbox / f"{name}.eml"
        try:
            await asyncio.to_thread(_write_atomically, path, data)
        except OSError as error:
            raise TemporaryDeliveryError(f"cannot write {path}: {error}") from None
        log.info("mail.written path=%s to=%s", path, ",".join(recipients))
        return f"written to {path}"

    async def close(self) -> None:
        return None


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".eml.partial")
    with partial.open("wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    partial.replace(path)
