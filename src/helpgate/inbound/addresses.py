"""The mailboxes of an address header (From, Sender, Reply-To, To, Cc), read from its raw value.

RFC 2047 §5: an encoded-word may stand for a word of a display name, never in an addr-spec. The stdlib decodes it
there anyway, so ``=?utf-8?q?jane=40example.org=3e=00?=@attacker.example`` became the address
``"jane@example.org>\\x00"@attacker.example``, which reads as jane's wherever its quotes are dropped. Here the
structure is parsed from the raw value with every encoded-word masked as an opaque atom; display names are then
decoded, and an encoded-word inside an address only when it decodes to a plain atom (``=?utf-8?Q?agent?=@x.com``
is ``agent@x.com``, as other readers take it). Any other is taken literally, as RFC 2047 says it must be: the
literal is an atom too, and names no one else (a literal that is no atom either is refused). Whatever its origin,
an address whose local part holds ``@``, quotes, angle brackets, control or format characters is refused: it names
no mailbox and may pass for someone else's. With no usable sender left, the pipeline quarantines the mail.
"""

from __future__ import annotations

import logging
import re
import secrets
import unicodedata
from collections.abc import Callable, Sequence
from email.headerregistry import AddressHeader
from email.policy import default
from email.utils import getaddresses

from helpgate.inbound.headers import text

log = logging.getLogger(__name__)

#: Anything the stdlib's header parser would take for an encoded-word (it splits at the first "?=", so the
#: charset may even hold spaces); masked before parsing. Decoding uses the stricter rule of ``headers``.
_WORD = re.compile(r"=\?[^?]*\?[bBqQ]\?[^?]*\?=")
#: RFC 5322 §3.2.3 atext, plus the non-ASCII letters, marks and digits RFC 6532 allows.
_ATEXT = frozenset("!#$%&'*+-/=?^_`{|}~")
_SURROGATE = re.compile(r"[\udc80-\udcff]")
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_MARK = re.compile(r"hgw([0-9a-f]{8})x(\d+)y")
_NEVER_IN_LOCAL = frozenset('@<>"')
_NEVER_IN_DOMAIN = frozenset('@<>"\\,;: ')


def read(values: Sequence[str], *, header: str) -> list[tuple[str, str]]:
    """(display name, lower-cased address) of every mailbox in the raw ``values`` of ``header``, groups flattened;
    refused addresses are left out."""
    found: list[tuple[str, str]] = []
    for value in values:
        mask = _Mask(value)
        for name, local, domain in _mailboxes(mask.value):
            address = _address(mask, local, domain, header=header)
            if address is not None:
                found.append((_name(text(mask.shown(name))), address))
    return found


class _Mask:
    """A header value with every encoded-word replaced by an opaque atom ``hgw<nonce>x<n>y``, and back."""

    def __init__(self, value: str) -> None:
        self.words: list[str] = []
        # Fixed, so parsing is deterministic; random only if the sender wrote the marker himself.
        self.nonce = "00000000" if "hgw00000000x" not in value else secrets.token_hex(4)
        self.value = _WORD.sub(self._hide, value) if "=?" in value else value

    def _hide(self, match: re.Match[str]) -> str:
        self.words.append(match.group(0))
        return f"hgw{self.nonce}x{len(self.words) - 1}y"

    def holds_word(self, part: str) -> bool:
        return bool(self.words) and any(found.group(1) == self.nonce for found in _MARK.finditer(part))

    def shown(self, part: str) -> str:
        return _MARK.sub(self._word, part) if self.words else part

    def _word(self, match: re.Match[str]) -> str:
        index = int(match.group(2))
        return self.words[index] if match.group(1) == self.nonce and index < len(self.words) else match.group(0)


def _mailboxes(value: str) -> list[tuple[str, str, str]]:
    """(display name, local part, domain) as the modern parser reads them; the lenient one reads what the strict
    one refuses ('"Name" <user@example.com.>', '<a@b> (comment'), but only where an "@" stands outside quotes:
    it drops quotes, and ``"jane@example.org"`` (a local part with no domain) is no address of jane's."""
    try:
        header = default.header_factory("to", value)
        mailboxes = header.addresses if isinstance(header, AddressHeader) else ()
        parsed = [(mailbox.display_name, mailbox.username, mailbox.domain) for mailbox in mailboxes]
        if any(domain for _, _, domain in parsed) or "@" not in _QUOTED.sub("", value):
            return [entry for entry in parsed if entry[2]]
    except Exception as error:  # the modern parser gives up on some real-world headers
        log.info("mime.address_lenient reason=%s", type(error).__name__)
    found = []
    for name, addr in getaddresses([value]):
        local, at, domain = addr.strip().rpartition("@")
        if at and local and domain:
            found.append((name, _unquoted(local), domain))
    return found


def _address(mask: _Mask, local: str, domain: str, *, header: str) -> str | None:
    """The addr-spec, or None when it is refused (see the module docstring)."""
    had_word = mask.holds_word(local + domain)
    local = _part(mask, local, plain=_atom, header=header)
    domain = _part(mask, domain, plain=_domain, header=header).strip().rstrip(".")
    unsafe = (
        not local
        or not domain
        or _SURROGATE.search(local + domain)
        or any(char in _NEVER_IN_LOCAL or _control(char) for char in local)
        or any(char in _NEVER_IN_DOMAIN or char.isspace() or _control(char) for char in domain)
    )
    if unsafe or (had_word and not _atom(local)):
        log.info("mime.address_refused header=%s reason=empty, or @ quotes angle brackets or controls inside", header)
        return None
    if not _atom(local):  # a quoted local part as sent ("john doe"@example.org)
        local = '"' + local.replace("\\", "\\\\") + '"'
    return f"{local}@{domain}".lower()


def _part(mask: _Mask, part: str, *, plain: Callable[[str], bool], header: str) -> str:
    """A local part or domain; an encoded-word in it is decoded only into a plain atom (RFC 2047 §5)."""
    if not mask.holds_word(part):
        return part
    literal = mask.shown(part)
    decoded = text(literal)
    if plain(decoded):
        return decoded
    log.info("mime.address_literal header=%s reason=encoded-word in an address decodes to no plain atom", header)
    return literal


def _atom(value: str) -> bool:
    """RFC 5322 dot-atom-text (RFC 6532: non-ASCII letters, marks and digits too)."""
    return bool(value) and all(label and all(_atext(char) for char in label) for label in value.split("."))


def _domain(value: str) -> bool:
    labels = value.rstrip(".").split(".")
    return all(label and all(char == "-" or char.isalnum() for char in label) for label in labels)


def _atext(char: str) -> bool:
    if char.isascii():
        return char.isalnum() or char in _ATEXT
    return unicodedata.category(char)[0] in "LMN"


def _control(char: str) -> bool:
    """Control and format characters (NUL, DEL, bidirectional overrides, zero-width joiners ...)."""
    return unicodedata.category(char) in ("Cc", "Cf")


def _name(value: str) -> str:
    """A display name without control or format characters (a NUL ends it in some viewers, an override reorders it)."""
    if value.isprintable():
        return value
    return " ".join("".join(char for char in value if char.isspace() or not _control(char)).split())


def _unquoted(local: str) -> str:
    if len(local) >= 2 and local[0] == local[-1] == '"':
        return re.sub(r"\\(.)", r"\1", local[1:-1])
    return local
