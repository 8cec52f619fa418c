"""How good triage is, as the agents judged it: per triage source and per ISO week, of the tickets staff
reviewed (changed a triaged category, priority or skills: `corrected`; solved one as triaged: `confirmed`),
how many kept the category and the priority triage gave; and a confusion table of categories (what triage
said, what staff set). One read of the reviews in the period (tickets/models: `Ticket.triage_review`)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime

from helpgate.core.clock import aware, week_of, weeks_back
from helpgate.core.errors import Forbidden
from helpgate.models import Role, Ticket, User
from helpgate.tickets.tickets import CORRECTED

MAX_WEEKS = 104
NO_CATEGORY = "none"


@dataclass
class Kept:
    reviewed: int = 0
    corrected: int = 0
    category_kept: int = 0
    priority_kept: int = 0


@dataclass(frozen=True)
class Quality:
    since: datetime
    until: datetime
    by_source: dict[str, Kept]
    weeks: dict[tuple[str, str], Kept]  # (source, ISO week such as 2026-W49)
    confusion: dict[str, dict[str, int]]  # triage's category -> staff's category -> tickets


async def quality(*, viewer: User, now: datetime, weeks: int = 12) -> Quality:
    """Admins only (Forbidden otherwise): the reviews of the last `weeks` ISO weeks, this one included."""
    if viewer.role is not Role.ADMIN:
        raise Forbidden("only admins can do this")
    weeks = max(1, min(weeks, MAX_WEEKS))
    since = weeks_back(now, weeks)
    cursor = Ticket.get_pymongo_collection().find(
        {"triage_review.at": {"$gte": since}}, projection={"triage_review": True}
    )
    by_source: defaultdict[str, Kept] = defaultdict(Kept)
    by_week: defaultdict[tuple[str, str], Kept] = defaultdict(Kept)
    confusion: defaultdict[str, Counter[str]] = defaultdict(Counter)
    async for document in cursor:
        review = document["triage_review"]
        at = aware(review["at"])
        said, set_ = review.get("said_category") or NO_CATEGORY, review.get("category") or NO_CATEGORY
        for kept in (by_source[review["source"]], by_week[review["source"], week_of(at)]):
            kept.reviewed += 1
            kept.corrected += review["outcome"] == CORRECTED
            kept.category_kept += said == set_
            kept.priority_kept += review.get("said_priority") == review.get("priority")
        confusion[said][set_] += 1
    return Quality(
        since=since,
        until=now,
        by_source=dict(sorted(by_source.items())),
        weeks=dict(sorted(by_week.items(), key=lambda item: (item[0][1], item[0][0]))),
        confusion={said: dict(counts.most_common()) for said, counts in sorted(confusion.items())},
    )
