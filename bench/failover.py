"""Failover at full size: two `helpgate serve` processes on one embedded store and one Dovecot, 500 mails by
SMTP (to both) and 500 into IMAP, the instance polling the mailbox killed with SIGKILL half-way.

Runs the harness of tests/inbound/test_failover.py (tests/failover.py) and reports the time until every mail
was a ticket and every acknowledgement had left, tickets, mail lost or duplicated, acknowledgements received
twice or never, and the load. `--baseline` first runs the same traffic with nobody killed, for comparison.

    uv run python -m bench.failover [--smtp 500] [--imap 500] [--rate 4] [--baseline]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time

from tests.failover import Plan, Report, run

from bench.scratch import scratch


def _progress(line: str) -> None:
    print(f"  {time.strftime('%H:%M:%S')} {line}", file=sys.stderr, flush=True)


def _load() -> str:
    return "load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


async def _one(plan: Plan, label: str) -> Report:
    """One run on a fresh embedded store (its own process, which outlives the killed instance) and Dovecot."""
    with scratch("helpgate-bench-failover-") as place:
        _progress(f"{label}: {_load()}")
        report = await run(plan, store_uri=place.store_uri, dovecot=place.dovecot, root=place.root, progress=_progress)
        _progress(f"{label} done: {_load()}")
        return report


def _print(label: str, report: Report) -> None:
    print(f"{label}:")
    for line in report.lines():
        print(f"  {line}")
    print(f"  end to end: {report.tickets / report.seconds:.2f} tickets/s")
    for name, items in (("lost", report.lost), ("duplicated", report.duplicated), ("sent twice", report.sent_twice)):
        if items:
            print(f"  {name}: {', '.join(items[:10])}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smtp", type=int, default=500)
    parser.add_argument("--imap", type=int, default=500)
    parser.add_argument("--rate", type=float, default=4.0, help="mails sent per second (0: as fast as possible)")
    parser.add_argument("--baseline", action="store_true", help="first run the same traffic without a kill")
    args = parser.parse_args()
    plan = Plan(smtp_mails=args.smtp, imap_mails=args.imap, rate=args.rate, settle_seconds=3600.0)
    results: list[tuple[str, Report]] = []
    if args.baseline:
        results.append(("baseline, nobody killed", await _one(Plan(**{**plan.__dict__, "kill_at": None}), "baseline")))
    results.append(("one instance killed half-way", await _one(plan, "failover")))
    print(f"{args.smtp} mails by SMTP + {args.imap} by IMAP at {args.rate:g}/s, 2 instances, embedded store; {_load()}")
    for label, report in results:
        _print(label, report)


if __name__ == "__main__":
    asyncio.run(main())
