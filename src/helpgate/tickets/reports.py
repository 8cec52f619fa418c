"""The dashboard's numbers over the last `days`: tickets opened and solved per day, the backlog by status and
priority, first-response and resolution times (median and 90th percentile), SLA breaches, each agent's open
tickets and who triaged the tickets (Gemini, an OpenAI-compatible AI, the learned triage or the heuristic).

The backlog comes from the queue's counters and the load from one aggregate; the rest from one read of the
tickets opened or solved in the period, their dates and triage source only. Resolution counts tickets staff
marked solved (`solved_at`, kept since 2026-12); tickets solved before that count as opened only.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from helpgate.accounts import users
from helpgate.core.clock import aware
from helpgate.core.errors import Forbidden
from helpgate.models import Priority, Role, Ticket, TicketStatus, User
from helpgate.tickets import routing, ticket_list
from helpgate.tickets.tickets import OPEN_STATUSES, PRIORITIES

MAX_DAYS = 366
UNTRIAGED = "untriaged"


@dataclass(frozen=True)
class Day:
    day: date
    opened: int
    solved: int


@dataclass(frozen=True)
class Durations:
    """How long something took, in seconds, over `count` tickets (None when there were none)."""

    count: int
    median: float | None
    p90: float | None

    @classmethod
    def of(cls, seconds: list[float]) -> Durations:
        if not seconds:
            return cls(count=0, median=None, p90=None)
        ordered = sorted(seconds)
        nearest_rank = ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]
        return cls(count=len(ordered), median=statistics.median(ordered), p90=nearest_rank)


@dataclass(frozen=True)
class Load:
    email: str
    name: str
    open: int
    away: bool


@dataclass(frozen=True)
class Dashboard:
    since: datetime
    until: datetime
    days: list[Day]
    backlog: dict[TicketStatus, dict[Priority | None, int]]  # open statuses only
    first_response: Durations  # tickets opened in the period that got an agent's first reply
    resolution: Durations  # tickets solved in the period: from opened to solved
    sla_breaches: int  # tickets opened in the period whose first response came late, or not in time
    load: list[Load]  # active agents and admins, most open tickets first
    triage_sources: dict[str, int]  # tickets opened in the period, by who triaged them


def _each_day(first: date, days: int) -> list[date]:
    return [first + timedelta(days=offset) for offset in range(days)]


def _moment(value: object) -> datetime | None:
    """A date field of a ticket as read from the store, with its zone (None when it is not set)."""
    return aware(value) if isinstance(value, datetime) else None


def _breached(ticket: dict[str, object], now: datetime) -> bool:
    due = _moment(ticket.get("response_due_at"))
    answered = _moment(ticket.get("first_response_at"))
    if ticket.get("escalated_at") is not None:
        return True
    if due is None:
        return False
    return answered > due if answered is not None else due < now


async def dashboard(*, viewer: User, now: datetime, days: int = 30) -> Dashboard:
    """Admins only (Forbidden otherwise)."""
    if viewer.role is not Role.ADMIN:
        raise Forbidden("only admins can do this")
    days = max(1, min(days, MAX_DAYS))
    first_day = (now - timedelta(days=days - 1)).date()
    since = datetime.combine(first_day, datetime.min.time(), tzinfo=UTC)
    fields = ["created_at", "solved_at", "first_response_at", "response_due_at", "escalated_at", "triage.source"]
    cursor = Ticket.get_pymongo_collection().find(
        {"$or": [{"created_at": {"$gte": since}}, {"solved_at": {"$gte": since}}]},
        projection={name: 1 for name in fields},
    )
    opened: Counter[date] = Counter()
    solved: Counter[date] = Counter()
    first_response: list[float] = []
    resolution: list[float] = []
    sources: Counter[str] = Counter()
    breaches = 0
    async for ticket in cursor:
        created = aware(ticket["created_at"])
        solved_at = _moment(ticket.get("solved_at"))
        if solved_at is not None and solved_at >= since:
            solved[solved_at.date()] += 1
            resolution.append((solved_at - created).total_seconds())
        if created < since:
            continue
        opened[created.date()] += 1
        answered = _moment(ticket.get("first_response_at"))
        if answered is not None:
            first_response.append((answered - created).total_seconds())
        breaches += _breached(ticket, now)
        sources[(ticket.get("triage") or {}).get("source") or UNTRIAGED] += 1

    counted = await ticket_list.buckets(OPEN_STATUSES)
    backlog = {status: {priority: counted[status, priority] for priority in PRIORITIES} for status in OPEN_STATUSES}
    staff = await users.staff()
    loads = await routing.open_loads(staff)
    load = sorted(
        (Load(email=user.email, name=user.name, open=loads[user.id].open, away=user.away) for user in staff),
        key=lambda each: (-each.open, each.email),
    )
    return Dashboard(
        since=since,
        until=now,
        days=[Day(day=day, opened=opened[day], solved=solved[day]) for day in _each_day(first_day, days)],
        backlog=backlog,
        first_response=Durations.of(first_response),
        resolution=Durations.of(resolution),
        sla_breaches=breaches,
        load=load,
        triage_sources=dict(sources.most_common()),
    )
