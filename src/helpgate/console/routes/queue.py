"""The queue: the views a team lives in (mine, unassigned, open, pending, solved, all), with search and sort,
a count per view, and rows that refresh themselves when a ticket changes (the live stream's `tickets` event)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Query, Request
from starlette.responses import Response

from helpgate.console import pages
from helpgate.console.routing import router
from helpgate.console.session import CurrentViewer
from helpgate.models import Priority, TicketStatus, User
from helpgate.tickets import ticket_list
from helpgate.tickets.ticket_list import ASSIGNEE_ME, ASSIGNEE_NONE, TicketFilter, TicketSort
from helpgate.tickets.tickets import OPEN_STATUSES

routes = router()

PAGE_SIZE = 25
COUNTED_UP_TO = 20  # a view counted by query (not from counters) shows "20+" past this: each match counted is decoded


@dataclass(frozen=True)
class View:
    name: str
    title: str
    where: TicketFilter
    staff_only: bool = False


VIEWS = {
    view.name: view
    for view in (
        View("mine", "Mine", TicketFilter(statuses=OPEN_STATUSES, assignee=ASSIGNEE_ME), staff_only=True),
        View("unassigned", "Unassigned", TicketFilter(statuses=OPEN_STATUSES, assignee=ASSIGNEE_NONE), staff_only=True),
        View("open", "Open", TicketFilter(statuses=OPEN_STATUSES)),
        View("pending", "Pending", TicketFilter(statuses=(TicketStatus.PENDING,)), staff_only=True),
        View("solved", "Solved", TicketFilter(statuses=(TicketStatus.SOLVED, TicketStatus.CLOSED))),
        View("all", "All", TicketFilter()),
    )
}
SORTS = {
    TicketSort.CREATED_DESC: "Newest",
    TicketSort.CREATED: "Oldest",
    TicketSort.UPDATED_DESC: "Recently updated",
    TicketSort.PRIORITY: "Priority",
}


def views_for(user: User) -> list[View]:
    return [view for view in VIEWS.values() if user.is_staff or not view.staff_only]


async def counts(user: User) -> dict[str, str]:
    """Tickets per view: staff from the queue's counters (one read), their own by the assignee index, and the
    unassigned ones counted up to COUNTED_UP_TO; customers see no counts (their views are short)."""
    if not user.is_staff:
        return {}
    stats = await ticket_list.stats(viewer=user)
    where = VIEWS["unassigned"].where
    unassigned = await ticket_list.count_up_to(viewer=user, where=where, limit=COUNTED_UP_TO + 1)
    numbers = {
        "mine": stats.mine,
        "unassigned": unassigned,
        "open": stats.open,
        "pending": stats.by_status[TicketStatus.PENDING],
        "solved": stats.by_status[TicketStatus.SOLVED] + stats.by_status[TicketStatus.CLOSED],
        "all": sum(stats.by_status.values()),
    }
    shown = {name: str(number) for name, number in numbers.items()}
    if unassigned > COUNTED_UP_TO:
        shown["unassigned"] = f"{COUNTED_UP_TO}+"
    return shown


@routes.get("/")
async def queue(
    request: Request,
    viewer: CurrentViewer,
    view: str = "",
    q: Annotated[str, Query(max_length=200)] = "",
    priority: Priority | None = None,
    category: Annotated[str, Query(max_length=64)] = "",
    sort: TicketSort = TicketSort.CREATED_DESC,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    """A view of the queue, narrowed by text (anyone), priority and category (staff: the API's filters)."""
    user = viewer.user
    shown = [each for each in views_for(user) if each.name == view] or [VIEWS["open" if user.is_staff else "all"]]
    current = shown[0]
    if not user.is_staff:  # customers neither see nor narrow by triage
        sort = TicketSort.CREATED_DESC if sort is TicketSort.PRIORITY else sort
        priority, category = None, ""
    where = TicketFilter(
        statuses=current.where.statuses,
        assignee=current.where.assignee,
        q=q.strip() or None,
        priorities=(priority,) if priority is not None else (),
        category=category.strip() or None,
    )
    found = await ticket_list.list_tickets(viewer=user, page=page, page_size=PAGE_SIZE, where=where, sort=sort)

    def link(**changed: object) -> str:
        values = {
            "view": current.name,
            "q": q,
            "priority": priority or "",
            "category": category,
            "sort": str(sort),
            "page": page,
            **changed,
        }
        return pages.link_to("/", values)

    last_page = max(1, -(-found.total // PAGE_SIZE))
    context: dict[str, Any] = {
        "views": views_for(user),
        "view": current,
        "counts": await counts(user),
        "q": q,
        "priority": priority,
        "priorities": list(Priority),
        "category": category,
        "sort": sort,
        "sorts": {name: title for name, title in SORTS.items() if user.is_staff or name is not TicketSort.PRIORITY},
        "found": found,
        "last_page": last_page,
        "link": link,
        "here": link(),
    }
    if request.headers.get("hx-request"):
        return pages.page(request, viewer, "_queue.html.j2", **context)
    return pages.page(request, viewer, "queue.html.j2", **context)
