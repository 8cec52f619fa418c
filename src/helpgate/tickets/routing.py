"""Where a new ticket goes: its triage recorded, an agent chosen and assigned, its first-response target kept.

Called by the workflow functions (workflows/functions/); each call is safe to repeat, because a step may
run again after a crash before its result was recorded.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from beanie import PydanticObjectId
from pymongo import ReturnDocument

from helpgate.accounts import availability
from helpgate.core.clock import aware, stored, utcnow
from helpgate.models import Priority, Role, Ticket, TicketStatus, TriageRecord, User
from helpgate.outbox import events
from helpgate.tickets import tickets

log = logging.getLogger(__name__)

OPEN_STATUSES = tickets.OPEN_STATUSES
UNANSWERED_STATUSES = (TicketStatus.NEW, TicketStatus.OPEN)
RAISED = {Priority.LOW: Priority.MEDIUM, Priority.MEDIUM: Priority.HIGH, Priority.HIGH: Priority.HIGH}


@dataclass(frozen=True)
class Targets:
    """First-response targets per priority."""

    high: timedelta
    medium: timedelta
    low: timedelta

    def for_priority(self, priority: Priority) -> timedelta:
        return {Priority.HIGH: self.high, Priority.MEDIUM: self.medium, Priority.LOW: self.low}[priority]


@dataclass(frozen=True)
class Seen:
    """What triage read of a ticket (memoised as JSON in its run): `record_triage` decides from it, without
    reading the ticket again while nobody changed what it decided from."""

    ticket_id: PydanticObjectId
    number: int
    created_at: datetime
    priority: Priority | None = None
    category: str | None = None
    response_due_at: datetime | None = None

    @classmethod
    def of(cls, ticket: Ticket) -> Seen:
        assert ticket.id is not None
        return cls(
            ticket.id, ticket.number, ticket.created_at, ticket.priority, ticket.category, ticket.response_due_at
        )

    def as_json(self) -> dict[str, object]:
        return {
            "ticket_id": str(self.ticket_id),
            "number": self.number,
            "created_at": self.created_at.isoformat(),
            "priority": None if self.priority is None else str(self.priority),
            "category": self.category,
            "response_due_at": None if self.response_due_at is None else self.response_due_at.isoformat(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Seen:
        due = data.get("response_due_at")
        return cls(
            ticket_id=PydanticObjectId(data["ticket_id"]),
            number=int(data["number"]),
            created_at=datetime.fromisoformat(data["created_at"]),
            priority=None if data.get("priority") is None else Priority(data["priority"]),
            category=data.get("category"),
            response_due_at=None if due is None else datetime.fromisoformat(due),
        )


async def record_triage(
    ticket_id: PydanticObjectId,
    *,
    priority: Priority,
    category: str,
    skills: Sequence[str],
    record: TriageRecord,
    targets: Targets,
    seen: Seen | None = None,
) -> Seen | None:
    """Store the triage on the ticket and announce `ticket/triaged`; the ticket as triaged. Priority and category
    an agent has set meanwhile are kept. None when the ticket is gone. With `seen` (what triage read), the write
    is conditional on those fields being as seen, and the ticket is read only when they changed."""
    for attempt in (seen, None):
        if attempt is None:
            found = await Ticket.get(ticket_id)
            if found is None:
                return None
            attempt = Seen.of(found)
        triaged = await _record(attempt, priority, category, skills, record, targets, checked=attempt is seen)
        if triaged is not None:
            return triaged
    return None


async def _record(
    seen: Seen,
    priority: Priority,
    category: str,
    skills: Sequence[str],
    record: TriageRecord,
    targets: Targets,
    *,
    checked: bool,
) -> Seen | None:
    now = utcnow()
    values: dict[str, object] = {"triage": record.model_dump(), "skills": list(skills), "updated_at": now}
    chosen = seen.priority or priority
    if seen.priority is None:
        values["priority"] = priority
    if seen.category is None:
        values["category"] = category
    due = seen.response_due_at
    if due is None:
        values["response_due_at"] = due = seen.created_at + targets.for_priority(chosen)
    where = (
        {"priority": seen.priority, "category": seen.category, "response_due_at": seen.response_due_at}
        if checked
        else None
    )
    # keeps priority_rank and the queue's counters
    if not await tickets.apply_update(seen.ticket_id, {"$set": values}, where=where):
        return None
    triaged = Seen(seen.ticket_id, seen.number, seen.created_at, chosen, seen.category or category, due)
    log.info(
        "ticket.triaged number=%s source=%s priority=%s category=%s skills=%s",
        seen.number,
        record.source,
        triaged.priority,
        triaged.category,
        ",".join(skills),
    )
    await events.emit(
        events.TICKET_TRIAGED,
        key=f"{events.TICKET_TRIAGED} {seen.ticket_id}",
        data={
            "ticket_id": str(seen.ticket_id),
            "ticket_number": seen.number,
            "priority": str(chosen),
            "skills": list(skills),
            "response_due_at": due.isoformat(),
        },
    )
    return triaged


@dataclass(frozen=True)
class Choice:
    user: User | None
    reason: str


@dataclass(frozen=True)
class OpenLoad:
    """A user's open tickets, and when the newest of them was assigned (None: no open ticket)."""

    open: int = 0
    newest_assigned_at: datetime | None = None


