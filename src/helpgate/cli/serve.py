"""`helpgate serve`: the HTTP API, the SMTP listener, the IMAP pollers and the workers, in one process."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from helpgate.core.settings import Settings

log = logging.getLogger("helpgate")

COMMANDS = ("serve",)


def add_commands(commands: Any) -> None:
    commands.add_parser(
        "serve",
        help="run the HTTP API and the SMTP listener",
        description="Run the HTTP API and the SMTP listener in one process, on the embedded store "
        "unless MONGODB_URI is set. Stops cleanly on SIGTERM or Ctrl-C.",
    )


async def run(settings: Settings) -> int:
    from helpgate.gateway import Gateway

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
