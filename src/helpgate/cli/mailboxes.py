"""`helpgate mailbox add | list | test | connect | enable | disable | remove`: IMAP mailboxes from the command line;
each change is audited as `cli:<operating-system user>`."""

from __future__ import annotations

import argparse
import getpass
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from helpgate.core.settings import SmtpSecurity
from helpgate.models import ImapSecurity, Mailbox, MailboxAuth, OAuthFlow, OAuthProvider

if TYPE_CHECKING:
    from helpgate.installation import Installation
    from helpgate.mailboxes.mailboxes import OAuthSettings, SmtpSettings
    from helpgate.mailboxes.oauth import Tokens

COMMANDS = ("mailbox",)


def add_commands(commands: Any) -> None:
    parser = commands.add_parser(
        "mailbox",
        help="manage IMAP mailboxes helpgate imports from",
        description="Manage IMAP mailboxes. A running `helpgate serve` picks changes up within 10 seconds.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="add a mailbox", description="Add an IMAP mailbox to import from.")
    add.add_argument("address", help="the support address whose mail lands in this mailbox")
    add.add_argument("--host", required=True, help="IMAP server")
    add.add_argument("--port", type=int, help="IMAP port (default 993 with --security tls, 143 with none)")
    add.add_argument("--security", choices=[s.value for s in ImapSecurity], default=ImapSecurity.TLS.value,
                     help="tls: IMAPS (implicit TLS); none: plain text, only for a server on this host")  # fmt: skip
    add.add_argument("--no-verify-tls", action="store_true", help="accept a self-signed server certificate")
    add.add_argument("--username", required=True)
    add.add_argument("--password", help="the IMAP password (prompted for when left out); stored encrypted")
    add.add_argument("--auth", choices=[a.value for a in MailboxAuth], default=MailboxAuth.PASSWORD.value,
                     help="password (default), or oauth2: XOAUTH2 with the app given by --provider ...")  # fmt: skip
    add.add_argument("--provider", choices=[p.value for p in OAuthProvider], help="oauth2: the provider")
    add.add_argument("--flow", choices=[f.value for f in OAuthFlow], default=OAuthFlow.AUTHORIZATION_CODE.value,
                     help="oauth2: how access is granted (device_code: `helpgate mailbox connect`; "
                     "client_credentials: Microsoft app-only, no consent)")  # fmt: skip
    add.add_argument("--client-id", help="oauth2: the app's client (application) id")
    add.add_argument(
        "--client-secret", help="oauth2: the app's secret, stored encrypted (or HELPGATE_OAUTH_CLIENT_SECRET)"
    )
    add.add_argument("--client-certificate", type=Path, metavar="PEM_FILE",
                     help="oauth2, microsoft: instead of a secret, the app's RSA key and certificate")  # fmt: skip
    add.add_argument("--tenant", default="", help="oauth2, microsoft: the tenant (directory) id or domain")
    add.add_argument("--authorization-url", default="", help="oauth2: the consent endpoint (generic providers)")
    add.add_argument("--token-url", default="", help="oauth2: the token endpoint (generic providers)")
    add.add_argument("--device-url", default="", help="oauth2: the device authorization endpoint (generic providers)")
    add.add_argument("--scope", action="append", default=[], dest="scopes", help="oauth2: a scope (repeat; generic)")
    add.add_argument("--smtp-host", help="send mail about this mailbox's tickets through this server, as its address")
    add.add_argument("--smtp-port", type=int, help="(default 587 with starttls, 465 with tls, 25 with none)")
    add.add_argument("--smtp-security", choices=[s.value for s in SmtpSecurity], default=SmtpSecurity.STARTTLS.value)
    add.add_argument("--smtp-username", default="", help="(default: the IMAP username)")
    add.add_argument("--smtp-password", help="(default: the IMAP password; oauth2 mailboxes use their token)")
    add.add_argument("--smtp-no-verify-tls", action="store_true", help="accept a self-signed SMTP certificate")
    add.add_argument("--default-sender", action="store_true",
                     help="with no SMTP_HOST, mail about no ticket goes through this mailbox")  # fmt: skip
    add.add_argument("--folder", default="INBOX")
    add.add_argument("--after-import", default="seen", help="'seen' (default) or 'move:<folder>'")
    add.add_argument("--import-history", action="store_true",
                     help="on first connection also import mail already marked read")  # fmt: skip
    add.add_argument("--poll-interval", type=float, default=60.0, help="seconds between polls without IDLE")
    add.add_argument("--name", default="", help="display name")
    add.add_argument("--trust-authserv-id", action="append", default=[], metavar="ID", dest="authserv_ids",
                     help="believe Authentication-Results of this id (repeat; Google: mx.google.com)")  # fmt: skip
    add.add_argument("--trust-first-authentication-results", action="store_true",
                     help="believe the topmost Authentication-Results (Microsoft 365 writes no id)")  # fmt: skip
    actions.add_parser("list", help="list mailboxes and their status (JSON)")
    connect = actions.add_parser(
        "connect",
        help="connect an OAuth2 mailbox with a device code",
        description="Print a code and a URL, and wait while you sign in as the mailbox on any device.",
    )
    connect.add_argument("address")
    for action, text in (
        ("test", "connect and log in, and say what the server answered"),
        ("enable", "start importing again"),
        ("disable", "stop importing (nothing is deleted)"),
        ("remove", "forget the mailbox (imported mail stays)"),
    ):
        actions.add_parser(action, help=text, description=text).add_argument("address")


def _status(mailbox: Mailbox) -> dict[str, Any]:
    return {
        "address": mailbox.address,
        "imap": f"{mailbox.imap_security}://{mailbox.username}@{mailbox.imap_host}:{mailbox.imap_port}/{mailbox.folder}",
        "after_import": mailbox.after_import,
        "enabled": mailbox.enabled,
        "state": mailbox.state.model_dump(mode="json"),
        **(
            {"auth_state": str(mailbox.grant.state), "auth_error": mailbox.grant.error}
            if mailbox.auth is MailboxAuth.OAUTH2
            else {}
        ),
    }


async def run(args: argparse.Namespace, installation: Installation) -> int:
    from helpgate.mail_out import wiring
    from helpgate.mailboxes import alerts
    from helpgate.mailboxes.oauth import Tokens

    # A refusal seen here first is the one the admins hear of: the alert waits in the queue for `helpgate serve`.
    outgoing = wiring.make_outgoing(installation.settings, secret=installation.load_secret_key(), wake=lambda: None)
    tokens = Tokens(
        box=installation.box,
        instance_id=installation.settings.instance_id,
        on_needs_consent=lambda mailbox, reason: alerts.needs_consent(mailbox, reason, outgoing=outgoing),
    )
    try:
        return await _act(args, installation, tokens)
    finally:
        await tokens.aclose()


async def _act(args: argparse.Namespace, installation: Installation, tokens: Tokens) -> int:
    from helpgate.audit import audit
    from helpgate.inbound import imap
    from helpgate.mailboxes import mailboxes, oauth_consent

    actor = audit.cli_actor()
    if args.action == "add":
        auth = MailboxAuth(args.auth)
        password = None
        oauth = None
        if auth is MailboxAuth.PASSWORD:
            password = args.password if args.password is not None else getpass.getpass("IMAP password: ")
        else:
            oauth = _oauth_settings(args)
        mailbox = await mailboxes.create(
            actor=actor,
            box=installation.box,
            address=args.address,
            imap_host=args.host,
            imap_port=args.port,
            imap_security=ImapSecurity(args.security),
            imap_verify_tls=not args.no_verify_tls,
            username=args.username,
            auth=auth,
            password=password,
            oauth=oauth,
            smtp=_smtp_settings(args),
            default_sender=args.default_sender,
            folder=args.folder,
            after_import=args.after_import,
            import_history=args.import_history,
            poll_interval_seconds=args.poll_interval,
            display_name=args.name,
            authserv_ids=args.authserv_ids,
            trust_first_authentication_results=args.trust_first_authentication_results,
        )
        print(f"added mailbox {mailbox.address} ({_status(mailbox)['imap']}; audited as {actor})")
    elif args.action == "list":
        print(json.dumps([_status(mailbox) for mailbox in await mailboxes.list_all()], indent=2))
    elif args.action == "test":
        mailbox = await mailboxes.get_by_address(args.address)
        result = await imap.probe(mailbox, box=installation.box, tokens=tokens)
        print(f"{mailbox.address}: {result}")
        return 0 if result.startswith("ok") else 1
    elif args.action == "connect":
        mailbox = await mailboxes.get_by_address(args.address)
        device = await oauth_consent.start_device(mailbox, tokens=tokens)
        print(device.message, flush=True)
        print(f"Waiting up to {device.expires_in // 60} minutes...", flush=True)
        await oauth_consent.wait_device(mailbox, device, tokens=tokens, by=actor)
        print(f"mailbox {mailbox.address} connected (audited as {actor}); a running gateway logs in within 10 seconds")
    elif args.action in ("enable", "disable"):
        mailbox = await mailboxes.set_enabled(args.address, args.action == "enable", actor=actor)
        print(f"mailbox {mailbox.address} {args.action}d (audited as {actor})")
    else:
        await mailboxes.delete(args.address, actor=actor)
        print(f"mailbox {args.address} removed (audited as {actor})")
    return 0


def _oauth_settings(args: argparse.Namespace) -> OAuthSettings:
    from helpgate.mailboxes.mailboxes import OAuthSettings

    if not args.provider or not args.client_id:
        raise SystemExit("--auth oauth2 needs --provider and --client-id")
    secret = args.client_secret or os.environ.get("HELPGATE_OAUTH_CLIENT_SECRET") or None
    return OAuthSettings(
        provider=OAuthProvider(args.provider),
        flow=OAuthFlow(args.flow),
        client_id=args.client_id,
        client_secret=secret,
        client_certificate=args.client_certificate.read_text() if args.client_certificate else None,
        tenant_id=args.tenant,
        authorization_url=args.authorization_url,
        token_url=args.token_url,
        device_authorization_url=args.device_url,
        scopes=tuple(args.scopes),
    )


def _smtp_settings(args: argparse.Namespace) -> SmtpSettings | None:
    from helpgate.mailboxes.mailboxes import SmtpSettings

    if not args.smtp_host:
        return None
    return SmtpSettings(
        host=args.smtp_host,
        port=args.smtp_port,
        security=SmtpSecurity(args.smtp_security),
        verify_tls=not args.smtp_no_verify_tls,
        username=args.smtp_username,
        password=args.smtp_password or None,
    )
