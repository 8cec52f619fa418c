"""Parsed mail through the real pipeline and store: what a ticket message keeps, attachments in GridFS, idempotency."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

from helpgate.inbound import mime, pipeline, raw_messages
from helpgate.models import Attachment, Message, RawMessage, RawStatus
from helpgate.tickets import attachments
from tests.mail import big_mail

CORPUS = Path(__file__).parent.parent / "corpus"


async def deliver(data: bytes) -> RawMessage:
    raw = await raw_messages.store(data=data, source="smtp", mailbox="support@localhost")
    await pipeline.process(raw)
    stored = await RawMessage.get(raw.id)
    assert stored is not None
    return stored


async def test_message_keeps_view_text_full_text_and_sanitised_html(store: AsyncMongoClient[dict[str, Any]]) -> None:
    raw = await deliver((CORPUS / "gmail_reply.eml").read_bytes())
    assert raw.status is RawStatus.PROCESSED
    message = await Message.find_one({"ticket_number": raw.ticket_number})
    assert message is not None
    assert message.text == "Thanks, resetting the password fixed it."
    assert "> Please reset your password" in message.full_text
    assert "<blockquote" in message.html and "<script" not in message.html


async def test_attachments_are_stored_with_metadata_and_bytes(store: AsyncMongoClient[dict[str, Any]]) -> None:
    data = (CORPUS / "zip_attachment.eml").read_bytes()
    raw = await deliver(data)
    assert raw.status is RawStatus.PROCESSED
    [attachment] = await Attachment.find_all().to_list()
    assert attachment.filename == "logsgpj.zip" and attachment.ticket_number == raw.ticket_number
    assert attachment.content_type == "application/octet-stream" and attachment.sniffed_type == "application/zip"
    content = await attachments.read_bytes(attachment)
    assert hashlib.sha256(content).hexdigest() == attachment.sha256 and len(content) == attachment.size
    message = await Message.find_one({"ticket_number": raw.ticket_number})
    assert message is not None and [ref.filename for ref in message.attachments] == ["logsgpj.zip"]
    assert message.attachments[0].gridfs_id == attachment.gridfs_id


async def test_inline_image_is_kept_by_content_id(store: AsyncMongoClient[dict[str, Any]]) -> None:
    await deliver((CORPUS / "gmail_inline_image.eml").read_bytes())
    [image] = await Attachment.find_all().to_list()
    assert image.inline and image.content_id == "ii_m1a2b3c40" and image.sniffed_type == "image/png"


async def test_processing_the_same_raw_message_again_adds_no_attachment(
    store: AsyncMongoClient[dict[str, Any]],
) -> None:
    data = (CORPUS / "outlook_winmail_dat.eml").read_bytes()
    first = await deliver(data)
    assert first.status is RawStatus.PROCESSED
    assert await pipeline.process(first) is RawStatus.DUPLICATE  # a replay
    second = await deliver(data)  # a second delivery of the same bytes
    assert second.status is RawStatus.DUPLICATE
    assert await Attachment.find_all().count() == 1


async def test_storing_attachments_twice_for_one_message_keeps_one_copy(
    store: AsyncMongoClient[dict[str, Any]],
) -> None:
    """A crash between storing attachments and finishing leaves them stored; the retry must not copy them."""
    file = attachments.NewAttachment(
        part_index=2,
        filename="a.txt",
        content_type="text/plain",
        data=b"hello",
        sha256=hashlib.sha256(b"hello").hexdigest(),
    )
    first = await attachments.store(message_key="support@localhost m1@x", ticket_number=1, files=[file])
    again = await attachments.store(message_key="support@localhost m1@x", ticket_number=1, files=[file])
    assert [a.id for a in first] == [a.id for a in again]
    other = await attachments.store(message_key="support@localhost m2@x", ticket_number=2, files=[file])
    assert other[0].id != first[0].id and other[0].gridfs_id == first[0].gridfs_id  # same bytes stored once
    assert await Attachment.find_all().count() == 2


async def test_a_big_attachment_is_parsed_and_stored_whole(store: AsyncMongoClient[dict[str, Any]]) -> None:
    """Generated here rather than committed: 6 MiB of content, ~8 MiB on the wire, so it spans several GridFS
    chunks. The 20 MiB case over SMTP, timed: `uv run python -m bench.big_mail`."""
    payload, data = big_mail(6)
    assert len(data) > 8 * 1024 * 1024
    parsed = mime.parse(data)
    assert parsed.text == "Image attached."
    [part] = parsed.attachments
    assert part.size == len(payload) and part.sha256 == hashlib.sha256(payload).hexdigest()
    file = attachments.NewAttachment(
        part_index=part.index,
        filename=part.filename,
        content_type=part.content_type,
        data=part.data,
        sha256=part.sha256,
    )
    [attachment] = await attachments.store(
        message_key="support@localhost big-1@example.org", ticket_number=1, files=[file]
    )
    assert attachment.filename == "disk.img" and attachment.size == len(payload)
    assert await attachments.read_bytes(attachment) == payload


async def test_mail_without_message_id_is_processed_once(store: AsyncMongoClient[dict[str, Any]]) -> None:
    data = (CORPUS / "missing_message_id.eml").read_bytes()
    assert (await deliver(data)).status is RawStatus.PROCESSED
    assert (await deliver(data)).status is RawStatus.DUPLICATE


async def test_mail_with_no_text_part_opens_a_ticket_with_its_file(store: AsyncMongoClient[dict[str, Any]]) -> None:
    raw = await deliver((CORPUS / "no_text_part.eml").read_bytes())
    assert raw.status is RawStatus.PROCESSED
    message = await Message.find_one({"ticket_number": raw.ticket_number})
    assert message is not None and message.text == "" and message.attachments[0].filename == "scan_0001.pdf"
