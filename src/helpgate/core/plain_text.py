"""Text from mail made fit for one line wherever it is shown: a list row, a mail header, a log line.

Mail cannot be refused for its subject, so what a sender writes there is cleaned instead: control characters (NUL,
ESC, BEL, line breaks), the invisible characters that reorder or hide text (bidi overrides, zero-width joiners
used to disguise words) go, runs of white space become one space, and the result is cut to a length a person
can read. The raw mail keeps the original.
"""

from __future__ import annotations

import re
import unicodedata

#: What `POST /api/tickets` accepts as a subject; mail is cut to the same.
SUBJECT_CHARS = 300
NAME_CHARS = 200
# Bidi embeddings, overrides and isolates, and the zero-width characters: format characters (Cf) that change how
# text reads without showing themselves. Other Cf characters (soft hyphen, emoji tags) are left alone.
_HIDDEN = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")


def one_line(text: str, *, limit: int) -> str:
    """`text` without control or hiding characters, its white space folded, at most `limit` characters."""
    shown = "".join(" " if unicodedata.category(char) == "Cc" else char for char in _HIDDEN.sub("", text))
    folded = " ".join(shown.split())
    return folded if len(folded) <= limit else folded[: limit - 1].rstrip() + "…"
