"""IMAP mailboxes: configuration (each change audited, the password and client secret only as changed), and the
cursor and status their pollers keep. OAuth2 tokens are kept by mailboxes/oauth.py."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from beanie import PydanticObjectId
from pymongo.errors import DuplicateKeyError

from helpgate.accounts.users import normalise_email
from helpgate.audit import audit
from helpgate.core import paging
from helpgate.core.clock import utcnow
from helpgate.core.crypto import SecretBox
from helpgate.core.errors import Conflict, InvalidInput, NotFound
from helpgate.core.settings import SmtpSecurity
from helpgate.mail_out.transport import DEFAULT_PORTS
from helpgate.mailboxes import oauth_providers
from helpgate.mailboxes.models.mailbox import GrantState, MailboxSmtp, OAuthGrant
from helpgate.models import (
    AuditAction,
    AuditEntry,
    ImapSecurity,
    Mailbox,
    MailboxAuth,
    OAuthClient,
    OAuthFlow,
    OAuthProvider,
    User,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OAuthSettings:
    """The app an OAuth2 mailbox logs in through, as an admin gives it (the secret in clear, encrypted here)."""

    provider: OAuthProvider
    client_id: str
    flow: OAuthFlow = OAuthFlow.AUTHORIZATION_CODE
    client_secret: str | None = None  # None on a change: keep the stored one
    client_certificate: str | None = None  # PEM private key and certificate; None on a change: keep the stored one
    tenant_id: str = ""
    authorization_url: str = ""
    token_url: str = ""
    device_authorization_url: str = ""
    scopes: tuple[str, ...] = ()

    def client(self, box: SecretBox, *, kept_secret: str = "", kept_certificate: str = "") -> OAuthClient:
        secret = box.encrypt(self.client_secret) if self.client_secret else kept_secret
        certificate = kept_certificate
        if self.client_certificate:
            oauth_providers.check_certificate(self.client_certificate)
            certificate = box.encrypt(self.client_certificate)
        client = OAuthClient(
            provider=self.provider,
            flow=self.flow,
            client_id=self.client_id,
            client_secret_encrypted=secret,
            client_certificate_encrypted=certificate,
            tenant_id=self.tenant_id.strip(),
            authorization_url=self.authorization_url,
            token_url=self.token_url,
            device_authorization_url=self.device_authorization_url,
            scopes=list(self.scopes),
        )
        oauth_providers.check(client, has_secret=bool(secret or certificate))
        return client

    def audited(self) -> dict[str, Any]:
        """As the audit log keeps it: the secret only as "(changed)"."""
        shown = {name: value for name, value in asdict(self).items() if value not in (None, "", ())}
        for secret in ("client_secret", "client_certificate"):
            if shown.get(secret):
                shown[secret] = audit.CHANGED
        return shown


@dataclass(frozen=True)
class SmtpSettings:
    """The mailbox's own submission server, as an admin gives it (a password in clear, encrypted here)."""

    host: str
    port: int | None = None  # None: 587 with starttls, 465 with tls, 25 with none
    security: SmtpSecurity = SmtpSecurity.STARTTLS
    verify_tls: bool = True
    username: str = ""  # empty: the IMAP username
    password: str | None = None  # None: the IMAP password (or, on a change, the one stored)

    def stored(self, box: SecretBox, *, kept_password: str = "") -> MailboxSmtp:
        return MailboxSmtp(
            host=self.host,
            port=self.port or DEFAULT_PORTS[self.security],
            security=self.security,
            verify_tls=self.verify_tls,
            username=self.username,
            password_encrypted=box.encrypt(self.password) if self.password else kept_password,
        )

    def audited(self) -> dict[str, Any]:
        shown = {name: value for name, value in asdict(self).items() if value not in (None, "")}
        if self.password:
            shown["password"] = audit.CHANGED
        return shown


async def _only_default_sender(mailbox: Mailbox) -> None:
    """One mailbox sends mail about no ticket: marking one unmarks the others."""
    await Mailbox.get_pymongo_collection().update_many(
        {"_id": {"$ne": mailbox.id}, "default_sender": True}, {"$set": {"default_sender": False}}
    )


async def finish_cut_off(confirmed: Iterable[AuditEntry]) -> None:
    """What mailbox changes cut off after their write still owe once `audit.finish_pending` has confirmed them: a
    mailbox marked as the default sender unmarks the one marked before (unless a later change unmarked it)."""
    for entry in confirmed:
        if entry.target_type != "mailbox" or entry.changes.get("default_sender") is not True:
            continue
        mailbox = await Mailbox.get(PydanticObjectId(entry.target_id))
        if mailbox is not None and mailbox.default_sender:
            await _only_default_sender(mailbox)
            log.warning("mailbox.default_sender_settled address=%s", mailbox.address)


