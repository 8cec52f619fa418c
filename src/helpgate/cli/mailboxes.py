"""`helpgate mailbox add | list | test | enable | disable | remove`: IMAP mailboxes from the command line; each change
is audited as `cli:<operating-system user>`."""

from __future__ import annotations

import argparse
import getpass
import json
from typing import TYPE_CHECKING, Any

from helpgate.models import ImapSecurity, Mailbox

if TYPE_CHECKING:
    from helpgate.installation import Installation

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
    }


async def run(args: argparse.Namespace, installation: Installation) -> int:
    from helpgate.audit import audit
    from helpgate.inbound import imap
    from helpgate.mailboxes import mailboxes

    actor = audit.cli_actor()
    if args.action == "add":
        password = args.password if args.password is not None else getpass.getpass("IMAP password: ")
        mailbox = await mailboxes.create(
            actor=actor,
            box=installation.box,
            address=args.address,
            imap_host=args.host,
            imap_port=args.port,
            imap_security=ImapSecurity(args.security),
            imap_verify_tls=not args.no_verify_tls,
            username=args.username,
            password=password,
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
        result = await imap.probe(mailbox, box=installation.box)
        print(f"{mailbox.address}: {result}")
        return 0 if result.startswith("ok") else 1
    elif args.action in ("enable", "disable"):
        mailbox = await mailboxes.set_enabled(args.address, args.action == "enable", actor=actor)
        print(f"mailbox {mailbox.address} {args.action}d (audited as {actor})")
    else:
        await mailboxes.delete(args.address, actor=actor)
        print(f"mailbox {args.address} removed (audited as {actor})")
    return 0
