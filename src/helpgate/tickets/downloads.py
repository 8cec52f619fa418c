"""An attachment of a message on a ticket, for a viewer who may see that message: its bytes, and the name and
type it is served under. Mail attachments are hostile: a type a browser would render (HTML, SVG, anything
scriptable) is served as application/octet-stream, and the caller sends every one as a download."""

from __future__ import annotations

from dataclasses import dataclass

from helpgate.core.errors import NotFound
from helpgate.models import User
from helpgate.tickets import attachments, tickets

#: Types served as declared: what a browser shows without running anything. Everything else is octet-stream.
SAFE_TYPES = frozenset(
    {
        "application/pdf",
        "image/gif",
        "image/jpeg",
        "image/png",
        "image/webp",
        "text/csv",
        "text/plain",
    }
)
GENERIC = "application/octet-stream"


@dataclass(frozen=True)
class Download:
    filename: str
    content_type: str
    data: bytes


def served_type(declared: str) -> str:
    kind = declared.split(";")[0].strip().lower()
    return kind if kind in SAFE_TYPES else GENERIC


async def attachment(*, viewer: User, number: int, message_id: str, index: int) -> Download:
    """The `index`-th attachment of a message the viewer may see on ticket `number` (customers: not of notes);
    NotFound otherwise (no leak of what exists), ContentPurged when retention removed its bytes."""
    _, messages = await tickets.get_ticket(viewer=viewer, number=number)
    message = next((each for each in messages if str(each.id) == message_id), None)
    if message is None or not 0 <= index < len(message.attachments):
        raise NotFound("no such attachment")
    ref = message.attachments[index]
    data = await attachments.read_bytes(ref)
    return Download(filename=ref.filename, content_type=served_type(ref.content_type), data=data)
