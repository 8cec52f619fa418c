"""API latency: the agent's queue and one ticket over HTTP, next to a bare FastAPI route in the same run.

A whole ``Gateway`` runs in process (embedded store in its child process, HTTP on port 0, no workflows, so
the seeded tickets are not triaged meanwhile). The store is seeded with ``--tickets`` tickets the way
``bench/store.py`` does it (``TicketFactory`` and ``fill``: ``tickets.open_ticket`` with a ~2 KB first
message, over 20 customers, with a progress line every few seconds). Beside the gateway, on the same event
loop and with the same uvicorn setup (``helpgate.gateway``'s server class and ``bind_tcp``, the same
``uvicorn.Config`` options), a bare FastAPI app answers ``GET /bare`` with a constant.

One ``httpx.AsyncClient`` (keep-alive, one request at a time) then sends ``--requests`` rounds, after
``--warmup`` rounds that are not counted. Each round sends, in turn:

* ``GET /bare`` (the baseline: uvicorn, FastAPI routing and JSON, httpx, the loop);
* ``GET /api/auth/me`` as the agent (the baseline plus the bearer token check and one user read);
* ``GET /api/tickets`` as the agent (the first page of 25, newest first, with the total);
* ``GET /api/tickets/{n}`` as the agent, ``n`` drawn at random among the seeded tickets.

Interleaving the routes round by round means each one sees the same load on this shared machine; the
report gives p50 and p99 per route and their ratio to the bare route's, with the load average.

``--data-dir DIR`` keeps the store between runs: a second run seeds only what is missing.

    uv run python -m bench.api [--tickets 10000] [--requests 1000] [--warmup 50] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from bench.events import gateway_settings, percentile
from bench.store import TicketFactory, fill, say
from helpgate.accounts import users
from helpgate.gateway import Gateway, HttpServer, bind_tcp
from helpgate.models import Role, Ticket, User

HOST = "127.0.0.1"
AGENT_EMAIL = "agent@bench.example.com"
AGENT_PASSWORD = "bench-agent-password-7"  # noqa: S105 - a throwaway account in a temp store
CUSTOMERS = 20
ROUTES = ("bare", "me", "list", "get")
LABELS = {
    "bare": "GET /bare (constant)",
    "me": "GET /api/auth/me",
    "list": "GET /api/tickets",
    "get": "GET /api/tickets/{n}",
}


@dataclass
class Timings:
    """Milliseconds per route, in the order measured."""

    ms: dict[str, list[float]] = field(default_factory=lambda: {route: [] for route in ROUTES})

    def p(self, route: str, fraction: float) -> float:
        return percentile(sorted(self.ms[route]), fraction)


def bare_app() -> FastAPI:
    app = FastAPI()

    @app.get("/bare")
    async def bare() -> dict[str, str]:
        return {"status": "ok"}

    return app


class BareServer:
    """The bare app behind the gateway's own uvicorn setup, on a free port of this loop."""

    def __init__(self) -> None:
        self.socket = bind_tcp(HOST, 0, "http")
        self.port = int(self.socket.getsockname()[1])
        self.server = HttpServer(uvicorn.Config(bare_app(), log_config=None, access_log=False, lifespan="off"))
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self.server.serve(sockets=[self.socket]), name="bare-http")
        while not self.server.started:
            if self.task.done():
                self.task.result()
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task is not None:
            await asyncio.gather(self.task, return_exceptions=True)


async def seed(target: int, concurrency: int) -> int:
    """An agent who can log in, and `target` tickets in the store (only what is missing is opened)."""
    if await users.get_by_email(AGENT_EMAIL) is None:
        await users.create(actor=None, email=AGENT_EMAIL, role=Role.AGENT, password=AGENT_PASSWORD, name="Bench Agent")
    customers: list[User] = [
        await users.get_or_create_customer(email=f"customer{index}@example.com", name=f"Customer {index}")
        for index in range(CUSTOMERS)
    ]
    existing = int(await Ticket.get_pymongo_collection().count_documents({}))
    say(f"[seed] {existing} tickets in the store, {target} wanted")
    factory = TicketFactory(customers, seed=existing)
    factory.opened = existing
    await fill(factory, target, concurrency, deadline=float("inf"))
    return max(existing, target)


async def timed(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> float:
    started = time.perf_counter()
    response = await client.get(url, headers=headers)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"GET {url}: {response.status_code} {response.text[:200]}")
    return elapsed


