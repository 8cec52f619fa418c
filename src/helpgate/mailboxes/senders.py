"""Mailboxes that send their own mail: which mailbox sends a mail, and the SMTP transport it sends through.

Mail about a ticket that came in through a mailbox with SMTP settings goes out through that mailbox's server, as
that mailbox (Microsoft 365: XOAUTH2 to smtp.office365.com:587). Mail about no ticket goes through the global
relay, or, when there is none (no SMTP_HOST), through the mailbox an admin marked `default_sender`. Everything
else goes through the global relay, as before mailboxes could send; so does the mail of an OAuth2 mailbox whose
grant was refused (needs consent), while there is a global relay, and the alert about it.

The table of sending mailboxes is read at most every RECENT_SECONDS per process (a change made through this
process is seen at once: `forget`), so routing a mail costs no store command; a transport is built once per
mailbox and settings (`updated_at`).
"""

from __future__ import annotations

from datetime import datetime

from beanie import PydanticObjectId

from helpgate.core.crypto import SecretBox
from helpgate.core.recent import Recent
from helpgate.mail_out.outgoing import Sender
from helpgate.mail_out.transport import SmtpConfig, SmtpTransport, Transport
from helpgate.mailboxes.models.mailbox import GrantState, Mailbox, MailboxAuth
from helpgate.mailboxes.oauth import Tokens

RECENT_SECONDS = 10.0


async def _sending() -> list[Mailbox]:
    return await Mailbox.find({"smtp": {"$ne": None}}).to_list()


def _can_send(mailbox: Mailbox) -> bool:
    return mailbox.auth is not MailboxAuth.OAUTH2 or mailbox.grant.state is not GrantState.NEEDS_CONSENT


def _database() -> str:
    return str(Mailbox.get_pymongo_collection().database.name)


class Senders:
    """Routes and transports of the mailboxes that send; one per process."""

    def __init__(self, *, box: SecretBox, tokens: Tokens, relay: bool) -> None:
        self._box = box
        self._tokens = tokens
        self._relay = relay  # a global relay is configured (SMTP_HOST)
        self._recent = Recent(_sending, seconds=RECENT_SECONDS)
        self._transports: dict[PydanticObjectId, tuple[datetime, SmtpTransport]] = {}

    def forget(self) -> None:
        """Mailboxes changed through this process: read them again for the next mail."""
        self._recent.forget(_database())

    async def route(self, address: str | None) -> Sender | None:
        """The mailbox that sends mail about a ticket that came in at `address` (None: mail about no ticket)."""
        sending = await self._recent.get(_database())
        if address is not None:
            found = next((mailbox for mailbox in sending if mailbox.address == address.lower()), None)
        elif not self._relay:  # never a mailbox that needs consent: it may be what the mail is about
            found = next((mailbox for mailbox in sending if mailbox.default_sender and _can_send(mailbox)), None)
        else:
            found = None
        if found is None or found.id is None:
            return None
        return Sender(mailbox_id=found.id, address=found.address, name=found.display_name)

    async def transport(self, mailbox_id: PydanticObjectId) -> Transport | None:
        """The SMTP transport of this mailbox, as it is set now; None when it sends no more (the global relay)."""
        sending = await self._recent.get(_database())
        mailbox = next((each for each in sending if each.id == mailbox_id), None)
        if mailbox is not None and not _can_send(mailbox) and self._relay:
            return None  # its grant was refused: the global relay sends for it until an admin connects it again
        if mailbox is None or mailbox.smtp is None:
            self._transports.pop(mailbox_id, None)
            return None
        kept = self._transports.get(mailbox_id)
        if kept is not None and kept[0] == mailbox.updated_at:
            return kept[1]
        built = SmtpTransport(self._config(mailbox))
        self._transports[mailbox_id] = (mailbox.updated_at, built)
        return built

    def _config(self, mailbox: Mailbox) -> SmtpConfig:
        smtp = mailbox.smtp
        assert smtp is not None
        username = smtp.username or mailbox.username
        if mailbox.auth is MailboxAuth.OAUTH2:

            async def token(refused: str | None) -> str:
                return await self._tokens.access_token(mailbox, refused=refused)

            return SmtpConfig(
                host=smtp.host,
                port=smtp.port,
                security=smtp.security,
                username=username,
                verify_tls=smtp.verify_tls,
                oauth_token=token,
            )
        secret = smtp.password_encrypted or mailbox.password_encrypted
        return SmtpConfig(
            host=smtp.host,
            port=smtp.port,
            security=smtp.security,
            username=username,
            password=self._box.decrypt(secret) if secret else None,
            verify_tls=smtp.verify_tls,
        )
