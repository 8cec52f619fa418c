"""One queued welcome mail per call: the outbound queue tests' common starting point."""

from __future__ import annotations

from pathlib import Path

from helpgate.core.mail.outgoing import Outgoing
from helpgate.core.mail.templates import TemplateKind, Templates
from helpgate.core.models import OutboundMail
from helpgate.core.models.clock import utcnow
from helpgate.core.services import outbound

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
