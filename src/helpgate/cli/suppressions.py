"""`helpgate suppressions list | lift ADDRESS`: addresses helpgate no longer mails, and lifting one (audited)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from helpgate.installation import Installation

COMMANDS = ("suppressions",)


def add_commands(commands: Any) -> None:
    parser = commands.add_parser(
        "suppressions",
        help="list suppressed addresses, or lift one",
        description="Addresses that bounced for good are not mailed. List them, or lift one so it is mailed again.",
    )
    actions = parser.add_subparsers(dest="suppressions_action", required=True, metavar="ACTION")
    actions.add_parser("list", help="the suppressed addresses, newest first, with their reasons")
    lift = actions.add_parser("lift", help="mail an address again (recorded in the audit log)")
    lift.add_argument("address")


async def run(args: argparse.Namespace, installation: Installation) -> int:
    from helpgate.audit import audit
    from helpgate.mail_out import suppressions

    if args.suppressions_action == "list":
        page = 1
        while True:
            found = await suppressions.list_page(page=page, page_size=100)
            for item in found.items:
                print(f"{item.address}\t{item.created_at:%Y-%m-%d %H:%M}\t{item.reason}")
            if page * found.page_size >= found.total:
                return 0
            page += 1
    address = args.address.strip().lower()
    actor = audit.cli_actor()
    if not await suppressions.lift(actor=actor, address=address):
        print(f"helpgate: {address} is not suppressed", file=sys.stderr)
        return 1
    print(f"lifted the suppression of {address} (audited as {actor})")
    return 0
