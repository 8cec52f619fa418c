"""Mail to the admins about a mailbox that stopped importing and only an admin can mend."""

from __future__ import annotations

from helpgate.accounts import users
from helpgate.core.clock import utcnow
from helpgate.mail_out import outbound
from helpgate.mail_out.outgoing import Outgoing
from helpgate.mail_out.templates import TemplateKind
from helpgate.models import Mailbox, Role


async def needs_consent(mailbox: Mailbox, reason: str, *, outgoing: Outgoing) -> None:
    """One mail to each active admin (the caller makes sure it is once per refusal, oauth.Tokens.needs_consent)."""
    assert mailbox.oauth is not None
    now = utcnow()
    for admin in await users.staff():
        if admin.role is not Role.ADMIN:
            continue
        await outbound.queue_automatic(
            outgoing=outgoing,
            template=TemplateKind.MAILBOX_NEEDS_CONSENT,
            to=admin.email,
            subject=f"Mailbox {mailbox.address} needs consent again",
            context={
                "address": mailbox.address,
                "mailbox_id": str(mailbox.id),
                "reason": reason,
                "flow": str(mailbox.oauth.flow),
            },
            now=now,
            thread=False,
            idempotency=f"mailbox-consent:{mailbox.id}:{mailbox.grant.version}:{admin.id}",
            to_staff=True,
        )
