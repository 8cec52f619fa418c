"""What an inbound message said in full: its whole text, its sanitised HTML and its attachments' list.

The message is written first (tickets.add_message, with the ticket view's text); this adds the rest to it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from helpgate.models import Message
from helpgate.tickets.models.message import AttachmentRef

log = logging.getLogger(__name__)


async def record(*, dedupe_key: str, full_text: str, html: str, attachments: Sequence[AttachmentRef]) -> bool:
    """Set the full body of the message with this dedupe key; False when there is no such message."""
    result = await Message.get_pymongo_collection().update_one(
        {"dedupe_key": dedupe_key},
        {
            "$set": {
                "full_text": full_text,
                "html": html,
                "attachments": [ref.model_dump() for ref in attachments],
            }
        },
    )
    log.info(
        "message.body_recorded key=%s text_chars=%d html_chars=%d attachments=%d",
        dedupe_key,
        len(full_text),
        len(html),
        len(attachments),
    )
    return result.matched_count == 1
