"""A fingerprint of what a mail says, from its raw bytes: tells a second copy of one mail from another mail that
reuses its Message-ID.

Some mailers reuse Message-IDs (a template's fixed ID, a broken web form), so the same ID alone does not make a
duplicate. The fingerprint covers the From, To, Cc, Subject and Date values as sent and the body. It leaves out
what changes on the way without changing the mail: trace and delivery headers (Received, Return-Path,
Delivered-To, DKIM and Authentication-Results added by each hop), folding, and line endings, so the same mail
reaching two of our addresses, or arriving by SMTP and by IMAP, has one fingerprint.

It is read from the raw bytes with a few lines of splitting, never from parsed output: a parser fix in a later
version must not change the fingerprint of mail already stored.
"""

from __future__ import annotations

import hashlib
import re

FIELDS = (b"from", b"to", b"cc", b"subject", b"date")
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_LINE_END = re.compile(rb"\r\n|\r|\n")


def of(raw: bytes) -> str:
    """The hex fingerprint of a mail's raw bytes (the first 32 hex digits of a SHA-256)."""
    head, body = _split(raw)
    values: dict[bytes, list[bytes]] = {name: [] for name in FIELDS}
    for name, value in _fields(head):
        if name in values:
            values[name].append(b" ".join(value.split()))
    digest = hashlib.sha256()
    for name in FIELDS:
        digest.update(name + b":" + b"\x00".join(values[name]) + b"\n")
    digest.update(b"\n")
    digest.update(_LINE_END.sub(b"\n", body).rstrip())
    return digest.hexdigest()[:32]


def _split(raw: bytes) -> tuple[bytes, bytes]:
    raw = raw.lstrip(b"\r\n")
    end = _HEAD_END.search(raw)
    if end is None:
        return raw, b""
    return raw[: end.start()], raw[end.end() :]


def _fields(head: bytes) -> list[tuple[bytes, bytes]]:
    """(lower-cased name, unfolded value) per header line; lines that are no header (an mbox `From `) are skipped."""
    found: list[tuple[bytes, bytes]] = []
    for line in _LINE_END.split(head):
        if line[:1] in (b" ", b"\t") and found:
            name, value = found[-1]
            found[-1] = (name, value + b" " + line.strip())
            continue
        name, colon, value = line.partition(b":")
        if colon and name.strip() and b" " not in name.strip():
            found.append((name.strip().lower(), value.strip()))
    return found
