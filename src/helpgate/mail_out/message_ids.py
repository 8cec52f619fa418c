"""Signed Message-IDs and reply addresses: how a reply is recognised as ours without a database lookup.

Both carry the ticket number and an HMAC made with a key derived from the installation's secret key, so
nobody can forge one that points at another ticket (docs/architecture.md, threading rules 1 and 2):

* Message-ID ``hg.<number>.<random>.<mac>@<domain>``; the MAC covers the number and the random part.
  Number 0 means "not about a ticket" (a welcome mail) and never threads.
* Reply address ``<local>+<number>.<mac>@<domain>``; the MAC covers the number only, so one ticket keeps
  one reply address.

The MACs are 10 lower-case hex digits (40 bits): enough against online guessing, short enough for a
local part, and immune to MTAs that change the case of local parts. Pure functions, no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

MAC_LENGTH = 10
_MESSAGE_ID = re.compile(r"<?hg\.(\d{1,12})\.([a-z0-9]{8,32})\.([0-9a-f]{10})@[^<>\s@]+>?", re.IGNORECASE)
_REPLY_TAG = re.compile(r"(\d{1,12})\.([0-9a-f]{10})", re.IGNORECASE)


def _mac(secret: str, purpose: str, payload: str) -> str:
    # A key per purpose, so a MAC made for one kind of token is never valid for the other.
    key = hmac.new(secret.encode(), f"helpgate {purpose}".encode(), hashlib.sha256).digest()
    return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()[:MAC_LENGTH]


def make(ticket_number: int, *, secret: str, domain: str, seed: str | None = None) -> str:
    """A new Message-ID (without angle brackets) naming the ticket.

    With a `seed` the same seed always gives the same Message-ID: an idempotency key for mail that a retried
    workflow step may queue twice (the queue keeps one mail per Message-ID).
    """
    if ticket_number < 0:
        raise ValueError("ticket numbers are not negative")
    nonce = secrets.token_hex(8) if seed is None else _mac(secret, "message-id-seed", seed)[:10] + "s"
    return f"hg.{ticket_number}.{nonce}.{_mac(secret, 'message-id', f'{ticket_number}.{nonce}')}@{domain}"


def _signed_number(message_id: str, secret: str) -> int | None:
    match = _MESSAGE_ID.fullmatch(message_id.strip())
    if match is None:
        return None
    number, nonce, mac = match.group(1), match.group(2).lower(), match.group(3).lower()
    if not hmac.compare_digest(mac, _mac(secret, "message-id", f"{int(number)}.{nonce}")):
        return None
    return int(number)


def ticket_of(message_id: str, *, secret: str) -> int | None:
    """The ticket number a Message-ID we signed names; None for anything else (or a forged MAC)."""
    return _signed_number(message_id, secret) or None


def is_signed(message_id: str, *, secret: str) -> bool:
    """Whether we made this Message-ID, also for mail about no ticket (a welcome, a password reset)."""
    return _signed_number(message_id, secret) is not None


def reply_address(ticket_number: int, *, secret: str, address: str) -> str:
    """The ticket's reply address: ``support@example.com`` becomes ``support+12.<mac>@example.com``."""
    local, _, domain = address.partition("@")
    return f"{local}+{ticket_number}.{_mac(secret, 'reply-address', str(ticket_number))}@{domain}"


def ticket_of_address(address: str, *, secret: str) -> int | None:
    """The ticket number a reply address we made names; None for any other address."""
    local, at, _domain = address.strip().strip("<>").partition("@")
    _base, plus, tag = local.partition("+")
    if not at or not plus:
        return None
    match = _REPLY_TAG.fullmatch(tag)
    if match is None:
        return None
    number, mac = int(match.group(1)), match.group(2).lower()
    if not hmac.compare_digest(mac, _mac(secret, "reply-address", str(number))):
        return None
    return number or None


def base_address(address: str) -> str:
    """The address without its ``+tag``: ``support+12.ab@x`` is delivered to the mailbox ``support@x``."""
    local, at, domain = address.partition("@")
    return f"{local.partition('+')[0]}{at}{domain}"
