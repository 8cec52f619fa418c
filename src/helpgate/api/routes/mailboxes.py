"""IMAP mailboxes, for admins: add, list, show with status, change, remove, test the connection, and connect an
OAuth2 mailbox (the provider's consent, then its redirect back to the callback).

A running gateway picks changes up at its next reconciliation (within 10 seconds). Passwords, client secrets and
tokens are encrypted at rest and never returned.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import RedirectResponse

from helpgate.api.deps import AdminUser, Box, MailboxesChanged, OAuthTokens, OutgoingMail
from helpgate.api.openapi import error, errors
from helpgate.api.schemas.mailboxes import (
    MailboxCreate,
    MailboxOut,
    MailboxPatch,
    MailboxTestOut,
    OAuthConnectedOut,
    OAuthStartOut,
)
from helpgate.core.crypto import SecretBox
from helpgate.inbound import imap
from helpgate.mailboxes import leases, mailboxes, oauth_consent
from helpgate.mailboxes.mailboxes import MailboxChanges
from helpgate.mailboxes.oauth import Tokens
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
    fields = body.model_dump(exclude={"oauth", "smtp"})
    oauth = body.oauth.settings() if body.oauth is not None else None
    smtp = body.smtp.settings() if body.smtp is not None else None
    mailbox = await mailboxes.create(actor=admin, box=box, oauth=oauth, smtp=smtp, **fields)
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
    oauth = body.oauth.settings() if body.oauth is not None else None
    smtp = body.smtp.settings() if body.smtp is not None else None
    removed = "smtp" in body.model_fields_set and body.smtp is None
    fields = body.model_dump(exclude_unset=True, exclude={"oauth", "smtp"})
    changes = MailboxChanges(**fields, oauth=oauth, smtp=smtp, remove_smtp=removed)
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
async def test_mailbox(admin: AdminUser, mailbox_id: MailboxId, box: Box, tokens: OAuthTokens) -> MailboxTestOut:
    """Connect, log in and open the folder once, as the poller would; `ok` false with the server's error."""
    return await probe(await mailboxes.require(mailbox_id), box=box, tokens=tokens, timeout=PROBE_TIMEOUT)


@router.post("/{mailbox_id}/oauth/start", responses=NO_MAILBOX | errors(422))
async def start_oauth(admin: AdminUser, mailbox_id: MailboxId, box: Box, outgoing: OutgoingMail) -> OAuthStartOut:
    """The provider's consent URL for an OAuth2 mailbox (authorization code with PKCE). The admin opens it; the
    provider sends the browser back to `/api/mailboxes/oauth/callback` (under HELPGATE_PUBLIC_URL, which must be
    registered with the provider as a redirect URI), which stores the grant. The link works once, for 15 minutes,
    and only for the admin who asked for it."""
    mailbox = await mailboxes.require(mailbox_id)
    url = await oauth_consent.start(mailbox, admin=admin, box=box, public_url=outgoing.public_url)
    back = oauth_consent.redirect_uri(outgoing.public_url)
    return OAuthStartOut(authorization_url=url, redirect_uri=back, expires_in=oauth_consent.CONSENT_MINUTES * 60)


@router.get(
    "/oauth/callback",
    response_model=OAuthConnectedOut,
    responses=errors(400, 422) | {303: {"description": "to the console's mailbox page, when the console started it"}},
    openapi_extra={"security": []},
)
async def oauth_callback(
    box: Box,
    tokens: OAuthTokens,
    changed: MailboxesChanged,
    state: Annotated[str, Query(min_length=1, max_length=200)],
    code: Annotated[str | None, Query(max_length=4000)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
    error_description: Annotated[str | None, Query(max_length=2000)] = None,
) -> OAuthConnectedOut | Response:
    """Where the provider sends the admin's browser after consent. No Bearer token: the single-use `state` names
    the admin and mailbox that started the consent. 400 with the reason when the state is unknown, used or
    expired, or the provider refused."""
    connected = await oauth_consent.finish(
        state=state, code=code, error=error, error_description=error_description, tokens=tokens, box=box
    )
    changed()
    if connected.return_to is not None:
        return RedirectResponse(connected.return_to, status_code=303)
    mailbox = connected.mailbox
    return OAuthConnectedOut(address=mailbox.address, auth_state=str(mailbox.grant.state))


async def probe(mailbox: Mailbox, *, box: SecretBox, tokens: Tokens | None, timeout: float) -> MailboxTestOut:
    """`imap.probe` within `timeout` seconds, whatever the server does."""
    try:
        result = await asyncio.wait_for(imap.probe(mailbox, box=box, tokens=tokens), timeout)
    except TimeoutError:
        where = f"{mailbox.imap_host}:{mailbox.imap_port}"
        return MailboxTestOut(ok=False, detail=f"no complete answer from {where} within {timeout:g} s")
    ok = result.startswith("ok")
    return MailboxTestOut(ok=ok, detail=result.removeprefix("ok: " if ok else "failed: "))
