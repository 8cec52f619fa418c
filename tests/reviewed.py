"""Tickets staff reviewed, written straight into the store: what the learned triage trains on."""

from __future__ import annotations

from bson import ObjectId

from helpgate.core.clock import utcnow
from helpgate.models import Direction, Message, Participant, Ticket
from helpgate.tickets.categories import CategoryEntry

PRINTERS = CategoryEntry("printers", "printers, toner and paper jams")  # no keywords: the keyword tables never say it
PROBLEMS = ("a paper jam", "streaks on every page", "an empty toner cartridge", "a blinking orange light")
PRINTER_TICKETS = [
    (f"Printer on floor {floor}", f"The printer on floor {floor} has {problem}. Could someone look at it?")
    for floor in range(1, 7)
    for problem in PROBLEMS
]
BILLING_TICKETS = [
    (f"Invoice {number}", f"I was charged twice for invoice {number}. Please refund the second payment.")
    for number in range(100, 124)
]


async def reviewed(rows: list[tuple[str, str, str]], *, first: int = 1, source: str = "heuristic") -> None:
    """Tickets numbered from `first`, each with its first message, reviewed by staff as `rows` say: (subject, body,
    category), priority medium."""
    requester = Participant(user_id=ObjectId(), email="customer@example.com")
    now = utcnow()
    review = {"outcome": "confirmed", "source": source, "priority": "medium", "said_priority": "medium", "at": now}
    tickets, messages = [], []
    for number, (subject, body, category) in enumerate(rows, start=first):
        ticket_id = ObjectId()
        tickets.append(
            Ticket(
                id=ticket_id,
                number=number,
                subject=subject,
                requester=requester,
                origin_key=f"origin-{number}",
                category=category,
                triage_review={**review, "category": category, "said_category": category},
            )
        )
        messages.append(
            Message(
                ticket_id=ticket_id,
                ticket_number=number,
                direction=Direction.INBOUND,
                from_email="customer@example.com",
                subject=subject,
                text=body,
                dedupe_key=f"origin-{number}",
            )
        )
    await Ticket.insert_many(tickets)
    await Message.insert_many(messages)


def mixed() -> list[tuple[str, str, str]]:
    """Printer and billing tickets, interleaved so that the held-out ones (every fourth) have both."""
    printers = [(*row, "printers") for row in PRINTER_TICKETS]
    billing = [(*row, "billing") for row in BILLING_TICKETS]
    rows = []
    for block in range(len(printers) // 4):
        p, b = printers[block * 4 : block * 4 + 4], billing[block * 4 : block * 4 + 4]
        rows += [p[0], b[0], p[1], b[1], b[2], p[2], b[3], p[3]]  # the 4th billing, the 8th printers
    return rows
