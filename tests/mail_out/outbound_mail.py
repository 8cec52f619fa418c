"""One queued welcome mail per call: the outbound queue tests' common starting point."""

from __future__ import annotations

from pathlib import Path

from helpgate.core.clock import utcnow
from helpgate.mail_out import outbound
from helpgate.mail_out.outgoing import Outgoing
from helpgate.mail_out.templates import TemplateKind, Templates
from helpgate.models import OutboundMail

OUTGOING = Outgoing(
    from_address="help@acme.test", from_name="Acme", secret="s" * 32, templates=Templates(Path("/nonexistent"))
)


async def queue_mail(index: int = 0) -> OutboundMail:
    mail = await outbound.prepare(
        outgoing=OUTGOING,
        template=TemplateKind.WELCOME,
        to=[f"user{index}@example.org"],
        subject="Welcome",
        context={"user_name": "", "email": "x@y", "role": "customer", "support_address": "help@acme.test"},
        now=utcnow(),
        automatic=True,
    )
    return await outbound.enqueue(mail, loop_marker=OUTGOING.loop_marker)
