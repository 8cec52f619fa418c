"""Customers rate how their ticket was solved: the `ticket_solved` mail carries two signed links (good, not
good) to a small page of the console. Mail scanners open links before the customer does, so opening the page
records nothing; the page's form records the rating (with a comment, if the customer writes one). No login:
the link names only its ticket, and works for LINK_DAYS; rating again replaces the earlier rating.

`satisfaction` reports the ratings per agent (the ticket's assignee when it was rated) and per ISO week.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from helpgate.core.clock import aware, week_of, weeks_back
from helpgate.core.errors import Forbidden, NotFound
from helpgate.models import Rating, Role, Ticket, User
from helpgate.tickets import tickets

GOOD, BAD = "good", "bad"
SCORES = (GOOD, BAD)
LINK_DAYS = 30
MAX_COMMENT = 2_000
MAX_WEEKS = 104
_PURPOSE = b"helpgate-rating\0"
UNASSIGNED = "(unassigned)"


def _mac(secret: str, payload: str) -> str:
    digest = hmac.new(secret.encode(), _PURPOSE + payload.encode(), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def token(number: int, *, secret: str, now: datetime) -> str:
    """A link's token: the ticket's number and when the link stops working, signed."""
    payload = f"{number}.{int((now + timedelta(days=LINK_DAYS)).timestamp())}"
    return f"{payload}.{_mac(secret, payload)}"


def ticket_of(given: str, *, secret: str, now: datetime) -> int:
    """The ticket number a token names; NotFound for a token that is not ours or has expired (one answer for
    both, so a guess learns nothing)."""
    number, _, rest = given.partition(".")
    expires, _, mac = rest.partition(".")
    if not (number.isascii() and number.isdigit() and expires.isascii() and expires.isdigit() and len(number) < 20):
        raise NotFound("this rating link is not valid or has expired")
    if not hmac.compare_digest(mac, _mac(secret, f"{number}.{expires}")) or int(expires) < now.timestamp():
        raise NotFound("this rating link is not valid or has expired")
    return int(number)


def links(number: int, *, base_url: str, secret: str, now: datetime) -> dict[str, str]:
    """The good and not-good links of one solved mail."""
    signed = token(number, secret=secret, now=now)
    return {score: f"{base_url}/rate/{signed}?score={score}" for score in SCORES}


async def rate(*, given: str, secret: str, score: str, comment: str, now: datetime) -> Ticket:
    """Record the customer's rating on the ticket the token names (replacing an earlier one)."""
    number = ticket_of(given, secret=secret, now=now)
    ticket = await tickets.get_by_number(number)
    if ticket is None or ticket.id is None:
        raise NotFound("this rating link is not valid or has expired")
    if score not in SCORES:
        raise NotFound(f"a rating is one of {', '.join(SCORES)}")
    ticket.rating = Rating(
        score=score,
        comment=comment.strip()[:MAX_COMMENT],
        at=now,
        agent_email=ticket.assignee.email if ticket.assignee else None,
        solved_at=ticket.solved_at,
    )
    await tickets.apply_update(ticket.id, {"$set": {"rating": ticket.rating.model_dump()}})
    return ticket


@dataclass
class Tally:
    good: int = 0
    bad: int = 0
    comments: int = 0


@dataclass(frozen=True)
class Satisfaction:
    since: datetime
    until: datetime
    by_agent: dict[str, Tally]
    weeks: dict[tuple[str, str], Tally]  # (agent, ISO week)


async def satisfaction(*, viewer: User, now: datetime, weeks: int = 12) -> Satisfaction:
    """Admins only (Forbidden otherwise): the ratings given in the last `weeks` ISO weeks, this one included."""
    if viewer.role is not Role.ADMIN:
        raise Forbidden("only admins can do this")
    weeks = max(1, min(weeks, MAX_WEEKS))
    since = weeks_back(now, weeks)
    by_agent: defaultdict[str, Tally] = defaultdict(Tally)
    by_week: defaultdict[tuple[str, str], Tally] = defaultdict(Tally)
    cursor = Ticket.get_pymongo_collection().find({"rating.at": {"$gte": since}}, projection={"rating": True})
    async for document in cursor:
        rating = document["rating"]
        at = aware(rating["at"])
        agent = rating.get("agent_email") or UNASSIGNED
        for tally in (by_agent[agent], by_week[agent, week_of(at)]):
            tally.good += rating["score"] == GOOD
            tally.bad += rating["score"] == BAD
            tally.comments += bool(rating.get("comment"))
    return Satisfaction(
        since=since,
        until=now,
        by_agent=dict(sorted(by_agent.items())),
        weeks=dict(sorted(by_week.items(), key=lambda item: (item[0][1], item[0][0]))),
    )
