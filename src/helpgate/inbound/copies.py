"""Is this mail a copy of one already stored? The same Message-ID and the same fingerprint make a copy.

A message stored before messages kept a fingerprint has its fingerprint worked out from its raw mail the first time
it is compared (and kept). When that raw mail is gone (purged by retention), the rule of that time decides: the same
Message-ID delivered to the same address is a copy.
"""

from __future__ import annotations

import logging

from helpgate.core.errors import ContentPurged
from helpgate.inbound import fingerprint as fingerprints
from helpgate.inbound import raw_messages
from helpgate.models import Message
from helpgate.tickets import tickets

log = logging.getLogger(__name__)


async def earlier_copy(*, message_id: str, fingerprint: str, mailbox: str) -> tuple[Message | None, bool]:
    """The stored message this mail is a copy of, if any; and whether its Message-ID is already carried by
    another, different mail (the ID was reused)."""
    reused = False
    for earlier in await tickets.inbound_with_message_id(message_id):
        known = earlier.fingerprint or await _stored_fingerprint(earlier)
        if known == fingerprint or (known is None and earlier.dedupe_key == f"{mailbox} {message_id}"):
            return earlier, False
        reused = True
    return None, reused


async def _stored_fingerprint(message: Message) -> str | None:
    """The fingerprint of a message stored without one, from its raw mail; None when that is gone."""
    raw = await raw_messages.get(message.raw_message_id) if message.raw_message_id else None
    if raw is None:
        return None
    try:
        data = await raw_messages.read_bytes(raw)
    except ContentPurged:
        return None
    found = fingerprints.of(data)
    await tickets.record_fingerprint(message, found)
    log.info("message.fingerprinted id=%s message_id=%s", message.id, message.message_id)
    return found
