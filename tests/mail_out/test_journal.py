"""The sender journal's group commits: the 250s of about a second are recorded on their mails in one write, and
until then the journal carries them, so recovery after a crash records them sent rather than uncertain."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from helpgate.core.clock import utcnow
from helpgate.mail_out import deliveries, journal, outbound, senders
from helpgate.mail_out.journal import SenderJournal
from helpgate.models import DeliveryStatus, OutboundMail
from tests.mail_out.outbound_mail import queue_mail as _queue

Store = AsyncMongoClient[dict[str, Any]]


async def test_the_250s_of_a_moment_are_recorded_together_and_carried_by_the_journal_until_then(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    groups: list[int] = []
    record = deliveries.mark_sent_many

    async def counted(sent: Any, **kwargs: Any) -> Any:
        groups.append(len(sent))
        return await record(sent, **kwargs)

    monkeypatch.setattr(deliveries, "mark_sent_many", counted)
    monkeypatch.setattr(journal, "SENT_DELAY", 3600.0)  # only the group size or closing records them here
    recorded: list[str] = []
    sender = SenderJournal(renew_seconds=60, on_sent=lambda mail, reply: recorded.append(mail.key))
    await sender.open()
    for index in range(3):
        await _queue(index)
    mails = await deliveries.claim_batch(token=sender.token, now=utcnow(), lease=timedelta(minutes=5), limit=3)
    for mail in mails:
        await sender.begin(mail)
        sender.sent(mail, "250 OK")
    await sender.begin(mails[0])  # the next write of the journal (a mail begun again, as a retry would)

    stored = await senders.get(sender.token)
    assert stored is not None and {entry.mail for entry in stored.answered} == {mail.id for mail in mails}
    assert groups == [] and [await _status(mail) for mail in mails] == [DeliveryStatus.SENDING] * 3

    await sender.close(10)

    assert groups == [3] and sorted(recorded) == sorted(mail.key for mail in mails)
    assert [await _status(mail) for mail in mails] == [DeliveryStatus.SENT] * 3
    assert await senders.get(sender.token) is None  # nothing left that may have reached DATA: retired


async def _status(mail: OutboundMail) -> DeliveryStatus:
    stored = await outbound.get(mail.key)
    assert stored is not None
    return stored.status