async def measure(gateway_port: int, bare_port: int, tickets: int, args: argparse.Namespace) -> Timings:
    api = f"http://{HOST}:{gateway_port}"
    rng = random.Random(42)
    timings = Timings()
    async with httpx.AsyncClient(timeout=60) as client:
        login = await client.post(f"{api}/api/auth/login", json={"email": AGENT_EMAIL, "password": AGENT_PASSWORD})
        login.raise_for_status()
        agent = {"Authorization": f"Bearer {login.json()['access_token']}"}
        urls = {
            "bare": lambda: f"http://{HOST}:{bare_port}/bare",
            "me": lambda: f"{api}/api/auth/me",
            "list": lambda: f"{api}/api/tickets",
            "get": lambda: f"{api}/api/tickets/{rng.randint(1, tickets)}",
        }
        total = args.warmup + args.requests
        say(f"[measure] {args.warmup} warm-up rounds, then {args.requests} rounds of {', '.join(ROUTES)}")
        last_report = time.monotonic()
        for index in range(total):
            for route in ROUTES:
                ms = await timed(client, urls[route](), agent if route != "bare" else {})
                if index >= args.warmup:
                    timings.ms[route].append(ms)
            if time.monotonic() - last_report >= 5.0:
                last_report = time.monotonic()
                done = max(0, index + 1 - args.warmup)
                say(f"  ... round {index + 1}/{total}, p50 so far: " + _p50s(timings) if done else "  ... warming up")
    return timings


def _p50s(timings: Timings) -> str:
    return ", ".join(f"{route} {timings.p(route, 0.5):.1f} ms" for route in ROUTES)


def report(timings: Timings, tickets: int, args: argparse.Namespace, loads: Sequence[tuple[float, ...]]) -> None:
    bare50, bare99 = timings.p("bare", 0.5), timings.p("bare", 0.99)
    say("")
    say(f"== API latency, {tickets} tickets in the embedded store, {args.requests} requests per route ==")
    say(f"{'route':<24} {'p50 ms':>8} {'p99 ms':>8} {'p50 / bare':>11} {'p99 / bare':>11}")
    for route in ROUTES:
        p50, p99 = timings.p(route, 0.5), timings.p(route, 0.99)
        say(f"{LABELS[route]:<24} {p50:>8.1f} {p99:>8.1f} {p50 / bare50:>11.1f} {p99 / bare99:>11.1f}")
    before, after = loads
    say(
        f"load average (1/5/15 min) before: {before[0]:.2f}/{before[1]:.2f}/{before[2]:.2f}, "
        f"after: {after[0]:.2f}/{after[1]:.2f}/{after[2]:.2f} on {os.cpu_count()} cores"
    )
    say("same client, same loop, routes interleaved round by round; one request at a time")


async def run(args: argparse.Namespace, root: Path) -> None:
    settings = gateway_settings(root).model_copy(update={"run_workflows": False, "access_token_minutes": 24 * 60})
    gateway = Gateway(settings)
    await gateway.start()
    bare = BareServer()
    try:
        await bare.start()
        say(f"[start] gateway http {gateway.http_port}, bare app {bare.port}, store in {settings.data_dir}")
        tickets = await seed(args.tickets, args.fill_concurrency)
        loads = [os.getloadavg()]
        timings = await measure(gateway.http_port, bare.port, tickets, args)
        loads.append(os.getloadavg())
    finally:
        await bare.stop()
        await gateway.stop()
    report(timings, tickets, args, loads)


def parse_args(
    argv: Sequence[str] | None, *, description: str | None = __doc__, requests: int = 1000, warmup: int = 50
) -> argparse.Namespace:
    """The options of this bench and of bench/console.py (which passes its own description and defaults)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=10_000, help="tickets in the store when measuring")
    parser.add_argument("--requests", type=int, default=requests, help="measured requests per route")
    parser.add_argument("--warmup", type=int, default=warmup, help="rounds sent first and not counted")
    parser.add_argument("--fill-concurrency", type=int, default=4, help="open_ticket calls at a time when seeding")
    parser.add_argument("--data-dir", type=Path, help="keep the store here and reuse it (default: a temp dir)")
    args = parser.parse_args(argv)
    if args.tickets < 1 or args.requests < 1 or args.warmup < 0 or args.fill_concurrency < 1:
        parser.error("--tickets, --requests and --fill-concurrency must be >= 1, --warmup >= 0")
    return args


def run_in_store(
    run: Callable[[argparse.Namespace, Path], Coroutine[Any, Any, None]], args: argparse.Namespace, prefix: str
) -> None:
    """`run` on the store in `--data-dir`, kept, or in a temporary directory named from `prefix`."""
    if args.data_dir is not None:
        asyncio.run(run(args, args.data_dir.resolve()))
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as directory:
        asyncio.run(run(args, Path(directory)))


def main(argv: Sequence[str] | None = None) -> None:
    run_in_store(run, parse_args(argv), "helpgate-bench-api-")


if __name__ == "__main__":
    main()
