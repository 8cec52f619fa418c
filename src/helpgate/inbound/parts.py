"""The structure of a message: which parts are its body (text, HTML) and which are attachments.

Rules, after RFC 2046/2387 and what clients really send:

- ``multipart/alternative``: the plain alternative gives the text, the HTML one the HTML (and the text too when
  there is no plain one); alternatives that are neither (a calendar invitation) are kept as attachments.
- ``multipart/related``: the root (the ``start`` Content-ID, else the first part) is the body; the other parts are
  inline resources, found by Content-ID.
- other multiparts (mixed, report, signed, ...): every text/plain or text/html part that is neither named nor
  marked as an attachment adds to the body in order (Apple Mail sends text, an image, then more text);
  everything else is an attachment.
- ``message/rfc822`` is kept whole as an ``.eml`` attachment; its own parts stay inside it.
- ``text/calendar`` is an attachment whose summary stands in for the text of a message that has none.
- a multipart the stdlib could not split (headers only, no boundary, none of its parts found) is never a file
  typed multipart/*: dropped when empty, else read as plain text (or kept as an untyped file when named).
- a file with no name of its own takes the last path segment of its ``Content-Location`` (RFC 2557).
"""

from __future__ import annotations

import binascii
import email.policy
import logging
import re
from dataclasses import dataclass, field, replace
from email.message import Message
from email.utils import collapse_rfc2231_value

from helpgate.inbound import charsets, flowed
from helpgate.inbound.attachments import ParsedAttachment, location_name, safe_filename
from helpgate.inbound.headers import decoded_header, raw_values
from helpgate.inbound.headers import text as header_text
from helpgate.inbound.parameters import ParametersReread

log = logging.getLogger(__name__)

_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]")

#: Parts of a report that are read by machines; kept as attachments under these names.
REPORT_PART_NAMES = {
    "message/delivery-status": "delivery-status.txt",
    "message/global-delivery-status": "delivery-status.txt",
    "message/disposition-notification": "disposition-notification.txt",
    "text/rfc822-headers": "returned-headers.txt",
}


#: Parts read per message; past it the Walker stops (defect PARTS_OMITTED) and the raw mail keeps the rest.
MAX_PARTS = 1000
PARTS_OMITTED = "PartsOmitted"


@dataclass(frozen=True)
class Shape:
    """A part's Content-Type and Content-Disposition, parsed once: the stdlib parses them again on every access
    (get_content_type, get_param, get_filename ... each about 100 µs under policy.default)."""

    kind: str
    params: dict[str, str] = field(default_factory=dict)
    disposition: str = ""
    filename: str | None = None
    reread: bool = False  # its parameters were read leniently (see ``parameters``)

    @property
    def maintype(self) -> str:
        return self.kind.partition("/")[0]

    @property
    def subtype(self) -> str:
        return self.kind.partition("/")[2]

    @property
    def charset(self) -> str | None:
        return self.params.get("charset") or None


def shape(part: Message) -> Shape:
    try:
        kind, params, reread = _content_type(part)
        disposition, disposition_params, reread_disposition = _disposition(part)
    except Exception as error:  # a header the parser chokes on: read the bare type from the raw value
        log.info("mime.content_type_unreadable reason=%s", type(error).__name__)
        raw = (raw_values(part, "Content-Type") or [part.get_default_type()])[0]
        kind = raw.split(";", 1)[0].strip().lower()
        kind, params, disposition, disposition_params = kind if kind.count("/") == 1 else "text/plain", {}, "", {}
        reread = reread_disposition = False
    name = disposition_params.get("filename") or params.get("name")
    filename = " ".join(header_text(name).split()) if name else None
    return Shape(
        kind=kind,
        params=params,
        disposition=disposition,
        filename=filename or None,
        reread=reread or reread_disposition,
    )


def _content_type(part: Message) -> tuple[str, dict[str, str], bool]:
    header = part.get("Content-Type")
    if header is None:
        return part.get_default_type(), {}, False
    if hasattr(header, "params"):  # policy.default: one parse gives the type and decoded RFC 2231 parameters
        kind = str(getattr(header, "content_type", "")).lower()
        params = {str(k).lower(): str(v) for k, v in header.params.items()}
    else:
        kind = part.get_content_type()
        params = {str(k).lower(): collapse_rfc2231_value(v) for k, v in (part.get_params() or [])[1:]}
    return (kind if kind.count("/") == 1 else "text/plain"), params, _reread(header)


