"""Who helpgate writes as, and what a service needs to put a mail in the queue (passed down, never global)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.headerregistry import Address
from email.utils import parseaddr
from typing import Protocol

from beanie import PydanticObjectId

from helpgate.core.errors import ConfigurationError
from helpgate.mail_out import message_ids
from helpgate.mail_out.templates import Templates
from helpgate.models import OutboundMail


class Handover(Protocol):
    """The outbound worker of this process, taking mail queued here without finding it in the queue.

    `claim` gives the claim token and lease a mail queued now is stored under (None: queue it for the
    dispatcher), and `take` hands over the mail once it is stored so: it is sent without being claimed again,
    its recipients checked against the suppressions first unless `screened` (the queuing code just did).
    """

    def claim(self, now: datetime) -> tuple[str, datetime] | None: ...

    def take(self, mail: OutboundMail, *, screened: bool) -> None: ...


@dataclass(frozen=True)
class Sender:
    """A mailbox that sends mail itself, through its own SMTP server, as its own address."""

    mailbox_id: PydanticObjectId
    address: str
    name: str = ""


#: The mailbox that sends mail about a ticket that came in at `address` (None: mail about no ticket); None when
#: the global relay sends it. The gateway wires it to mailboxes/senders.py.
Route = Callable[[str | None], Awaitable[Sender | None]]


async def _global_relay(_address: str | None) -> Sender | None:
    return None


def _nothing() -> None:
    return None


def _no_handover() -> Handover | None:
    return None


@dataclass(frozen=True)
class Outgoing:
    """Our From address, the key that signs Message-IDs and reply addresses, the templates, a wake-up call.

    `wake` tells the outbound worker that mail was queued; without a worker (the CLI) it does nothing and
    the mail waits in the queue for the next running gateway. `handover` is that worker, when it runs in this
    process and can take mail directly (see `Handover`).
    """

    from_address: str
    from_name: str
    secret: str
    templates: Templates
    max_attachment_bytes: int = 10 * 1024 * 1024
    public_url: str = "http://127.0.0.1:8000"  # where links in mail point (HELPGATE_PUBLIC_URL)
    wake: Callable[[], None] = field(default=_nothing)
    handover: Callable[[], Handover | None] = field(default=_no_handover)
    route: Route = field(default=_global_relay)

    @classmethod
    def parse_from(cls, mail_from: str) -> tuple[str, str]:
        """``"Acme Support <help@acme.example>"`` → (``help@acme.example``, ``Acme Support``)."""
        name, address = parseaddr(mail_from)
        if address.count("@") != 1 or not address.split("@")[0] or not address.split("@")[1]:
            raise ConfigurationError(f"HELPGATE_MAIL_FROM is not an email address: {mail_from!r}")
        return address.lower(), name

    @property
    def domain(self) -> str:
        return self.from_address.rpartition("@")[2]

    @property
    def loop_marker(self) -> str:
        """The X-Loop value on every mail we send: our From address."""
        return self.from_address

    @property
    def display_name(self) -> str:
        return self.from_name or self.from_address

    @property
    def from_header(self) -> str:
        local, _, domain = self.from_address.partition("@")
        return str(Address(display_name=self.from_name, username=local, domain=domain))

    def new_message_id(self, ticket_number: int | None, *, seed: str | None = None, domain: str | None = None) -> str:
        """A signed Message-ID in `domain` (the domain the mail is From; ours by default)."""
        return message_ids.make(ticket_number or 0, secret=self.secret, domain=domain or self.domain, seed=seed)

    def reply_address(self, ticket_number: int, mailbox: str | None) -> str:
        """The ticket's reply address on the mailbox it came through (so the reply reaches us there)."""
        return message_ids.reply_address(ticket_number, secret=self.secret, address=mailbox or self.from_address)
