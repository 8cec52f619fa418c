"""Attachments as parsed from a message: safe file names and the type the bytes really have.

The declared type is whatever the sender's client wrote; the sniffed type comes from the first bytes (filetype,
plus the few mail-specific formats it does not know). A file name is reduced to a base name with no path parts,
no control or bidirectional-override characters (``cod.exe`` shown as ``exe.doc``) and no characters Windows
refuses, capped in length with its extension kept.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
import unicodedata
import urllib.parse
from dataclasses import dataclass, field

import filetype

MAX_FILENAME_BYTES = 200
_FORBIDDEN = re.compile(r'[<>:"/\\|?*]')
_SPACES = re.compile(r"\s+")
#: Signatures of formats mail carries that filetype does not know, checked first.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x78\x9f\x3e\x22", "application/vnd.ms-tnef"),  # winmail.dat (MS-OXTNEF 2.1.3.1)
    (b"BEGIN:VCALENDAR", "text/calendar"),
    (b"%PDF-", "application/pdf"),
)


@dataclass
class ParsedAttachment:
    index: int  # the part's position in the message (depth-first), stable across re-processing
    filename: str
    content_type: str  # as declared by the sender
    data: bytes = field(repr=False)
    content_id: str | None = None  # without angle brackets
    inline: bool = False  # shown within the HTML body (``cid:``) rather than offered as a file
    sniffed_type: str | None = None
    sha256: str = ""

    def __post_init__(self) -> None:
        self.sha256 = hashlib.sha256(self.data).hexdigest()
        if self.sniffed_type is None:
            self.sniffed_type = sniff(self.data)

    @property
    def size(self) -> int:
        return len(self.data)


def sniff(data: bytes) -> str | None:
    """The MIME type the leading bytes show, or None when they show none (plain text among others)."""
    head = data[:8192]
    for signature, mime_type in _SIGNATURES:
        if head.startswith(signature):
            return mime_type
    kind = filetype.guess(head)
    return kind.mime if kind is not None else None


def safe_filename(name: str | None, *, index: int, content_type: str) -> str:
    """A name safe to show and to save: see the module docstring. Falls back to ``part-<index><ext>``."""
    cleaned = ""
    if name:
        name = unicodedata.normalize("NFC", name)
        name = name.replace("\\", "/").rsplit("/", 1)[-1]
        name = "".join(ch for ch in name if unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn"))
        name = _SPACES.sub(" ", _FORBIDDEN.sub("_", name)).strip(" .")
        cleaned = _capped(name)
    if cleaned:
        return cleaned
    extension = mimetypes.guess_extension(content_type, strict=False) or ".bin"
    return f"part-{index}{extension}"


def location_name(location: str) -> str | None:
    """The file name a ``Content-Location`` gives (RFC 2557 §4): the last path segment of its URI, percent-decoded.

    Whitespace inside the value is folding and is removed, as RFC 2557 asks; query and fragment are not part of
    the name. None when the URI ends without a segment (``http://example.org/``). The result still needs
    ``safe_filename``.
    """
    uri = "".join(location.split()).strip('"<>')
    try:
        path = urllib.parse.urlsplit(uri).path
    except ValueError:  # "http://[broken" and the like
        path = uri.split("?", 1)[0].split("#", 1)[0]
    segment = path.replace("\\", "/").rsplit("/", 1)[-1]
    return urllib.parse.unquote(segment, errors="replace") or None


def _capped(name: str) -> str:
    if len(name.encode("utf-8")) <= MAX_FILENAME_BYTES:
        return name
    stem, dot, extension = name.rpartition(".")
    if not dot or len(extension) > 16:
        stem, extension = name, ""
    suffix = f".{extension}" if extension else ""
    budget = MAX_FILENAME_BYTES - len(suffix.encode("utf-8"))
    return stem.encode("utf-8")[:budget].decode("utf-8", errors="ignore").rstrip(" .") + suffix
