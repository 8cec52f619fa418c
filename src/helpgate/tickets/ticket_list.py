"""The ticket queue: listing with filters and sorts, and the agent's sidebar counts, with visibility rules.

Totals come from the status x priority counters that `tickets.apply_update` keeps, where they can answer:
counting matches decodes every one of them on the embedded store.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from beanie import PydanticObjectId

from helpgate.accounts import users
from helpgate.core import paging
from helpgate.core.clock import aware
from helpgate.core.errors import Forbidden, InvalidInput
from helpgate.core.paging import Page
from helpgate.models import Priority, Ticket, TicketStatus, User
from helpgate.tickets import counters, tickets


class TicketSort(StrEnum):
    """Queue orders. Creation order is ticket-number order (numbers come from an atomic counter as tickets
    are created), so the creation sorts use the indexed number; every order ends on the number, newest first."""

    CREATED = "created_at"
    CREATED_DESC = "-created_at"
    UPDATED = "updated_at"
    UPDATED_DESC = "-updated_at"
    PRIORITY = "priority"  # high first, then medium, low, none


_SORT_KEYS: dict[TicketSort, tuple[str, ...]] = {
    TicketSort.CREATED: ("+number",),
    TicketSort.CREATED_DESC: ("-number",),
    TicketSort.UPDATED: ("+updated_at", "+number"),
    TicketSort.UPDATED_DESC: ("-updated_at", "-number"),
    TicketSort.PRIORITY: ("-priority_rank", "-number"),
}
ASSIGNEE_ME, ASSIGNEE_NONE = "me", "none"
# Customers never see triage or assignment, so they cannot narrow or order the queue by them either: the
# tickets a filter lets through would tell what it hides (issue 14, finding 13).
STAFF_FIELDS_ONLY = "only agents and admins filter or sort by priority, category or assignee"


@dataclass(frozen=True)
class TicketFilter:
    """What the queue is narrowed to; fields left empty do not narrow it."""

    statuses: tuple[TicketStatus, ...] = ()
    priorities: tuple[Priority, ...] = ()
    assignee: str | None = None  # "me", "none" or a user id
    category: str | None = None
    requester: str | None = None  # an email address
    q: str | None = None  # literal text in the subject or the opening message, any case
    created_after: datetime | None = None
    created_before: datetime | None = None


def _user_id(value: str) -> PydanticObjectId:
    found = paging.object_id(value)
    if found is None:
        raise InvalidInput("assignee is me, none or a user id")
    return found


def _filter_query(viewer: User, wanted: TicketFilter) -> dict[str, object]:
    """The Mongo filter: values only from the typed TicketFilter, `q` escaped so it is never a pattern."""
    query = tickets.visible_filter(viewer)
    if wanted.statuses:
        query["status"] = {"$in": [str(status) for status in wanted.statuses]}
    if wanted.priorities:
        query["priority"] = {"$in": [str(priority) for priority in wanted.priorities]}
    if wanted.assignee == ASSIGNEE_NONE:
        query["assignee"] = None
    elif wanted.assignee is not None:
        query["assignee.user_id"] = viewer.id if wanted.assignee == ASSIGNEE_ME else _user_id(wanted.assignee)
    if wanted.category is not None:
        query["category"] = wanted.category
    if wanted.requester is not None:
        query["requester.email"] = users.normalise_email(wanted.requester)
    if wanted.q:
        # search_text is lower-cased when written, so no case-insensitive flag is needed (nor Unicode rules).
        query["search_text"] = {"$regex": re.escape(wanted.q.lower())}
    created: dict[str, datetime] = {}
    if wanted.created_after is not None:
        created["$gte"] = aware(wanted.created_after)
    if wanted.created_before is not None:
        created["$lt"] = aware(wanted.created_before)
    if created:
        query["created_at"] = created
    return query


async def list_tickets(
    *,
    viewer: User,
    page: int = 1,
    page_size: int = 25,
    where: TicketFilter | None = None,
    sort: TicketSort = TicketSort.CREATED_DESC,
) -> Page[Ticket]:
    """Newest first unless `sort` says otherwise. Staff see every ticket, customers their own (and may not
    filter or sort by what they do not see: Forbidden).

    The total comes from counters when they can answer (staff, no filter or statuses only); any other
    filter counts its matches, which on the embedded store decodes each of them (docs/benchmarks.md, "The ticket
    queue")."""
    page, page_size = paging.bounds(page, page_size)
    wanted = where or TicketFilter()
    if wanted.created_after and wanted.created_before and aware(wanted.created_after) >= aware(wanted.created_before):
        raise InvalidInput("created_after must be before created_before")
    staff_only = wanted.priorities or wanted.assignee is not None or wanted.category is not None
    if not viewer.is_staff and (staff_only or sort is TicketSort.PRIORITY):
        raise Forbidden(STAFF_FIELDS_ONLY)
    query = _filter_query(viewer, wanted)
    if viewer.is_staff and wanted == TicketFilter():
        total = await counters.current(counters.TICKETS_TOTAL)
    elif viewer.is_staff and wanted == TicketFilter(statuses=wanted.statuses):
        total = sum((await buckets(wanted.statuses)).values())
    else:
        total = await Ticket.find(query).count()
    found = Ticket.find(query).sort(*_SORT_KEYS[sort])
    return await paging.page_of(found, total=total, page=page, page_size=page_size)


async def count_up_to(*, viewer: User, where: TicketFilter, limit: int) -> int:
    """How many tickets the viewer sees that match, counted no further than `limit`: on the embedded store
    counting decodes each match, so a number shown on every page (the console's view counts) is capped."""
    return await Ticket.find(_filter_query(viewer, where)).limit(limit).count()


async def buckets(statuses: tuple[TicketStatus, ...]) -> dict[tuple[TicketStatus, Priority | None], int]:
    pairs = [(status, priority) for status in statuses for priority in tickets.PRIORITIES]
    counted = await counters.values([counters.ticket_bucket(status, priority) for status, priority in pairs])
    # A counter below zero can only be drift (a write outside apply_update); a queue never shows one.
    return {pair: max(0, counted[counters.ticket_bucket(*pair)]) for pair in pairs}


@dataclass(frozen=True)
class Stats:
    by_status: dict[TicketStatus, int]
    open_by_priority: dict[Priority | None, int]  # over tickets.OPEN_STATUSES
    open: int  # new, open and pending
    mine: int  # open and assigned to the viewer


async def stats(*, viewer: User) -> Stats:
    """The agent's sidebar: per-status and per-priority numbers from counters (one read), `mine` by a query
    on the assignee index (an agent's own open tickets, not the whole collection)."""
    if not viewer.is_staff:
        raise Forbidden("only agents and admins can do this")
    counted = await buckets(tuple(TicketStatus))
    priorities, open_statuses = tickets.PRIORITIES, tickets.OPEN_STATUSES
    by_status = {status: sum(counted[status, priority] for priority in priorities) for status in TicketStatus}
    by_priority = {priority: sum(counted[status, priority] for status in open_statuses) for priority in priorities}
    mine = await Ticket.find(
        {"assignee.user_id": viewer.id, "status": {"$in": [str(status) for status in tickets.OPEN_STATUSES]}}
    ).count()
    return Stats(
        by_status=by_status,
        open_by_priority=by_priority,
        open=sum(by_status[status] for status in tickets.OPEN_STATUSES),
        mine=mine,
    )