def _login(auth: MailboxAuth, *, has_password: bool, has_oauth: bool) -> None:
    if auth is MailboxAuth.PASSWORD and not has_password:
        raise InvalidInput("a mailbox with auth password needs its password")
    if auth is MailboxAuth.OAUTH2 and not has_oauth:
        raise InvalidInput("a mailbox with auth oauth2 needs its oauth settings (provider, client_id...)")


def check_after_import(action: str) -> str:
    if action == "seen" or (action.startswith("move:") and len(action) > len("move:")):
        return action
    raise InvalidInput(f"after-import action must be 'seen' or 'move:<folder>', not {action!r}")


async def create(
    *,
    actor: User | str | None,
    box: SecretBox,
    address: str,
    imap_host: str,
    username: str,
    password: str | None = None,
    auth: MailboxAuth = MailboxAuth.PASSWORD,
    oauth: OAuthSettings | None = None,
    smtp: SmtpSettings | None = None,
    default_sender: bool = False,
    imap_port: int | None = None,
    imap_security: ImapSecurity = ImapSecurity.TLS,
    imap_verify_tls: bool = True,
    folder: str = "INBOX",
    after_import: str = "seen",
    import_history: bool = False,
    display_name: str = "",
    poll_interval_seconds: float = 60.0,
    enabled: bool = True,
    authserv_ids: list[str] | None = None,
    trust_first_authentication_results: bool = False,
) -> Mailbox:
    """A new mailbox, audited as made by `actor` with the settings asked for (None audits nothing: a store seeded
    for tests or benchmarks)."""
    _login(auth, has_password=bool(password), has_oauth=oauth is not None)
    mailbox = Mailbox(
        address=normalise_email(address),
        display_name=display_name,
        imap_host=imap_host,
        imap_port=imap_port or (993 if imap_security is ImapSecurity.TLS else 143),
        imap_security=imap_security,
        imap_verify_tls=imap_verify_tls,
        username=username,
        auth=auth,
        password_encrypted=box.encrypt(password) if password and auth is MailboxAuth.PASSWORD else "",
        oauth=oauth.client(box) if oauth is not None and auth is MailboxAuth.OAUTH2 else None,
        smtp=smtp.stored(box) if smtp is not None else None,
        default_sender=default_sender,
        folder=folder,
        after_import=check_after_import(after_import),
        import_history=import_history,
        poll_interval_seconds=poll_interval_seconds,
        enabled=enabled,
        authserv_ids=[authserv_id.strip().lower() for authserv_id in authserv_ids or [] if authserv_id.strip()],
        trust_first_authentication_results=trust_first_authentication_results,
    )
    entry = None
    if actor is not None:
        asked: dict[str, Any] = {
            "address": address,
            "display_name": display_name,
            "imap_host": imap_host,
            "imap_port": imap_port,
            "imap_security": imap_security,
            "imap_verify_tls": imap_verify_tls,
            "username": username,
            "auth": auth,
            "folder": folder,
            "after_import": after_import,
            "import_history": import_history,
            "poll_interval_seconds": poll_interval_seconds,
            "enabled": enabled,
            "authserv_ids": authserv_ids or [],
            "trust_first_authentication_results": trust_first_authentication_results,
        }
        if mailbox.password_encrypted:
            asked["password"] = password
        if mailbox.oauth is not None and oauth is not None:
            asked["oauth"] = oauth.audited()
        if smtp is not None:
            asked["smtp"] = smtp.audited()
        if default_sender:
            asked["default_sender"] = True
        # One unit: the entry (pending), the mailbox carrying its mark, then the confirmation.
        mailbox.id = PydanticObjectId()
        entry = await _begin(actor, AuditAction.MAILBOX_CREATED, mailbox, asked)
        mailbox.applied = [audit.mark(entry)]
    try:
        await mailbox.insert()
    except DuplicateKeyError:
        if entry is not None:
            await audit.abandon(entry)
        raise Conflict(f"a mailbox for {mailbox.address} exists") from None
    if default_sender:
        await _only_default_sender(mailbox)
    log.info("mailbox.created address=%s host=%s:%d", mailbox.address, imap_host, mailbox.imap_port)
    if entry is not None:
        await audit.confirm(entry)
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


async def find_by_address(address: str) -> Mailbox | None:
    return await Mailbox.find_one({"address": address.strip().lower()})


