"""Staff changes cut off between their write and what follows it (the audit entry, the announcements that mail the
assignee and the customer; for a merge, also moving the messages): each leaves an UnfinishedChange record, which
`finish` completes or discards.

`helpgate serve` runs `finish` when it starts and every INTERVAL seconds (gateway.py), for records older than GRACE:
a change in progress takes milliseconds, so an older record is one whose instance stopped. A record whose key the
ticket lacks is of a change whose write never happened (its request failed): it is discarded, nothing announced.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from helpgate.accounts import users
from helpgate.models import Ticket, UnfinishedChange
from helpgate.tickets import merging, tickets

log = logging.getLogger(__name__)

GRACE = timedelta(seconds=60)
INTERVAL = 60.0
BATCH = 100


async def finish(*, now: datetime, grace: timedelta = GRACE) -> int:
    """Finish (or discard) the staff changes left unfinished for `grace`; how many were finished."""
    finished = 0
    for record in await UnfinishedChange.find({"at": {"$lt": now - grace}}).limit(BATCH).to_list():
        ticket = await Ticket.get(record.ticket_id)
        if ticket is None or record.key not in ticket.applied:
            log.warning("ticket.change_discarded number=%s at=%s: its write never happened", record.number, record.at)
            await record.delete()
            continue
        # The ticket as that change left it (a later change may have moved it on; its own record says so).
        changed = Ticket.model_validate({**ticket.model_dump(), **record.values})
        actor = await users.get(record.actor_id) if record.actor_id is not None else None
        if record.merge_into is None:
            await tickets.finish_change(record, changed, actor=actor or record.actor_email)
        elif (target := await tickets.get_by_number(record.merge_into)) is not None:
            await merging.finish_merge(record, changed, target, actor=actor or record.actor_email)
        else:
            log.error("ticket.merge_discarded number=%s into=%s: that ticket is gone", record.number, record.merge_into)
            await record.delete()
            continue
        log.warning("ticket.change_finished number=%s at=%s by=%s", record.number, record.at, record.actor_email)
        finished += 1
    return finished
