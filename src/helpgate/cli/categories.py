"""`helpgate categories`: the category catalog triage files tickets under. `list` prints it as JSON (the
body of PUT /api/categories); `set FILE` replaces it with such a JSON list (`-` reads standard input).
Audited as `cli:<operating-system user>`."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from helpgate.installation import Installation

COMMANDS = ("categories",)


def add_commands(commands: Any) -> None:
    catalog = commands.add_parser(
        "categories",
        help="show or set the category catalog",
        description="Show the category catalog as JSON, or replace it with a JSON list of "
        '{"name", "description", "keywords"} (as PUT /api/categories takes). Triage files tickets under these; '
        'the descriptions tell the AI what belongs where, the keywords steer the keyword triage; "other" is always '
        "allowed.",
    )
    actions = catalog.add_subparsers(dest="categories_action", required=True, metavar="ACTION")
    actions.add_parser("list", help="print the catalog as JSON")
    replace = actions.add_parser("set", help="replace the catalog with a JSON list")
    replace.add_argument("file", help="the JSON file, or - for standard input")


async def run(args: argparse.Namespace, installation: Installation) -> int:
    from pydantic import TypeAdapter, ValidationError

    from helpgate.api.schemas.categories import CategoryIn
    from helpgate.audit import audit
    from helpgate.tickets import categories
    from helpgate.tickets.categories import CategoryEntry

    if args.categories_action == "set":
        source = sys.stdin.read if args.file == "-" else Path(args.file).read_text
        text = await asyncio.to_thread(source)
        try:
            given = TypeAdapter(list[CategoryIn]).validate_json(text)
        except ValidationError as error:
            print(f"helpgate: the catalog is not valid: {error.errors()[0]['msg']}", file=sys.stderr)
            return 2
        actor = audit.cli_actor()
        entries = [CategoryEntry(entry.name, entry.description, tuple(entry.keywords)) for entry in given]
        await categories.replace(entries, actor=actor)
        print(f"replaced the category catalog (audited as {actor}):", file=sys.stderr)
    shown = [
        {"name": entry.name, "description": entry.description, "keywords": entry.keywords}
        for entry in await categories.catalog()
    ]
    print(json.dumps(shown, ensure_ascii=False, indent=2))
    return 0
