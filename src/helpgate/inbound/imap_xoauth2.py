"""IMAP login with `AUTHENTICATE XOAUTH2` (Google's and Microsoft's SASL mechanism for OAuth2 access tokens).

aioimaplib 2.0.3 has `xoauth2`, but a refused token hangs it: the server answers with a continuation carrying a
base64 JSON error (`+ eyJzdGF0dXMiOiI0MDEi...`) and waits for the client's empty line before its tagged NO
(RFC 7628 section 3.2.3; Gmail and Dovecot both do so), and aioimaplib never sends that line. Its debug log also
shows the base64 of the token, which it does not scrub. Here the command answers the continuation with an empty
line, keeps the server's error for the message, and the log shows stars instead of the credentials.
"""

from __future__ import annotations

import base64
import binascii
import json

from aioimaplib import aioimaplib


class _XOAuth2(aioimaplib.Command):  # type: ignore[misc]  # aioimaplib has no type hints
    """AUTHENTICATE XOAUTH2 with an initial response (SASL-IR); answers a continuation with an empty line."""

    def __init__(self, tag: str, credentials: str, protocol: aioimaplib.IMAP4ClientProtocol) -> None:
        super().__init__("AUTHENTICATE", tag, "XOAUTH2", credentials, loop=protocol.loop)
        self._protocol = protocol
        self.challenge: bytes | None = None

    def flush(self) -> None:
        """aioimaplib calls this on a continuation line during the command: the server's error challenge."""
        if self.challenge is None and self._resp_lines:
            self.challenge = bytes(self._resp_lines[-1])
        if self._protocol.transport is not None:
            self._protocol.transport.write(b"\r\n")


def credentials(user: str, token: str) -> str:
    """The XOAUTH2 initial response: base64 of `user=<user>^Aauth=Bearer <token>^A^A`."""
    return base64.b64encode(f"user={user}\x01auth=Bearer {token}\x01\x01".encode()).decode("ascii")


def challenge_text(challenge: bytes | None) -> str:
    """The server's error challenge in words: `{"status":"401",...}` → `status 401, schemes bearer`."""
    if not challenge:
        return ""
    encoded = challenge.removeprefix(b"+").strip()
    try:
        decoded = json.loads(base64.b64decode(encoded, validate=True))
    except (binascii.Error, ValueError):
        return encoded.decode(errors="replace")[:200]
    if not isinstance(decoded, dict):
        return str(decoded)[:200]
    return ", ".join(f"{key} {value}" for key, value in decoded.items())[:200]


async def login(client: aioimaplib.IMAP4, user: str, token: str) -> tuple[aioimaplib.Response, str]:
    """Log in with the access token: the server's response, and its error challenge in words (empty when none)."""
    protocol = client.protocol
    secret = credentials(user, token)
    command = _XOAuth2(protocol.new_tag(), secret, protocol)
    async with protocol.state_condition:
        response = await protocol.execute(command, scrub=secret)
        if response.result == "OK":
            protocol.state = aioimaplib.AUTH
        protocol.state_condition.notify_all()
    return response, challenge_text(command.challenge)
