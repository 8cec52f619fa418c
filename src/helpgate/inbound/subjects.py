"""Subjects as threading evidence: reply prefixes in common languages, ticket tokens, normalised keys.

Pure functions. Mail clients prefix replies in the user's language (Outlook writes "AW:" in German, "SV:"
in Scandinavian languages, "RV:" in Spanish...), sometimes several times and with counters ("Re[2]:").
"""

from __future__ import annotations

import re
import unicodedata

#: Reply prefixes (lower-case, without the colon) used by common mail clients in common languages.
REPLY_PREFIXES = frozenset(
    {"re", "aw", "sv", "antw", "antwort", "vs", "odp", "rif", "r", "ris", "res", "ynt", "bls", "atb", "odg",
     "vá", "回复", "答复", "返信", "회신", "ответ"}
)  # fmt: skip
#: Forward prefixes: stripped for the key, but a forward is not evidence of a reply.
FORWARD_PREFIXES = frozenset(
    {"fw", "fwd", "wg", "tr", "rv", "enc", "doorst", "vl", "vs", "pd", "i", "fs", "転送", "转发", "전달", "пересл"}
)  # fmt: skip
_PREFIX = re.compile(r"^\s*([^\s:\uff1a\[\]]{1,12})\s*(?:\[\d+\]|\(\d+\))?\s*[:\uff1a]\s*", re.IGNORECASE)
_LIST_TAG = re.compile(r"^\s*\[[^\]#]{1,40}\]\s*")
TICKET_TOKEN = re.compile(r"\[#(\d{1,12})\]")
_SPACES = re.compile(r"\s+")


def ticket_tokens(subject: str) -> list[int]:
    """Ticket numbers named by `[#123]` tokens, in order."""
    return [int(number) for number in TICKET_TOKEN.findall(subject)]


def strip_prefixes(subject: str) -> tuple[str, bool]:
    """The subject without leading reply/forward prefixes and list tags, and whether a reply prefix was seen."""
    replied = False
    rest = subject
    while True:
        tag = _LIST_TAG.match(rest)
        if tag:
            rest = rest[tag.end() :]
            continue
        match = _PREFIX.match(rest)
        if not match:
            return rest.strip(), replied
        word = match.group(1).lower()
        if word in REPLY_PREFIXES:
            replied = True
        elif word not in FORWARD_PREFIXES:
            return rest.strip(), replied
        rest = rest[match.end() :]


def key(subject: str) -> str:
    """A comparison key: prefixes, ticket tokens, case, accents' forms and spacing do not matter."""
    stripped, _ = strip_prefixes(TICKET_TOKEN.sub(" ", subject))
    normal = unicodedata.normalize("NFKC", stripped).casefold()
    return _SPACES.sub(" ", normal).strip()


def is_reply(subject: str) -> bool:
    return strip_prefixes(TICKET_TOKEN.sub(" ", subject))[1]