def _disposition(part: Message) -> tuple[str, dict[str, str], bool]:
    header = part.get("Content-Disposition")
    if header is None:
        return "", {}, False
    if hasattr(header, "params"):
        params = {str(k).lower(): str(v) for k, v in header.params.items()}
        return str(getattr(header, "content_disposition", "") or "").lower(), params, _reread(header)
    params = {
        str(k).lower(): collapse_rfc2231_value(v) for k, v in (part.get_params(header="content-disposition") or [])
    }
    return (part.get_content_disposition() or "").lower(), params, False


def _reread(header: object) -> bool:
    return any(isinstance(defect, ParametersReread) for defect in getattr(header, "defects", ()))


@dataclass
class Piece:
    """One piece of the body: text, HTML, or both (a plain and an HTML alternative of the same content)."""

    text: str | None = None  # None: derive from the HTML
    html: str | None = None


@dataclass
class Body:
    pieces: list[Piece] = field(default_factory=list)
    attachments: list[ParsedAttachment] = field(default_factory=list)
    calendars: list[str] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)


class Walker:
    """Visits a message depth-first, numbering every part, and sorts the parts into a Body."""

    def __init__(self) -> None:
        self.index = 0
        self.body = Body()

    def walk(self, message: Message) -> Body:
        self._visit(message, self.body)
        return self.body

    def _visit(self, part: Message, into: Body, *, inline_resource: bool = False) -> None:
        index = self.index
        self.index += 1
        if index >= MAX_PARTS:  # the raw mail keeps the rest; a stranger's 200,000 parts are not each decoded
            if index == MAX_PARTS:
                log.info("mime.parts_omitted after=%d", MAX_PARTS)
                into.defects.append(PARTS_OMITTED)
            return
        into.defects += [type(defect).__name__ for defect in getattr(part, "defects", [])]
        form = shape(part)
        if form.reread:
            log.info("mime.parameters_reread index=%d type=%s", index, form.kind)
            into.defects.append("ParametersReread")
        if form.maintype == "multipart" and part.is_multipart():
            children = [child for child in part.get_payload() if isinstance(child, Message)]
            self._multipart(form, children, into)
        elif form.maintype == "multipart":
            self._unsplit(part, form, index, into, inline_resource=inline_resource)
        elif form.kind in ("message/rfc822", "message/global"):
            into.attachments.append(self._message_attachment(part, form, index))
        elif form.kind in ("text/plain", "text/html") and not inline_resource and not _is_file(form):
            into.pieces.append(self._text_piece(part, form, into))
        else:
            if form.kind == "text/calendar":
                into.calendars.append(self._decoded(part, form, into))
            into.attachments.append(self._attachment(part, form, index, inline_resource=inline_resource))

    def _multipart(self, form: Shape, children: list[Message], into: Body) -> None:
        if form.subtype == "alternative":
            self._alternative(children, into)
        elif form.subtype == "related" and children:
            start = form.params.get("start", "").strip().strip("<>")
            root = next((c for c in children if _content_id(c) == start), children[0]) if start else children[0]
            for child in children:
                self._visit(child, into, inline_resource=child is not root)
        else:
            for child in children:
                self._visit(child, into)

    def _unsplit(self, part: Message, form: Shape, index: int, into: Body, *, inline_resource: bool) -> None:
        """A multipart the stdlib could not split (no boundary, or none of its parts found) is no file of type
        multipart/*: empty (headers only), it is dropped; otherwise its content is plain text, or a file of
        unknown type when it is named or marked as an attachment."""
        if not _payload(part).strip():
            log.info("mime.empty_multipart_dropped index=%d type=%s", index, form.kind)
            into.defects.append("EmptyMultipart")
            return
        if inline_resource or _is_file(form):
            log.info("mime.unsplit_multipart_as_file index=%d type=%s", index, form.kind)
            file = replace(form, kind="application/octet-stream")
            into.attachments.append(self._attachment(part, file, index, inline_resource=inline_resource))
            return
        log.info("mime.unsplit_multipart_as_text index=%d type=%s", index, form.kind)
        into.pieces.append(self._text_piece(part, replace(form, kind="text/plain"), into))

    def _alternative(self, children: list[Message], into: Body) -> None:
        options: list[Body] = []
        for child in children:
            option = Body()
            self._visit(child, option)
            options.append(option)
            into.attachments += option.attachments
            into.calendars += option.calendars
            into.defects += option.defects
        plain = next((o for o in reversed(options) if o.pieces and all(p.html is None for p in o.pieces)), None)
        rich = next((o for o in reversed(options) if any(p.html is not None for p in o.pieces)), None)
        if plain is not None and rich is not None:
            text = "\n\n".join(p.text or "" for p in plain.pieces)
            into.pieces.append(Piece(text=text, html="".join(p.html or "" for p in rich.pieces)))
        elif plain is not None or rich is not None:
            into.pieces += (plain or rich or Body()).pieces
        else:
            into.pieces += next((o.pieces for o in reversed(options) if o.pieces), [])

    def _text_piece(self, part: Message, form: Shape, into: Body) -> Piece:
        text = self._decoded(part, form, into)
        if form.subtype == "html":
            return Piece(html=text)
        if form.params.get("format", "").lower() == "flowed":
            text = flowed.unflow(text, delsp=form.params.get("delsp", "").lower() == "yes")
        return Piece(text=text)

    def _decoded(self, part: Message, form: Shape, into: Body) -> str:
        data = _payload(part)
        declared = form.charset
        if declared is None and form.subtype == "html":
            declared = charsets.declared_in_html(data)
        decoded = charsets.decode(data, declared)
        if not decoded.clean and declared:
            into.defects.append(f"CharsetMismatch({declared}->{decoded.charset})")
        return decoded.text.replace("\r\n", "\n").replace("\r", "\n")

    def _attachment(self, part: Message, form: Shape, index: int, *, inline_resource: bool) -> ParsedAttachment:
        name = form.filename or _location_name(part) or REPORT_PART_NAMES.get(form.kind)
        if name is None and form.kind == "text/calendar":
            name = "invite.ics"
        content_id = _content_id(part) or None
        return ParsedAttachment(
            index=index,
            filename=safe_filename(name, index=index, content_type=form.kind),
            content_type=form.kind,
            data=_payload(part),
            content_id=content_id,
            inline=inline_resource or (form.disposition == "inline" and content_id is not None),
        )

    def _message_attachment(self, part: Message, form: Shape, index: int) -> ParsedAttachment:
        inner = undecoded(part)
        message = inner[0] if isinstance(inner, list) and inner and isinstance(inner[0], Message) else None
        name = form.filename
        if name is None and message is not None:
            name = f"{decoded_header(message, 'Subject') or 'message'}.eml"
        return ParsedAttachment(
            index=index,
            filename=safe_filename(name, index=index, content_type="message/rfc822"),
            content_type=form.kind,
            data=_message_bytes(part, message),
            content_id=_content_id(part) or None,
            sniffed_type="message/rfc822",
        )


