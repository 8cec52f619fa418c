"""The console against the API it stands on: the queue page and a ticket page next to the JSON calls that
fetch the same data, in one run, at ``--tickets`` tickets on the embedded store; and the bytes of a first
page load (the queue with its stylesheet, scripts and icon, as a browser with an empty cache fetches them).

The gateway and the seeding are bench/api.py's (a whole ``Gateway`` in process, no workflows; tickets opened
with ``tickets.open_ticket``, ~2 KB first messages over 20 customers). The agent logs in once over the API
(Bearer) and once with the console's form (cookies). Each round then sends, in turn, one request at a time:

* ``GET /api/tickets`` and ``GET /`` (the queue's default view: all open tickets, 25 a page, with the counts
  of every view);
* ``GET /api/tickets/{n}`` and ``GET /tickets/{n}``, ``n`` drawn at random among the seeded tickets (the
  same ``n`` for both).

The report gives p50 and p99 per route and the console's ratio to its API call (the issue's bound: 2x).

    uv run python -m bench.console [--tickets 10000] [--requests 500] [--warmup 30] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from bench.api import AGENT_EMAIL, AGENT_PASSWORD, HOST, Timings, parse_args, run_in_store, seed, timed
from bench.events import gateway_settings
from bench.store import say
from helpgate.gateway import Gateway

ROUTES = ("api list", "console queue", "api ticket", "console ticket")
PAIRS = (("console queue", "api list"), ("console ticket", "api ticket"))
_ASSETS = re.compile(r'(?:src|href)="(/console/static/[^"]+)"')


async def first_load(client: httpx.AsyncClient, base: str) -> tuple[int, dict[str, int]]:
    """Bytes on the wire (headers aside) of the queue page and every file it refers to, uncompressed as served."""
    page = await client.get(f"{base}/")
    page.raise_for_status()
    sizes = {"/ (the queue)": len(page.content)}
    for path in dict.fromkeys(_ASSETS.findall(page.text)):
        asset = await client.get(f"{base}{path}")
        asset.raise_for_status()
        sizes[path] = len(asset.content)
    return sum(sizes.values()), sizes


async def measure(port: int, tickets: int, args: argparse.Namespace) -> tuple[Timings, int, dict[str, int]]:
    base = f"http://{HOST}:{port}"
    rng = random.Random(42)
    timings = Timings(ms={route: [] for route in ROUTES})
    async with (
        httpx.AsyncClient(timeout=60) as api,
        httpx.AsyncClient(timeout=60, headers={"Sec-Fetch-Site": "same-origin"}) as browser,
    ):
        login = await api.post(f"{base}/api/auth/login", json={"email": AGENT_EMAIL, "password": AGENT_PASSWORD})
        login.raise_for_status()
        agent = {"Authorization": f"Bearer {login.json()['access_token']}"}
        form = await browser.post(f"{base}/login", data={"email": AGENT_EMAIL, "password": AGENT_PASSWORD})
        if form.status_code != 303:
            raise RuntimeError(f"console login: {form.status_code}")
        total_bytes, sizes = await first_load(browser, base)
        total = args.warmup + args.requests
        say(f"[measure] {args.warmup} warm-up rounds, then {args.requests} rounds of {', '.join(ROUTES)}")
        last_report = time.monotonic()
        for index in range(total):
            number = rng.randint(1, tickets)
            samples = {
                "api list": await timed(api, f"{base}/api/tickets", agent),
                "console queue": await timed(browser, f"{base}/", {}),
                "api ticket": await timed(api, f"{base}/api/tickets/{number}", agent),
                "console ticket": await timed(browser, f"{base}/tickets/{number}", {}),
            }
            if index >= args.warmup:
                for route, ms in samples.items():
                    timings.ms[route].append(ms)
            if time.monotonic() - last_report >= 5.0:
                last_report = time.monotonic()
                say(f"  ... round {index + 1}/{total}")
    return timings, total_bytes, sizes


def report(
    timings: Timings,
    tickets: int,
    args: argparse.Namespace,
    first: tuple[int, dict[str, int]],
    loads: Sequence[tuple[float, ...]],
) -> None:
    say("")
    say(f"== Console against the API, {tickets} tickets in the embedded store, {args.requests} requests per route ==")
    say(f"{'route':<16} {'p50 ms':>8} {'p99 ms':>8}")
    for route in ROUTES:
        say(f"{route:<16} {timings.p(route, 0.5):>8.1f} {timings.p(route, 0.99):>8.1f}")
    for console, api in PAIRS:
        p50 = timings.p(console, 0.5) / timings.p(api, 0.5)
        p99 = timings.p(console, 0.99) / timings.p(api, 0.99)
        say(f"{console} / {api}: p50 {p50:.2f}x, p99 {p99:.2f}x (bound: 2x)")
    total, sizes = first
    say(
        f"first page load: {total / 1024:.1f} KiB uncompressed (bound: 150 KB) = "
        + ", ".join(f"{path} {size / 1024:.1f}" for path, size in sizes.items())
    )
    before, after = loads
    say(
        f"load average (1/5/15 min) before: {before[0]:.2f}/{before[1]:.2f}/{before[2]:.2f}, "
        f"after: {after[0]:.2f}/{after[1]:.2f}/{after[2]:.2f} on {os.cpu_count()} cores"
    )


async def run(args: argparse.Namespace, root: Path) -> None:
    settings = gateway_settings(root).model_copy(update={"run_workflows": False, "access_token_minutes": 24 * 60})
    gateway = Gateway(settings)
    await gateway.start()
    try:
        say(f"[start] gateway http {gateway.http_port}, store in {settings.data_dir}")
        tickets = await seed(args.tickets, args.fill_concurrency)
        loads = [os.getloadavg()]
        timings, total, sizes = await measure(gateway.http_port, tickets, args)
        loads.append(os.getloadavg())
    finally:
        await gateway.stop()
    report(timings, tickets, args, (total, sizes), loads)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv, description=__doc__, requests=500, warmup=30)
    run_in_store(run, args, "helpgate-bench-console-")


if __name__ == "__main__":
    main()