async def open_loads(users: Sequence[User]) -> dict[PydanticObjectId | None, OpenLoad]:
    """Each user's open tickets, counted in one query."""
    loads: dict[PydanticObjectId | None, OpenLoad] = {user.id: OpenLoad() for user in users}
    cursor = await Ticket.get_pymongo_collection().aggregate(
        [
            {
                "$match": {
                    "assignee.user_id": {"$in": [user.id for user in users]},
                    "status": {"$in": [str(status) for status in OPEN_STATUSES]},
                }
            },
            {"$group": {"_id": "$assignee.user_id", "n": {"$sum": 1}, "last": {"$max": "$assigned_at"}}},
        ]
    )
    async for group in cursor:
        last = group.get("last")
        loads[PydanticObjectId(group["_id"])] = OpenLoad(int(group["n"]), aware(last) if last is not None else None)
    return loads


def _coverage(user: User, wanted: set[str]) -> int:
    return len(wanted & {skill.lower() for skill in user.skills})


def _spread(ticket_id: PydanticObjectId | None, count: int) -> int:
    """Which of `count` agents tied on everything gets the ticket: one picked by the ticket's id (the same on a
    retry), so that agents who keep no ticket open, all tied at none, share the new tickets instead of the first
    listed getting each."""
    if ticket_id is None or count == 1:
        return 0
    return int.from_bytes(hashlib.sha256(ticket_id.binary).digest()[:8]) % count


async def choose(skills: Sequence[str], *, ticket_id: PydanticObjectId | None = None) -> Choice:
    """The active agent (not away) whose skills cover most of `skills`; ties go to the fewest open tickets,
    then to whoever's newest open ticket was assigned longest ago (tickets an older version stored without the
    moment count as assigned before any other), then to one picked by `ticket_id`. With no such agent, an admin
    by the same rule.

    The tie-break is read from the tickets with their count, so an assignment writes nothing on the agent; an
    assignment staff made counts as much as an automatic one. The staff come from accounts/availability.py: read
    at most every 10 s per process, so a change made through another instance or the command line counts within
    that (one made through this process at once); their open tickets are counted for every ticket."""
    wanted = {skill.lower() for skill in skills}
    staff = await availability.available_staff()
    agents = [user for user in staff if user.role is Role.AGENT]
    if wanted:
        matching = [user for user in agents if _coverage(user, wanted) > 0]
        pool, why = matching, f"covers {{covered}} of {len(wanted)} skills ({', '.join(sorted(wanted))})"
    else:
        pool, why = agents, "no skills needed"
    if not pool:
        pool = [user for user in staff if user.role is Role.ADMIN]
        why = "fallback to an admin: no available agent " + ("has these skills" if wanted else "")
        why = why.strip()
    if not pool:
        return Choice(None, "no active agent or admin is available")
    loads = await open_loads(pool)
    never = datetime.min.replace(tzinfo=UTC)

    def rank(user: User) -> tuple[int, int, datetime]:
        load = loads[user.id]
        return (-_coverage(user, wanted), load.open, load.newest_assigned_at or never)

    first = min(rank(user) for user in pool)
    tied = sorted((user for user in pool if rank(user) == first), key=lambda user: str(user.id))
    best = tied[_spread(ticket_id, len(tied))]
    reason = why.format(covered=_coverage(best, wanted)) + f"; {loads[best.id].open} open tickets"
    return Choice(best, reason)


