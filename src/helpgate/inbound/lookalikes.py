"""Look-alike addresses: `alice@cust.ex\u0430mple`, with a Cyrillic a (U+0430), reads as alice's own address but is not.

An address is flagged when one of its parts (the local part, or one label of the domain) mixes letters of more
than one script. An internationalised domain written in one script (`пример.рф`, `münchen.de`), or in one script
per label (`пример.com`), is left alone; punycode (`xn--`) labels are decoded first. Japanese mixes kanji, hiragana
and katakana in ordinary words, so those count as one script. Pure functions, no I/O.
"""

from __future__ import annotations

import unicodedata

#: Scripts that real words mix: counted as one.
_ONE_SCRIPT = {"HIRAGANA": "CJK", "KATAKANA": "CJK", "HANGUL": "CJK", "CJK": "CJK", "FULLWIDTH": "LATIN"}


def mixed_script(address: str) -> bool:
    """Whether a part of `address` mixes scripts, the mark of a look-alike."""
    local, _, domain = address.rpartition("@")
    return any(len(_scripts(part)) > 1 for part in (local, *(_label(label) for label in domain.split("."))))


def _label(label: str) -> str:
    if label.lower().startswith("xn--"):
        try:
            return label.encode("ascii").decode("idna")
        except UnicodeError:
            return label
    return label


def _scripts(text: str) -> set[str]:
    found = set()
    for char in text:
        if char.isalpha():
            word = unicodedata.name(char, "UNKNOWN").split(" ")[0]
            found.add(_ONE_SCRIPT.get(word, word))
    return found
