"""Header values as text, whatever the sender did: RFC 2047 encoded words, RFC 2231 parameters, raw 8-bit bytes.

The stdlib decodes encoded words (policy.default) but leaves raw 8-bit bytes and words in unknown charsets as
surrogate escapes; those go through the charset cascade. Outlook's RFC 2047 words inside quoted file names
(forbidden by the RFC, sent anyway) are decoded too. Nothing here raises on a malformed header.
"""

from __future__ import annotations

import binascii
import re
from email.message import Message

from helpgate.inbound import charsets

#: Headers kept verbatim for the loop, bounce and spoof guards (lower-cased names; repeats joined by newlines).
SELECTED = (
    "auto-submitted",
    "authentication-results",
    "content-type",
    "date",
    "list-id",
    "list-unsubscribe",
    "precedence",
    "reply-to",
    "return-path",
    "sender",
    "thread-index",
    "x-auto-response-suppress",
    "x-autoreply",
    "x-autorespond",
    "x-loop",
)
_ENCODED_WORD = re.compile(r"=\?([^?\s*]+)(?:\*[^?\s]*)?\?([bqBQ])\?([^?]*?)\?=")
_SURROGATE = re.compile(r"[\udc80-\udcff]")


def decoded_header(message: Message, name: str) -> str:
    """The first value of header ``name`` as one line of text; empty when absent."""
    values = header_values(message, name)
    return values[0] if values else ""


def header_values(message: Message, name: str) -> list[str]:
    """Every value of header ``name``, decoded from the raw value.

    Read raw rather than through policy.default's header registry: the registry parses a header again on
    every access (about 100 µs for a structured one), and for unstructured text it adds nothing.
    """
    return [" ".join(text(value).split()) for value in raw_values(message, name)]


def text(value: str) -> str:
    """Decode what the stdlib left encoded: RFC 2047 words and surrogate-escaped 8-bit bytes."""
    if _ENCODED_WORD.search(value):
        value = _decode_words(value)
    if _SURROGATE.search(value):
        value = charsets.decode(value.encode("utf-8", errors="surrogateescape"), None).text
    return value


def selected(message: Message) -> dict[str, str]:
    found = {}
    for name in SELECTED:
        values = header_values(message, name)
        if values:
            found[name] = "\n".join(values)
    return found


def _decode_words(value: str) -> str:
    """RFC 2047, leniently: encoded words with spaces inside (invalid, common), adjacent words of one charset
    joined before decoding (a multi-byte character may be split across two), whitespace between words dropped."""
    out: list[str] = []
    pending = bytearray()
    pending_charset: str | None = None
    position = 0
    for match in _ENCODED_WORD.finditer(value):
        gap = value[position : match.start()]
        charset = match.group(1).lower()
        if pending_charset is not None and (charset != pending_charset or (gap and not gap.isspace())):
            out.append(charsets.decode(bytes(pending), pending_charset).text)
            pending.clear()
            pending_charset = None
        if pending_charset is None:
            out.append(gap)
        pending += _word_bytes(match.group(2), match.group(3))
        pending_charset = charset
        position = match.end()
    if pending_charset is not None:
        out.append(charsets.decode(bytes(pending), pending_charset).text)
    out.append(value[position:])
    return "".join(out)


def _word_bytes(encoding: str, encoded: str) -> bytes:
    data = encoded.encode("ascii", errors="ignore")
    if encoding in "qQ":
        return binascii.a2b_qp(data, header=True)
    try:
        return binascii.a2b_base64(data + b"==")
    except binascii.Error:
        return b""


def raw_values(message: Message, name: str) -> list[str]:
    """The values of header ``name`` exactly as they arrived (folded, encoded)."""
    wanted = name.lower()
    return [str(value) for key, value in message.raw_items() if key.lower() == wanted]
