"""The composition root: `helpgate serve | create-user | mailbox | ...`. Settings are read here, once.

Each group of commands is a module of this package with `add_commands` (its arguments) and `run`. What a command
needs is imported when it runs: `helpgate --help` loads no FastAPI, google-genai or inngest, and a command that
works on the store loads the store's code only (helpgate.installation), not the HTTP API and the workflows.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from helpgate import __version__
from helpgate.cli import categories, data, mailboxes, raw, serve, staff, suppressions

if TYPE_CHECKING:
    from helpgate.core.settings import Settings

log = logging.getLogger("helpgate")

#: The group module of each command.
GROUPS = {
    command: module
    for module in (serve, staff, categories, mailboxes, raw, data, suppressions)
    for command in module.COMMANDS
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="helpgate",
        description="Email-first support ticketing gateway. Settings come from the environment and .env.",
    )
    parser.add_argument("--version", action="version", version=f"helpgate {__version__}")
    parser.add_argument(
        "--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="default: HELPGATE_LOG_LEVEL, else INFO"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in dict.fromkeys(GROUPS.values()):
        module.add_commands(commands)
    return parser


async def _with_store(settings: Settings, args: argparse.Namespace) -> int:
    """Commands that work on the store: they join the running gateway's embedded store, if any."""
    from helpgate.installation import Installation

    installation = Installation(settings)
    await installation.connect_store()
    try:
        return int(await GROUPS[args.command].run(args, installation))
    finally:
        await installation.close_store()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from pydantic import ValidationError

    from helpgate import logs
    from helpgate.core.errors import HelpgateError
    from helpgate.core.settings import Settings

    try:
        settings = Settings()
    except ValidationError as error:
        print(f"helpgate: invalid settings:\n{error}", file=sys.stderr)
        return 2
    logs.configure(level=args.log_level or settings.log_level, log_format=settings.log_format)
    try:
        if args.command in serve.COMMANDS:
            return asyncio.run(serve.run(settings))
        return asyncio.run(_with_store(settings, args))
    except HelpgateError as error:
        print(f"helpgate: {error.detail}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
