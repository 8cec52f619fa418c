"""IMAP folder names on the wire (RFC 3501 5.1.3 and 9): modified UTF-7, quoted when not a plain atom.

Folder names come from admins as people write them: "Support Tickets", "[Gmail]/All Mail", "Erledigt",
"Ärger & Co". IMAP needs every character outside printable ASCII in modified UTF-7 (UTF-16 in base64 with
`,` for `/`, between `&` and `-`; `&` itself is `&-`), and a name with a space or a special character as a
quoted string. aioimaplib sends SELECT, COPY and MOVE arguments as given, so the poller passes them through
`mailbox_argument`.
"""

from __future__ import annotations

import base64
import re

from aioimaplib.aioimaplib import quoted

#: An IMAP atom: printable ASCII without atom-specials ( ) { space % * " \ ] and controls.
_ATOM = re.compile(r"[!#-$&-'+-\[^-z|-~]+")


def _encoded(run: str) -> str:
    packed = base64.b64encode(run.encode("utf-16-be")).decode("ascii").rstrip("=")
    return "&" + packed.replace("/", ",") + "-"


def modified_utf7(name: str) -> str:
    """`name` in IMAP's modified UTF-7: printable ASCII as it is (`&` as `&-`), other runs base64-coded."""
    out: list[str] = []
    run: list[str] = []
    for character in name:
        if " " <= character <= "~":
            if run:
                out.append(_encoded("".join(run)))
                run.clear()
            out.append("&-" if character == "&" else character)
        else:
            run.append(character)
    if run:
        out.append(_encoded("".join(run)))
    return "".join(out)


def mailbox_argument(name: str) -> str:
    """The folder `name` as a SELECT, COPY or MOVE argument: an atom when it is one, else a quoted string."""
    encoded = modified_utf7(name)
    return encoded if _ATOM.fullmatch(encoded) else quoted(encoded)