async def set_enabled(address: str, enabled: bool, *, actor: User | str) -> Mailbox:
    """Start or stop importing from the mailbox, audited as `actor`."""
    mailbox = await get_by_address(address)
    entry = await _begin(actor, AuditAction.MAILBOX_UPDATED, mailbox, {"enabled": enabled})
    await _set(mailbox, {"enabled": enabled, "updated_at": utcnow()}, entry)
    mailbox.enabled = enabled
    log.info("mailbox.%s address=%s", "enabled" if enabled else "disabled", mailbox.address)
    await audit.confirm(entry)
    return mailbox


async def delete(address: str, *, actor: User | str) -> None:
    """Forget the mailbox with this address (imported mail stays), audited as `actor`."""
    await _delete(await get_by_address(address), actor=actor)


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


async def _set(mailbox: Mailbox, fields: dict[str, Any], entry: audit.Pending | None = None) -> None:
    """Set fields; with the audit `entry` of an admin's change, the write carries its mark (audit.begin)."""
    marked = audit.marked(entry) if entry is not None else {}
    await Mailbox.get_pymongo_collection().update_one({"_id": mailbox.id}, {"$set": fields, **marked})


async def _begin(
    actor: User | str, action: AuditAction, mailbox: Mailbox, changes: dict[str, Any], *, label: str | None = None
) -> audit.Pending:
    """The change's audit entry, pending until audit.confirm (the change's write carries its mark)."""
    return await audit.begin(
        actor=actor,
        action=action,
        target_type="mailbox",
        target_id=str(mailbox.id),
        target_label=label or mailbox.address,
        changes=changes,
    )


async def _audit(actor: User | str, action: AuditAction, mailbox: Mailbox, changes: dict[str, Any]) -> None:
    await audit.record(
        actor=actor,
        action=action,
        target_type="mailbox",
        target_id=str(mailbox.id),
        target_label=mailbox.address,
        changes=changes,
    )


def default_port(security: ImapSecurity) -> int:
    return 993 if security is ImapSecurity.TLS else 143


def parse_id(mailbox_id: str) -> PydanticObjectId:
    """The id in a path; NotFound (not a validation error) when it cannot name a mailbox."""
    found = paging.object_id(mailbox_id)
    if found is None:
        raise NotFound(f"mailbox {mailbox_id[:64]!r} not found")
    return found


async def require(mailbox_id: str) -> Mailbox:
    mailbox = await get(parse_id(mailbox_id))
    if mailbox is None:
        raise NotFound(f"mailbox {mailbox_id[:64]!r} not found")
    return mailbox


@dataclass(frozen=True)
class MailboxChanges:
    """What an admin asks to change on a mailbox; fields left None are kept."""

    address: str | None = None
    display_name: str | None = None
    imap_host: str | None = None
    imap_port: int | None = None
    imap_security: ImapSecurity | None = None
    imap_verify_tls: bool | None = None
    username: str | None = None
    auth: MailboxAuth | None = None
    password: str | None = None
    oauth: OAuthSettings | None = None
    smtp: SmtpSettings | None = None
    remove_smtp: bool = False  # mail about its tickets goes through the global relay again
    default_sender: bool | None = None
    folder: str | None = None
    after_import: str | None = None
    import_history: bool | None = None
    poll_interval_seconds: float | None = None
    enabled: bool | None = None
    authserv_ids: list[str] | None = None
    trust_first_authentication_results: bool | None = None


# Another server, account or folder is another mailbox: its UIDs say nothing about the old cursor.
_NEW_MAILBOX_FIELDS = ("imap_host", "username", "folder")


