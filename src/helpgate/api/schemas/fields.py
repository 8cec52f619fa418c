"""Field types and validators the API's bodies share."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Not in a person's name: control characters (C0 and C1, NEL among them), Unicode line and paragraph separators,
# and the bidirectional overrides and isolates that make a name display as something else.
_NOT_IN_A_NAME = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
MAX_NAME_CHARS = 100


def no_line_breaks(value: str) -> str:
    if CONTROL.search(value):
        raise ValueError("no control characters or line breaks")
    return value


def one_line(value: str) -> str:
    """A name is one line of text: it goes into mail headers and greetings (issue 14, finding 8)."""
    if _NOT_IN_A_NAME.search(value):
        raise ValueError("one line of text: no control characters, line breaks or direction overrides")
    return value


Email = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=320)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_NAME_CHARS), AfterValidator(one_line)]
MAX_BASE64_CHARS = 20 * 1024 * 1024  # one attachment's base64; the total decoded size is capped by a setting


def in_utc(moment: datetime) -> datetime:
    """The moment in UTC (UTC when it has no offset). A moment UTC cannot express, such as year 1 at +01:00,
    is refused here rather than failing when the store encodes it."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("out of the range of dates (in UTC, years 1 to 9999)") from None


Moment = Annotated[datetime, AfterValidator(in_utc)]
