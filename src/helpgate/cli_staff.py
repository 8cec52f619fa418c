"""`helpgate skills` and `helpgate staff`: the skill catalog triage chooses from, and who has which skills."""

from __future__ import annotations

import argparse
from typing import Any

from helpgate.core.services import skills, users
from helpgate.core.services.skills import SkillEntry


def add_commands(commands: Any) -> None:
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


async def run(args: argparse.Namespace) -> int:
    if args.command == "skills":
        if args.skills_action == "set":
            entries = [
                SkillEntry(*entry.split("=", 1)) if "=" in entry else SkillEntry(entry) for entry in args.entries
            ]
            await skills.replace(entries)
        for skill in await skills.catalog():
            print(f"{skill.name}\t{skill.description}")
        return 0
    names = None if args.skills is None else [name for name in args.skills.split(",") if name.strip()]
    away = None if args.away is None else args.away == "on"
    user = await users.update_staff(args.email, skills=names, away=away)
    print(f"{user.email}: skills {', '.join(user.skills) or '(none)'}; {'away' if user.away else 'available'}")
    return 0
