"""Does the time of an answer tell whether an address has an account? Password reset and sign-up, timed.

A whole ``Gateway`` runs in process (embedded store in its child process, HTTP on port 0, no workflows, the
file transport). One ``httpx.AsyncClient`` (keep-alive, one request at a time) sends ``--requests`` rounds
after ``--warmup`` uncounted ones. Each round sends, in turn:

* ``POST /api/auth/password-reset`` for an address with an account (``--accounts`` of them, in turn) and for
  an unknown address;
* ``POST /api/auth/signup`` for an address with an account and for a new one.

The four go in a new random order each round (seeded: every run the same), so that no kind always follows
the same other one. Before each request the work earlier requests left for after their answers
(api/deferred.py) is let finish, so each answer is timed alone. Right after each answer a ``GET /api/auth/me``
without a token (a 401 that touches no store) is timed too: the work a request leaves behind runs on the same
event loop, and this follow-up shows how much of it a client could still feel. The per-account mail limit and
the per-address sign-up limit are lifted for the run, so every request does its whole work.

The report gives p50 and p90 per kind in milliseconds, and the ratios known / unknown of the p50s: close to 1
means the time says nothing about the address (issue 14, finding 11: reset was 150-290 ms against ~9 ms).

    uv run python -m bench.account_timing [--requests 200] [--warmup 20] [--accounts 50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import httpx

from bench.events import gateway_settings, percentile
from helpgate.accounts import account_codes, users
from helpgate.core.rate_limits import Limit
from helpgate.gateway import Gateway
from helpgate.models import Role

PAIRS = {"reset": ("known", "unknown"), "signup": ("known", "new")}
PATHS = {"reset": "/api/auth/password-reset", "signup": "/api/auth/signup"}


async def _timed(api: httpx.AsyncClient, path: str, email: str) -> tuple[float, float]:
    """Milliseconds of the answer, and of a store-free request sent right after it."""
    started = time.perf_counter()
    response = await api.post(path, json={"email": email})
    answered = time.perf_counter()
    follow_up = await api.get("/api/auth/me")
    finished = time.perf_counter()
    if response.status_code != 202 or follow_up.status_code != 401:
        raise RuntimeError(f"{path}: {response.status_code} {response.text}; follow-up {follow_up.status_code}")
    return (answered - started) * 1000, (finished - answered) * 1000


async def run(requests: int, warmup: int, accounts: int) -> dict[str, list[tuple[float, float]]]:
    # Lifted for the bench: every request must do its whole work, not stop at a limit.
    account_codes.RESET_MAILS_PER_ACCOUNT = Limit(10**9, timedelta(minutes=15))
    account_codes.SIGNUPS_PER_IP = Limit(10**9, timedelta(hours=1))
    timings: dict[str, list[tuple[float, float]]] = {
        f"{kind} {which}": [] for kind, pair in PAIRS.items() for which in pair
    }
    with tempfile.TemporaryDirectory(prefix="helpgate-bench-accounts-") as directory:
        gateway = Gateway(gateway_settings(Path(directory)).model_copy(update={"run_workflows": False}))
        await gateway.start()
        try:
            for index in range(accounts):
                await users.create(actor=None, email=f"known-{index}@bench.example", role=Role.CUSTOMER, password=None)
            shuffle = random.Random(14)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.http_port}", timeout=60) as api:
                for round_ in range(warmup + requests):
                    emails = {
                        "reset known": f"known-{round_ % accounts}@bench.example",
                        "reset unknown": f"nobody-{round_}@bench.example",
                        "signup known": f"known-{round_ % accounts}@bench.example",
                        "signup new": f"new-{round_}@bench.example",
                    }
                    order = list(emails.items())
                    shuffle.shuffle(order)  # each kind follows each other kind as often: no order effects
                    for name, email in order:
                        await gateway.deferred.idle()
                        measured = await _timed(api, PATHS[name.split()[0]], email)
                        if round_ >= warmup:
                            timings[name].append(measured)
                await gateway.deferred.idle()
        finally:
            await gateway.stop()
    return timings


def report(timings: dict[str, list[tuple[float, float]]], requests: int) -> None:
    def p(name: str, column: int, fraction: float) -> float:
        return percentile(sorted(row[column] for row in timings[name]), fraction)

    print(f"{requests} rounds; load average {os.getloadavg()[0]:.2f}")
    print(f"{'request':<16}{'answer p50':>12}{'p90':>8}{'follow-up p50':>16}{'p90':>8}   (ms)")
    for name in timings:
        print(
            f"{name:<16}{p(name, 0, 0.5):>12.1f}{p(name, 0, 0.9):>8.1f}{p(name, 1, 0.5):>16.1f}{p(name, 1, 0.9):>8.1f}"
        )
    for kind, (known, other) in PAIRS.items():
        answer = p(f"{kind} {known}", 0, 0.5) / p(f"{kind} {other}", 0, 0.5)
        follow_up = p(f"{kind} {known}", 1, 0.5) / p(f"{kind} {other}", 1, 0.5)
        print(f"{kind:<7} {known} / {other} p50: answer {answer:.2f}, follow-up {follow_up:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--accounts", type=int, default=50)
    arguments = parser.parse_args()
    report(asyncio.run(run(arguments.requests, arguments.warmup, arguments.accounts)), arguments.requests)


if __name__ == "__main__":
    main()
