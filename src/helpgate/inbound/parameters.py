"""MIME parameters read the way compat32 reads them when the modern parser cuts them short.

RFC 2045 §5.1 lets an unquoted parameter value hold only token characters, yet mailers write
``boundary=----=_Part_1_2.3`` and ``name==?utf-8?B?...?=``. policy.default's header registry stops such a value at
the first tspecial and reports a defect: the multipart is then never split (one opaque part) and a file loses its
name. compat32 reads a value up to the next ``;``. The header classes here do the same: every unquoted value that
is not a token is put in quotes, and the stdlib parses the quoted form, so RFC 2231 charsets and continuations and
RFC 2047 words in names are still decoded by it. ``POLICY`` pays for this only when the modern parser reports a
parameter defect; ``LENIENT`` always does it (for a message read again because its start boundary was not found).
"""

from __future__ import annotations

import email.policy
import re
from collections.abc import Callable
from email.errors import InvalidHeaderDefect
from email.headerregistry import ContentDispositionHeader, ContentTypeHeader, HeaderRegistry
from email.message import EmailMessage
from typing import Any

#: RFC 2045 §5.1 token: any ASCII printable but SPACE and tspecials.
_TOKEN = re.compile(r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+")
#: A trailing RFC 822 comment after a value (``charset=us-ascii (plain)``): not part of the value.
_TRAILING_COMMENT = re.compile(r"\s+\([^()]*\)$")
#: What the stdlib's parser says about a parameter it cut short (email._header_value_parser.parse_mime_parameters).
_CUT_SHORT = ("invalid parameter", "parameter with invalid trailing text")


class ParametersReread(InvalidHeaderDefect):
    """The parameters of this header were read leniently (unquoted values holding tspecials)."""


def requoted(value: str) -> str:
    """``value`` with each unquoted parameter value that is not an RFC 2045 token put in quotes.

    A value runs to the next ``;`` outside quotes, as compat32 reads it. Quoted values and RFC 2231 extended
    values (``name*=``, ``name*0*=``) are left as they are. Returns ``value`` itself when nothing needed quotes.
    """
    pieces = _split(value)
    changed = False
    for position, piece in enumerate(pieces[1:], start=1):
        name, equals, raw = piece.partition("=")
        text = _TRAILING_COMMENT.sub("", raw.strip())
        if not equals or not name.strip() or name.strip().endswith("*") or text.startswith('"'):
            continue
        if not text or _TOKEN.fullmatch(text):
            continue
        quoted = text.replace("\\", "\\\\").replace('"', '\\"')
        pieces[position] = f' {name.strip()}="{quoted}"'
        changed = True
    return ";".join(pieces) if changed else value


def _split(value: str) -> list[str]:
    """``value`` split at each ``;`` that is not inside a quoted string."""
    pieces: list[str] = []
    start = 0
    quoted = escaped = False
    for position, char in enumerate(value):
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == ";" and not quoted:
            pieces.append(value[start:position])
            start = position + 1
    pieces.append(value[start:])
    return pieces


def _parse(parse: Callable[[str, dict[str, Any]], None], value: str, kwds: dict[str, Any], *, always: bool) -> None:
    parse(value, kwds)
    if not always and not any(str(defect).startswith(_CUT_SHORT) for defect in kwds["defects"]):
        return
    fixed = requoted(value)
    if fixed == value:
        return
    again: dict[str, Any] = {"defects": []}
    parse(fixed, again)
    again["defects"].append(ParametersReread(f"parameters read as {fixed!r}"))
    kwds.clear()
    kwds.update(again)


class _ContentType(ContentTypeHeader):
    @classmethod
    def parse(cls, value: str, kwds: dict[str, Any]) -> None:
        _parse(super().parse, value, kwds, always=False)


class _ContentDisposition(ContentDispositionHeader):
    @classmethod
    def parse(cls, value: str, kwds: dict[str, Any]) -> None:
        _parse(super().parse, value, kwds, always=False)


class _LenientContentType(ContentTypeHeader):
    @classmethod
    def parse(cls, value: str, kwds: dict[str, Any]) -> None:
        _parse(super().parse, value, kwds, always=True)


class _LenientContentDisposition(ContentDispositionHeader):
    @classmethod
    def parse(cls, value: str, kwds: dict[str, Any]) -> None:
        _parse(super().parse, value, kwds, always=True)


def _policy(content_type: type, disposition: type) -> email.policy.EmailPolicy[EmailMessage]:
    registry = HeaderRegistry()
    registry.map_to_type("content-type", content_type)
    registry.map_to_type("content-disposition", disposition)
    return email.policy.default.clone(header_factory=registry)


POLICY = _policy(_ContentType, _ContentDisposition)
LENIENT = _policy(_LenientContentType, _LenientContentDisposition)
