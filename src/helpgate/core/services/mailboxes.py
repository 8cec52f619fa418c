"""IMAP mailboxes: configuration, and the cursor and status their pollers keep."""

from __future__ import annotations

import logging
from typing import Any

from beanie import PydanticObjectId
from pymongo.errors import DuplicateKeyError

from helpgate.core.crypto import SecretBox
from helpgate.core.errors import Conflict, InvalidInput, NotFound
from helpgate.core.models import ImapSecurity, Mailbox
from helpgate.core.models.clock import utcnow
from helpgate.core.services.users import normalise_email

log = logging.getLogger(__name__)


def check_after_import(action: str) -> str:
    if action == "seen" or (action.startswith("move:") and len(action) > len("move:")):
        return action
    raise InvalidInput(f"after-import action must be 'seen' or 'move:<folder>', not {action!r}")


async def create(
    *,
    box: SecretBox,
    address: str,
    imap_host: str,
    username: str,
    password: str,
    imap_port: int | None = None,
    imap_security: ImapSecurity = ImapSecurity.TLS,
    imap_verify_tls: bool = True,
    folder: str = "INBOX",
    after_import: str = "seen",
    import_history: bool = False,
    display_name: str = "",
    poll_interval_seconds: float = 60.0,
) -> Mailbox:
    mailbox = Mailbox(
        address=normalise_email(address),
        display_name=display_name,
        imap_host=imap_host,
        imap_port=imap_port or (993 if imap_security is ImapSecurity.TLS else 143),
        imap_security=imap_security,
        imap_verify_tls=imap_verify_tls,
        username=username,
        password_encrypted=box.encrypt(password),
        folder=folder,
        after_import=check_after_import(after_import),
        import_history=import_history,
        poll_interval_seconds=poll_interval_seconds,
    )
    try:
        await mailbox.insert()
    except DuplicateKeyError:
        raise Conflict(f"a mailbox for {mailbox.address} exists") from None
    log.info("mailbox.created address=%s host=%s:%d", mailbox.address, imap_host, mailbox.imap_port)
    return mailbox


async def list_all() -> list[Mailbox]:
    return await Mailbox.find_all().sort("address").to_list()


async def get(mailbox_id: PydanticObjectId) -> Mailbox | None:
    return await Mailbox.get(mailbox_id)


async def get_by_address(address: str) -> Mailbox:
    mailbox = await Mailbox.find_one({"address": address.strip().lower()})
    if mailbox is None:
        raise NotFound(f"no mailbox for {address}")
    return mailbox


async def set_enabled(address: str, enabled: bool) -> Mailbox:
    mailbox = await get_by_address(address)
    await _set(mailbox, {"enabled": enabled, "updated_at": utcnow()})
    log.info("mailbox.%s address=%s", "enabled" if enabled else "disabled", mailbox.address)
    return mailbox


async def delete(address: str) -> None:
    mailbox = await get_by_address(address)
    await mailbox.delete()
    log.info("mailbox.deleted address=%s", mailbox.address)


async def record_state(mailbox: Mailbox, **state: Any) -> None:
    """Update the poller's view of the mailbox (cursor, connection, last poll, errors)."""
    await _set(mailbox, {f"state.{name}": value for name, value in state.items()})
    for name, value in state.items():
        setattr(mailbox.state, name, value)


async def count_imported(mailbox: Mailbox, *, uid: int) -> None:
    """One message stored: move the cursor past it."""
    await Mailbox.get_pymongo_collection().update_one(
        {"_id": mailbox.id}, {"$set": {"state.last_uid": uid}, "$inc": {"state.imported": 1}}
    )
    mailbox.state.last_uid = uid
    mailbox.state.imported += 1


async def _set(mailbox: Mailbox, fields: dict[str, Any]) -> None:
    await Mailbox.get_pymongo_collection().update_one({"_id": mailbox.id}, {"$set": fields})
