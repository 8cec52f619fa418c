"""The admins' mailboxes page: the IMAP mailboxes with their status, adding one, testing its connection,
connecting an OAuth2 one (the provider's consent), turning it off and on, and removing it. The services, schemas
and connection test of /api/mailboxes; the password is stored encrypted and never shown."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Request
from starlette.responses import Response

from helpgate.api.deps import get_mailboxes_changed, get_oauth_tokens, get_outgoing, get_secret_box
from helpgate.api.routes.mailboxes import PROBE_TIMEOUT, probe
from helpgate.api.schemas.mailboxes import MailboxCreate, MailboxOut, MailboxPatch
from helpgate.console import pages
from helpgate.console.forms import first, posted, valid
from helpgate.console.routes.admin import admin_only
from helpgate.console.routing import router
from helpgate.console.session import CurrentViewer
from helpgate.mailboxes import leases, mailboxes, oauth_consent
from helpgate.mailboxes.mailboxes import MailboxChanges
from helpgate.models import ImapSecurity

routes = router()

MailboxId = Annotated[str, Path(min_length=1, max_length=64)]


@routes.get("/admin/mailboxes")
async def mailbox_list(request: Request, viewer: CurrentViewer) -> Response:
    admin_only(viewer)
    found = await mailboxes.list_all()
    owners = await leases.of_mailboxes(found)
    shown = [MailboxOut.of(mailbox, owners.get(mailbox.id)) for mailbox in found]
    return pages.page(request, viewer, "admin_mailboxes.html.j2", mailboxes=shown, securities=list(ImapSecurity))


@routes.post("/admin/mailboxes")
async def add_mailbox(request: Request, viewer: CurrentViewer) -> Response:
    fields = await posted(request, viewer)
    admin_only(viewer)
    given: dict[str, Any] = {
        name: first(fields, name)
        for name in ("address", "display_name", "imap_host", "username", "password", "folder", "imap_security")
        if first(fields, name)
    }
    if first(fields, "imap_port"):
        given["imap_port"] = first(fields, "imap_port")
    body = valid(MailboxCreate, given)
    mailbox = await mailboxes.create(actor=viewer.user, box=get_secret_box(request), **body.model_dump())
    get_mailboxes_changed(request)()  # the running supervisor reconciles now
    return pages.redirect(request, viewer, f"/admin/mailboxes/{mailbox.id}")


@routes.get("/admin/mailboxes/{mailbox_id}")
async def mailbox_page(request: Request, viewer: CurrentViewer, mailbox_id: MailboxId) -> Response:
    admin_only(viewer)
    mailbox = await mailboxes.require(mailbox_id)
    shown = MailboxOut.of(mailbox, (await leases.of_mailboxes([mailbox])).get(mailbox.id))
    return pages.page(request, viewer, "admin_mailbox.html.j2", mailbox=shown, tested=None)


@routes.post("/admin/mailboxes/{mailbox_id}/test")
async def test_connection(request: Request, viewer: CurrentViewer, mailbox_id: MailboxId) -> Response:
    """Connect, log in and open the folder once, as the poller would; the result on the mailbox's page."""
    await posted(request, viewer)
    admin_only(viewer)
    mailbox = await mailboxes.require(mailbox_id)
    tested = await probe(mailbox, box=get_secret_box(request), tokens=get_oauth_tokens(request), timeout=PROBE_TIMEOUT)
    shown = MailboxOut.of(mailbox, (await leases.of_mailboxes([mailbox])).get(mailbox.id))
    return pages.page(request, viewer, "admin_mailbox.html.j2", mailbox=shown, tested=tested)


@routes.post("/admin/mailboxes/{mailbox_id}/connect")
async def connect(request: Request, viewer: CurrentViewer, mailbox_id: MailboxId) -> Response:
    """An OAuth2 mailbox: a link to the provider's consent, which sends the browser back to this mailbox's page.
    A link, not a redirect: the console's CSP (`form-action 'self'`) stops a form post that redirects elsewhere."""
    await posted(request, viewer)
    admin_only(viewer)
    assert viewer.user is not None
    mailbox = await mailboxes.require(mailbox_id)
    url = await oauth_consent.start(
        mailbox,
        admin=viewer.user,
        box=get_secret_box(request),
        public_url=get_outgoing(request).public_url,
        return_to=f"/admin/mailboxes/{mailbox.id}",
    )
    shown = MailboxOut.of(mailbox, (await leases.of_mailboxes([mailbox])).get(mailbox.id))
    return pages.page(request, viewer, "admin_mailbox.html.j2", mailbox=shown, tested=None, consent_url=url)


@routes.post("/admin/mailboxes/{mailbox_id}")
async def change_mailbox(request: Request, viewer: CurrentViewer, mailbox_id: MailboxId) -> Response:
    """Turn it on or off (`enabled`), or remove it (`remove`): mail already imported stays."""
    fields = await posted(request, viewer)
    admin_only(viewer)
    if "remove" in fields:
        await mailboxes.delete_by_id(mailbox_id, actor=viewer.user)
        get_mailboxes_changed(request)()  # the running supervisor reconciles now
        return pages.redirect(request, viewer, "/admin/mailboxes")
    patch = valid(MailboxPatch, {"enabled": first(fields, "enabled") == "true"})
    changes = MailboxChanges(**patch.model_dump(exclude_unset=True))
    await mailboxes.update(actor=viewer.user, box=get_secret_box(request), mailbox_id=mailbox_id, changes=changes)
    get_mailboxes_changed(request)()  # the running supervisor reconciles now
    return pages.redirect(request, viewer, f"/admin/mailboxes/{mailbox_id}")
