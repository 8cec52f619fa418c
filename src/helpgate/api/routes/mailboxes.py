"""IMAP mailboxes, for admins: add, list, show with status, change, remove, and test the connection.

A running gateway picks changes up at its next reconciliation (within 10 seconds). Passwords are
encrypted at rest and never returned.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Path, Response

from helpgate.api.deps import AdminUser, Box, MailboxesChanged
from helpgate.api.openapi import error, errors
from helpgate.api.schemas.mailboxes import MailboxCreate, MailboxOut, MailboxPatch, MailboxTestOut
from helpgate.core.crypto import SecretBox
from helpgate.inbound import imap
from helpgate.mailboxes import leases, mailboxes
from helpgate.mailboxes.mailboxes import MailboxChanges
from helpgate.models import Mailbox

router = APIRouter(prefix="/api/mailboxes", tags=["mailboxes"], responses=errors(401, 403))
NO_MAILBOX = error(404, "no mailbox with this id")
TAKEN = error(409, "a mailbox for this address exists")

MailboxId = Annotated[str, Path(min_length=1, max_length=64)]
PROBE_TIMEOUT = 20.0  # seconds for the whole test: connect, greeting, login, select, logout


@router.get("")
async def list_mailboxes(admin: AdminUser) -> list[MailboxOut]:
    """Every mailbox with its status, by address."""
    found = await mailboxes.list_all()
    owners = await leases.of_mailboxes(found)
    return [MailboxOut.of(mailbox, owners.get(mailbox.id)) for mailbox in found]


@router.post("", status_code=201, responses=TAKEN | errors(400, 422))
async def create_mailbox(admin: AdminUser, body: MailboxCreate, box: Box, changed: MailboxesChanged) -> MailboxOut:
    """Add a mailbox to import from (audited, the password never): polling starts within 10 seconds when enabled."""
    mailbox = await mailboxes.create(actor=admin, box=box, **body.model_dump())
    changed()
    return MailboxOut.of(mailbox)


@router.get("/{mailbox_id}", responses=NO_MAILBOX | errors(422))
async def get_mailbox(admin: AdminUser, mailbox_id: MailboxId) -> MailboxOut:
    """The mailbox with its status, and the instance polling it (`status.owner`)."""
    mailbox = await mailboxes.require(mailbox_id)
    return MailboxOut.of(mailbox, (await leases.of_mailboxes([mailbox])).get(mailbox.id))


@router.patch("/{mailbox_id}", responses=NO_MAILBOX | TAKEN | errors(400, 422))
async def update_mailbox(
    admin: AdminUser, mailbox_id: MailboxId, body: MailboxPatch, box: Box, changed: MailboxesChanged
) -> MailboxOut:
    """Change a mailbox (audited, a new password only as "(changed)"); the poller reconnects with the new settings."""
    changes = MailboxChanges(**body.model_dump(exclude_unset=True))
    mailbox = await mailboxes.update(actor=admin, box=box, mailbox_id=mailbox_id, changes=changes)
    changed()
    return MailboxOut.of(mailbox)


@router.delete("/{mailbox_id}", status_code=204, response_class=Response, responses=NO_MAILBOX | errors(422))
async def delete_mailbox(admin: AdminUser, mailbox_id: MailboxId, changed: MailboxesChanged) -> Response:
    """Forget the mailbox (audited); mail already imported stays."""
    await mailboxes.delete_by_id(mailbox_id, actor=admin)
    changed()
    return Response(status_code=204)


@router.post("/{mailbox_id}/test", responses=NO_MAILBOX | errors(422))
async def test_mailbox(admin: AdminUser, mailbox_id: MailboxId, box: Box) -> MailboxTestOut:
    """Connect, log in and open the folder once, as the poller would; `ok` false with the server's error."""
    return await probe(await mailboxes.require(mailbox_id), box=box, timeout=PROBE_TIMEOUT)


async def probe(mailbox: Mailbox, *, box: SecretBox, timeout: float) -> MailboxTestOut:
    """`imap.probe` within `timeout` seconds, whatever the server does."""
    try:
        result = await asyncio.wait_for(imap.probe(mailbox, box=box), timeout)
    except TimeoutError:
        where = f"{mailbox.imap_host}:{mailbox.imap_port}"
        return MailboxTestOut(ok=False, detail=f"no complete answer from {where} within {timeout:g} s")
    ok = result.startswith("ok")
    return MailboxTestOut(ok=ok, detail=result.removeprefix("ok: " if ok else "failed: "))
