"""`helpgate create-user`, `helpgate skills` and `helpgate staff`: accounts, the skill catalog triage chooses from,
and who has which skills. Each change is audited as `cli:<operating-system user>`."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import TYPE_CHECKING, Any

from helpgate.models import Role

if TYPE_CHECKING:
    from helpgate.installation import Installation

COMMANDS = ("create-user", "skills", "staff")


def add_commands(commands: Any) -> None:
    create = commands.add_parser(
        "create-user", help="create an admin, agent or customer account", description="Create a user account."
    )
    create.add_argument("email")
    create.add_argument("--role", choices=[role.value for role in Role], default=Role.AGENT.value)
    create.add_argument("--name", default="")
    create.add_argument("--password", help="the password (prompted for when left out)")

    catalog = commands.add_parser(
        "skills",
        help="show or set the skill catalog",
        description="Show the skill catalog, or replace it with `set NAME[=DESCRIPTION] ...`. Triage picks a "
        "ticket's skills from it (the description's words help the heuristic triage); agents are matched on them.",
    )
    actions = catalog.add_subparsers(dest="skills_action", required=True, metavar="ACTION")
    actions.add_parser("list", help="show the catalog")
    replace = actions.add_parser("set", help="replace the catalog")
    replace.add_argument("entries", nargs="+", metavar="NAME[=DESCRIPTION]")

    staff = commands.add_parser(
        "staff",
        help="set an agent's skills or away flag",
        description="Set an agent's (or admin's) skills from the catalog, or mark them away (no new tickets).",
    )
    staff.add_argument("email")
    staff.add_argument("--skills", help="comma-separated skill names (replaces the current ones; '' clears)")
    staff.add_argument("--away", choices=["on", "off"], help="away: automatic assignment passes them over")


async def run(args: argparse.Namespace, installation: Installation) -> int:
    if args.command == "create-user":
        return await _create_user(args)
    if args.command == "skills":
        return await _skills(args)
    from helpgate.accounts import users
    from helpgate.audit import audit

    names = None if args.skills is None else [name for name in args.skills.split(",") if name.strip()]
    away = None if args.away is None else args.away == "on"
    actor = audit.cli_actor()
    user = await users.update_staff(args.email, actor=actor, skills=names, away=away)
    audited = "" if names is None and away is None else f" (audited as {actor})"
    print(f"{user.email}: skills {', '.join(user.skills) or '(none)'}; {'away' if user.away else 'available'}{audited}")
    return 0


async def _create_user(args: argparse.Namespace) -> int:
    from helpgate.accounts import users
    from helpgate.audit import audit

    password = args.password
    if password is None:
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Repeat password: "):
            print("helpgate: the passwords differ", file=sys.stderr)
            return 2
    actor = audit.cli_actor()
    user = await users.create(
        actor=actor, email=args.email, role=Role(args.role), password=password, name=args.name, source="cli"
    )
    print(f"created {user.role} {user.email} (id {user.id}; audited as {actor})")
    return 0


async def _skills(args: argparse.Namespace) -> int:
    from helpgate.accounts import skills
    from helpgate.accounts.skills import SkillEntry
    from helpgate.audit import audit

    if args.skills_action == "set":
        entries = [SkillEntry(*entry.split("=", 1)) if "=" in entry else SkillEntry(entry) for entry in args.entries]
        actor = audit.cli_actor()
        await skills.replace(entries, actor=actor)
        print(f"replaced the skill catalog (audited as {actor}):")
    for skill in await skills.catalog():
        print(f"{skill.name}\t{skill.description}")
    return 0
