"""The composition root: `helpgate serve | create-user | skills | staff | ...`. Settings are read here, once."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import signal
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from helpgate import __version__, cli_data, cli_mailboxes, cli_raw, cli_staff, cli_suppressions, logs
from helpgate.core.errors import HelpgateError
from helpgate.core.models import Role
from helpgate.core.services import users
from helpgate.core.settings import Settings
from helpgate.gateway import Gateway

log = logging.getLogger("helpgate")


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
    commands.add_parser(
        "serve",
        help="run the HTTP API and the SMTP listener",
        description="Run the HTTP API and the SMTP listener in one process, on the embedded store "
        "unless MONGODB_URI is set. Stops cleanly on SIGTERM or Ctrl-C.",
    )
    create = commands.add_parser(
        "create-user", help="create an admin, agent or customer account", description="Create a user account."
    )
    create.add_argument("email")
    create.add_argument("--role", choices=[role.value for role in Role], default=Role.AGENT.value)
    create.add_argument("--name", default="")
    create.add_argument("--password", help="the password (prompted for when left out)")
    cli_mailboxes.add_commands(commands)
    cli_raw.add_commands(commands)
    cli_staff.add_commands(commands)
    cli_data.add_commands(commands)
    cli_suppressions.add_commands(commands)
    return parser


async def _serve(settings: Settings) -> int:
    gateway = Gateway(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await gateway.start()
    print(
        f"helpgate is running: API http://{settings.http_host}:{gateway.http_port}/docs, "
        f"SMTP {settings.smtp_host}:{gateway.smtp.port if gateway.smtp else '?'} "
        f"for {', '.join(settings.support_addresses)}. Ctrl-C stops.",
        flush=True,
    )
    await stop.wait()
    log.info("gateway.stopping reason=signal")
    await gateway.stop()
    return 0


async def _create_user(args: argparse.Namespace, gateway: Gateway) -> int:
    password = args.password
    if password is None:
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Repeat password: "):
            print("helpgate: the passwords differ", file=sys.stderr)
            return 2
    user = await users.create(email=args.email, role=Role(args.role), password=password, name=args.name, source="cli")
    print(f"created {user.role} {user.email} (id {user.id})")
    return 0


async def _with_store(settings: Settings, args: argparse.Namespace) -> int:
    """Commands that work on the store: they join the running gateway's embedded store, if any."""
    gateway = Gateway(settings)
    await gateway.connect_store()
    try:
        if args.command == "create-user":
            return await _create_user(args, gateway)
        if args.command == "quarantine":
            return await cli_raw.list_raw(args)
        if args.command == "replay":
            return await cli_raw.replay(args, gateway.inbound_policy())
        if args.command in ("skills", "staff"):
            return await cli_staff.run(args)
        if args.command == "suppressions":
            return await cli_suppressions.run(args)
        if args.command in ("export", "import", "purge", "recount"):
            return await cli_data.run(args, gateway)
        return await cli_mailboxes.run(args, gateway)
    finally:
        await gateway.stop()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as error:
        print(f"helpgate: invalid settings:\n{error}", file=sys.stderr)
        return 2
    logs.configure(level=args.log_level or settings.log_level, log_format=settings.log_format)
    try:
        if args.command == "serve":
            return asyncio.run(_serve(settings))
        return asyncio.run(_with_store(settings, args))
    except HelpgateError as error:
        print(f"helpgate: {error.detail}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
