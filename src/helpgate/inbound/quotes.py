"""The reply a person wrote, without the history it quotes or the signature under it, for the ticket view.

mail-parser-reply finds the quote headers (``On ... wrote:``, ``Am ... schrieb``, Outlook's ``From:/Sent:``
blocks, ``-----Original Message-----``) and signatures in several languages. Rules of our own keep it from
losing what a customer wrote: nothing is cut when everything would be, a "signature" longer than a signature
is kept, and only the head of a very long text is examined (its cost grows with the text).
The full text always stays on the message.
"""

from __future__ import annotations

import re
import warnings

from mailparser_reply.parser import EmailMessage as ReplyParser

#: Languages whose quote headers and sign-offs are recognised (each one adds to the cost).
LANGUAGES = ("en", "de", "fr", "es", "nl")
#: Only this many leading characters are examined; a split must be found within them.
WINDOW = 20_000
#: A cut-off block longer than this many lines is not a signature but text that starts like one.
MAX_SIGNATURE_LINES = 12
_QUOTED_TAIL = re.compile(r"(?:\n>[^\n]*)+\s*\Z")


def reply_text(text: str) -> str:
    """The newest reply in ``text``; ``text`` itself when no split is found or the split would leave nothing."""
    head = text[:WINDOW]
    with warnings.catch_warnings():
        # mail-parser-reply 1.36 passes re.MULTILINE as re.sub's count (a DeprecationWarning, harmless here).
        warnings.simplefilter("ignore", DeprecationWarning)
        replies = ReplyParser(text=head, languages=list(LANGUAGES), keep_hyphen_lists=True).read().replies
    if not replies or (len(text) > WINDOW and len(replies) == 1):
        return text.strip()
    first = replies[0]
    signature_lines = first.signatures.count("\n") + 1 if first.signatures else 0
    reply = first.body if signature_lines <= MAX_SIGNATURE_LINES else first.full_body
    reply = _QUOTED_TAIL.sub("", "\n" + reply).strip()
    return reply or text.strip()
