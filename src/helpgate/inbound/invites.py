"""Calendar invitations (text/calendar, RFC 5545): a few lines of text for a message that has no other text."""

from __future__ import annotations

import re

_FOLD = re.compile(r"\r?\n[ \t]")
_ESCAPES = {"\\n": "\n", "\\N": "\n", "\\,": ",", "\\;": ";", "\\\\": "\\"}
_ESCAPE = re.compile(r"\\[nN,;\\]")
_VERBS = {"REQUEST": "Invitation", "CANCEL": "Cancelled", "REPLY": "Reply", "COUNTER": "Counter-proposal"}
_PROPERTIES = {"SUMMARY": "", "DTSTART": "When", "DTEND": "Until", "LOCATION": "Where", "ORGANIZER": "Organizer"}


def summary(ics: str) -> str:
    """``Invitation: <summary>`` then When/Until/Where/Organizer lines, from the first event; empty if none."""
    values: dict[str, str] = {}
    method = ""
    in_event = False
    for line in _FOLD.sub("", ics).splitlines():
        name, _, value = line.partition(":")
        name = name.split(";", 1)[0].strip().upper()
        if name == "METHOD":
            method = value.strip().upper()
        elif name == "BEGIN" and value.strip().upper() == "VEVENT":
            in_event = True
        elif name == "END" and value.strip().upper() == "VEVENT":
            break
        elif in_event and name in _PROPERTIES and name not in values:
            values[name] = _ESCAPE.sub(lambda m: _ESCAPES[m.group()], value.strip())
    if not values:
        return ""
    lines = [f"{_VERBS.get(method, 'Event')}: {values.get('SUMMARY', '(no title)')}"]
    for name, label in _PROPERTIES.items():
        if label and values.get(name):
            value = values[name]
            lines.append(f"{label}: {value.removeprefix('mailto:').removeprefix('MAILTO:')}")
    return "\n".join(lines)