async def update(*, actor: User | str, box: SecretBox, mailbox_id: str, changes: MailboxChanges) -> Mailbox:
    """Change a mailbox, audited as `actor` with the fields asked for (a new password only as changed); a running
    gateway restarts its poller at its next reconciliation (`updated_at`).

    A new host, username or folder starts from a fresh cursor (only unread mail is imported, unless
    `import_history`). A new security without a port moves a default port along (993 <-> 143).
    """
    mailbox = await require(mailbox_id)
    given: dict[str, Any] = {name: value for name, value in asdict(changes).items() if value is not None}
    kept_apart = ("password", "oauth", "auth", "smtp", "remove_smtp")  # stored as _login_changes and below say
    values = {name: value for name, value in given.items() if name not in kept_apart}
    if not changes.remove_smtp:
        given.pop("remove_smtp", None)
    if changes.oauth is not None:
        given["oauth"] = changes.oauth.audited()
    if changes.smtp is not None:
        kept = mailbox.smtp.password_encrypted if mailbox.smtp is not None else ""
        values["smtp"] = changes.smtp.stored(box, kept_password=kept).model_dump(mode="json")
        given["smtp"] = changes.smtp.audited()
    elif changes.remove_smtp:
        values["smtp"] = None
    values.update(_login_changes(mailbox, changes, box))
    if changes.address is not None:
        values["address"] = normalise_email(changes.address)
    if changes.authserv_ids is not None:
        values["authserv_ids"] = [item.strip().lower() for item in changes.authserv_ids if item.strip()]
    if changes.after_import is not None:
        check_after_import(changes.after_import)
    security = changes.imap_security
    if security is not None and changes.imap_port is None and mailbox.imap_port == default_port(mailbox.imap_security):
        values["imap_port"] = default_port(security)
    if security is not None:
        values["imap_security"] = str(security)  # stored as the plain string, like Beanie does
    if not values:
        await _audit(actor, AuditAction.MAILBOX_UPDATED, mailbox, given)
        return mailbox
    if any(name in values and values[name] != getattr(mailbox, name) for name in _NEW_MAILBOX_FIELDS):
        values["state.uidvalidity"] = None
        values["state.last_uid"] = 0
    values["updated_at"] = utcnow()
    entry = await _begin(actor, AuditAction.MAILBOX_UPDATED, mailbox, given, label=values.get("address"))
    try:
        await _set(mailbox, values, entry)
    except DuplicateKeyError:
        await audit.abandon(entry)
        raise Conflict(f"a mailbox for {values['address']} exists") from None
    log.info("mailbox.updated address=%s fields=%s", mailbox.address, ",".join(sorted(given)))
    changed = await require(mailbox_id)
    if changes.default_sender:
        await _only_default_sender(changed)
    await audit.confirm(entry)
    return changed


def _login_changes(mailbox: Mailbox, changes: MailboxChanges, box: SecretBox) -> dict[str, Any]:
    """The stored fields a change of password, auth or OAuth2 client means.

    Another app (provider, client id, tenant) or auth needs a new grant: the tokens go. A new secret alone keeps the
    grant, but lifts `needs_consent` (an expired secret was the refusal) so the poller tries again.
    """
    auth = changes.auth or mailbox.auth
    password = changes.password
    oauth = changes.oauth
    if changes.auth is not None:
        has_password = bool(password or mailbox.password_encrypted)
        _login(auth, has_password=has_password, has_oauth=oauth is not None or mailbox.oauth is not None)
    if oauth is not None and auth is not MailboxAuth.OAUTH2:
        raise InvalidInput("oauth settings need auth oauth2")
    values: dict[str, Any] = {}
    if changes.auth is not None:
        values["auth"] = str(auth)
    if password is not None:
        values["password_encrypted"] = box.encrypt(password)
    if auth is MailboxAuth.OAUTH2 and oauth is not None:
        before_client = mailbox.oauth
        client = oauth.client(
            box,
            kept_secret=before_client.client_secret_encrypted if before_client is not None else "",
            kept_certificate=before_client.client_certificate_encrypted if before_client is not None else "",
        )
        values["oauth"] = client.model_dump(mode="json")
        before = mailbox.oauth
        same_app = before is not None and _app(before) == _app(client)
        if not same_app or mailbox.auth is not MailboxAuth.OAUTH2:
            values["grant"] = OAuthGrant(version=mailbox.grant.version + 1).model_dump(mode="json")
        elif mailbox.grant.state is GrantState.NEEDS_CONSENT:
            has_tokens = bool(mailbox.grant.refresh_token_encrypted) or client.flow is OAuthFlow.CLIENT_CREDENTIALS
            values["grant.state"] = str(GrantState.OK if has_tokens else GrantState.NOT_CONNECTED)
            values["grant.error"] = None
    elif changes.auth is MailboxAuth.PASSWORD and mailbox.auth is MailboxAuth.OAUTH2:
        values["grant"] = OAuthGrant(version=mailbox.grant.version + 1).model_dump(mode="json")
    return values


def _app(client: OAuthClient) -> tuple[object, ...]:
    """What a grant belongs to: another provider, app, tenant, flow or endpoint needs a new one (a refresh token is
    never sent to an endpoint it was not issued by)."""
    return (
        client.provider,
        client.client_id,
        client.tenant_id,
        client.flow,
        client.authorization_url,
        client.token_url,
        client.device_authorization_url,
    )


async def delete_by_id(mailbox_id: str, *, actor: User | str) -> Mailbox:
    """Forget a mailbox (imported mail stays), audited as `actor`; a running gateway stops its poller at its next
    reconciliation."""
    return await _delete(await require(mailbox_id), actor=actor)


async def _delete(mailbox: Mailbox, *, actor: User | str) -> Mailbox:
    entry = await _begin(actor, AuditAction.MAILBOX_DELETED, mailbox, {})
    await mailbox.delete()
    log.info("mailbox.deleted address=%s", mailbox.address)
    await audit.confirm(entry)
    return mailbox
