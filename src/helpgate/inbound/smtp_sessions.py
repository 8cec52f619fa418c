"""Open SMTP sessions, counted in total and per client address against their caps.

A connection over a cap is answered 421 and closed before its greeting (never a 5xx: the client tries again
later, as Postfix's `smtpd_client_connection_count_limit` does). Each session holds memory (up to the message
size limit while it sends DATA), so the caps bound what the listener can be made to hold: sessions x limit.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from enum import StrEnum


@dataclass(frozen=True)
class SessionLimits:
    """What one listener allows: sessions open at once (in all, and per client), and how long they may take."""

    sessions: int = 100
    sessions_per_client: int = 10
    idle_seconds: float = 300.0  # between commands (RFC 5321 §4.5.3.2.7 asks at least 5 minutes)
    data_seconds: float = 600.0  # from the 354 to the end of the data


def client_of(address: str) -> str:
    """The client a connection counts against: its IPv4 address, or its IPv6 /64 (one site's network, which
    hands each machine, or each connection, an address of its own)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class Refusal(StrEnum):
    TOO_MANY_SESSIONS = "too_many_sessions"
    TOO_MANY_FROM_CLIENT = "too_many_from_client"


@dataclass
class SessionSlots:
    """Sessions open now, in all and per client (as `client_of` names it), against the caps."""

    total: int
    per_client: int
    _by_client: dict[str, int] = field(default_factory=dict)
    _open: int = 0

    @property
    def open(self) -> int:
        return self._open

    def of(self, client: str) -> int:
        return self._by_client.get(client, 0)

    def admit(self, client: str) -> Refusal | None:
        """Take a slot for a session of `client`, or say which cap refuses it."""
        if self._open >= self.total:
            return Refusal.TOO_MANY_SESSIONS
        if self._by_client.get(client, 0) >= self.per_client:
            return Refusal.TOO_MANY_FROM_CLIENT
        self._open += 1
        self._by_client[client] = self._by_client.get(client, 0) + 1
        return None

    def release(self, client: str) -> None:
        """Give back the slot `admit` took (a client with none left is forgotten: the table stays small)."""
        remaining = self._by_client[client] - 1
        if remaining:
            self._by_client[client] = remaining
        else:
            del self._by_client[client]
        self._open -= 1