def _is_file(form: Shape) -> bool:
    return form.disposition == "attachment" or form.filename is not None


def _location_name(part: Message) -> str | None:
    values = raw_values(part, "Content-Location")
    return location_name(values[0]) if values else None


def _content_id(part: Message) -> str:
    values = raw_values(part, "Content-ID")
    return "".join(values[0].split()).strip("<>") if values else ""


def _payload(part: Message) -> bytes:
    """The decoded bytes of a leaf part; broken base64 decodes as far as it goes."""
    payload = undecoded(part)
    if isinstance(payload, str) and str(part.get("Content-Transfer-Encoding", "")).strip().lower() == "base64":
        return _base64(payload.encode("utf-8", errors="surrogateescape"))
    data = part.get_payload(decode=True)
    if isinstance(data, bytes):
        return data
    return payload.encode("utf-8", errors="surrogateescape") if isinstance(payload, str) else b""


def undecoded(part: Message) -> object:
    """The payload as parsed, or None: the stdlib decodes 8-bit text by the declared charset here, and a charset
    that is not even a name (a NUL in it) makes it raise."""
    try:
        return part.get_payload()
    except (LookupError, ValueError):
        return None


def _base64(data: bytes) -> bytes:
    """Lenient base64: junk characters are skipped, missing padding is added, a dangling last character dropped.

    The stdlib returns the still-encoded text when the length is one more than a multiple of four (bpo-27397);
    a truncated attachment is more use decoded as far as it goes.
    """
    try:
        return binascii.a2b_base64(data)
    except binascii.Error:
        log.info("mime.base64_repaired bytes=%d", len(data))
    clean = _NOT_BASE64.sub(b"", data.split(b"=", 1)[0])
    clean = clean[: len(clean) - 1] if len(clean) % 4 == 1 else clean
    return binascii.a2b_base64(clean + b"=" * (-len(clean) % 4))


def _message_bytes(part: Message, message: Message | None) -> bytes:
    if message is None:
        return _payload(part)
    try:
        return message.as_bytes()
    except Exception as error:  # a message the stdlib parsed but cannot write back: keep what can be had
        log.info("mime.attached_message_fallback reason=%s", type(error).__name__)
    try:
        return message.as_string(policy=email.policy.compat32).encode("utf-8", errors="surrogateescape")
    except Exception:
        return _payload(part)