async def assign_automatically(
    ticket_id: PydanticObjectId, *, skills: Sequence[str] | None = None
) -> tuple[Ticket | None, Choice]:
    """Give an unassigned ticket to the agent `choose` picks and announce it. A ticket that has an assignee
    already (an agent took it, or this ran before) is left as it is.

    `skills` are the ticket's as triage announced them: then the ticket is not read first, and the write that
    assigns it (only while unassigned) returns it."""
    if skills is None:
        found = await Ticket.get(ticket_id)
        if found is None:
            return None, Choice(None, "ticket not found")
        if found.assignee is not None:
            return found, Choice(None, f"already assigned to {found.assignee.email}")
        skills = found.skills
    choice = await choose(skills, ticket_id=ticket_id)
    if choice.user is None:
        log.warning("ticket.unassigned ticket=%s reason=%s", ticket_id, choice.reason)
        return await Ticket.get(ticket_id), choice
    now = stored(utcnow())
    assignee = tickets.participant(choice.user)
    document = await Ticket.get_pymongo_collection().find_one_and_update(
        {"_id": ticket_id, "assignee": None},
        {"$set": {"assignee": assignee.model_dump(), "assigned_at": now, "updated_at": now}},
        return_document=ReturnDocument.AFTER,
    )
    if document is None:
        fresh = await Ticket.get(ticket_id)
        if fresh is None:
            return None, Choice(None, "ticket not found")
        if fresh.assignee is not None:
            if fresh.assigned_at is not None:  # by an earlier try of this step, cut off before it announced it
                await tickets.announce_assignment(fresh, by=None, reason=choice.reason)  # (else stored already)
            return fresh, Choice(None, f"already assigned to {fresh.assignee.email}")
        return fresh, Choice(None, "assigned meanwhile by someone else")
    ticket = Ticket.model_validate(document)
    log.info("ticket.assigned number=%s to=%s reason=%s", ticket.number, choice.user.email, choice.reason)
    await tickets.announce_assignment(ticket, by=None, reason=choice.reason)
    return ticket, choice


async def escalate_if_unanswered(ticket_id: PydanticObjectId) -> Ticket | None:
    """Past the first-response target with no agent reply: raise the priority one step, once.
    Returns the escalated ticket, or None when nothing was due (answered, solved, escalated already)."""
    ticket = await Ticket.get(ticket_id)
    if ticket is None or ticket.first_response_at is not None or ticket.escalated_at is not None:
        return None
    if ticket.status not in UNANSWERED_STATUSES:
        return None
    now = utcnow()
    raised = RAISED[ticket.priority or Priority.MEDIUM]
    assert ticket.id is not None
    escalated = await tickets.apply_update(
        ticket.id,
        {"$set": {"priority": raised, "escalated_at": now, "updated_at": now}},
        where={"escalated_at": None, "first_response_at": None},
    )
    if not escalated:
        return None
    log.warning(
        "ticket.escalated number=%s priority=%s->%s reason=no first response", ticket.number, ticket.priority, raised
    )
    ticket.priority, ticket.escalated_at = raised, now
    await tickets.announce_update(ticket, fields=["priority"], by=None, now=now)
    return ticket


async def admins() -> list[User]:
    return await User.find({"role": Role.ADMIN, "active": True}).to_list()
