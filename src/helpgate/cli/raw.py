"""`helpgate quarantine` and `helpgate replay`: look at stored raw mail and run the pipeline on it again."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from typing import TYPE_CHECKING, Any

from beanie import PydanticObjectId

from helpgate.core.errors import InvalidInput
from helpgate.inbound import raw_messages
from helpgate.models import RawMessage, RawStatus

if TYPE_CHECKING:
    from helpgate.installation import Installation

COMMANDS = ("quarantine", "replay")

REPLAYABLE = (RawStatus.QUARANTINED, RawStatus.IGNORED, RawStatus.RECEIVED)
PURGED = "purged by retention"


def add_commands(commands: Any) -> None:
    listing = commands.add_parser(
        "quarantine", help="list quarantined mail with the reason", description="List stored mail by status."
    )
    listing.add_argument("--status", choices=[s.value for s in RawStatus], default=RawStatus.QUARANTINED.value)
    listing.add_argument("--limit", type=int, default=100)
    replay = commands.add_parser(
        "replay",
        help="run the inbound pipeline again on stored mail",
        description="Run the inbound pipeline again, e.g. after a fix. Safe to repeat: a message that "
        "already reached its ticket is recorded as a duplicate, never added twice.",
    )
    replay.add_argument("ids", nargs="*", help="raw message ids (default: every message with --status)")
    replay.add_argument("--status", choices=[s.value for s in REPLAYABLE], default=RawStatus.QUARANTINED.value)


async def run(args: argparse.Namespace, installation: Installation) -> int:
    if args.command == "quarantine":
        return await list_raw(args)
    return await replay(args, installation)


async def list_raw(args: argparse.Namespace) -> int:
    found = await raw_messages.with_status(RawStatus(args.status), limit=args.limit)
    for raw in found:
        print(f"{raw.id}  {raw.received_at:%Y-%m-%d %H:%M:%S}  {raw.source:<24} {raw.size:>9} B  {raw.reason or ''}")
    print(f"{len(found)} {args.status} message(s)", file=sys.stderr)
    return 0


async def _selected(args: argparse.Namespace) -> list[RawMessage]:
    if not args.ids:
        return await raw_messages.with_status(RawStatus(args.status))
    chosen: list[RawMessage] = []
    for raw_id in args.ids:
        try:
            raw = await raw_messages.get(PydanticObjectId(raw_id))
        except Exception:
            raise InvalidInput(f"not a raw message id: {raw_id}") from None
        if raw is None:
            raise InvalidInput(f"no raw message {raw_id}")
        chosen.append(raw)
    return chosen


async def replay(args: argparse.Namespace, installation: Installation) -> int:
    from helpgate.inbound import pipeline

    policy = installation.inbound_policy()
    chosen = await _selected(args)
    outcomes: Counter[str] = Counter()
    for index, raw in enumerate(chosen, start=1):
        if raw.purged_at is not None:  # its bytes are gone: replaying would only quarantine it
            outcomes[PURGED] += 1
            note = raw_messages.purged_note(raw.purged_at)
            print(f"[{index}/{len(chosen)}] {raw.id}: not replayed, its bytes were {note}", flush=True)
            continue
        status = await pipeline.process(raw, policy=policy)
        outcomes[status] += 1
        print(f"[{index}/{len(chosen)}] {raw.id}: {status}" + (f" ({raw.reason})" if raw.reason else ""), flush=True)
    summary = ", ".join(f"{count} {status}" for status, count in sorted(outcomes.items())) or "nothing to replay"
    print(f"replayed {len(chosen)}: {summary}")
    return 1 if outcomes[RawStatus.QUARANTINED] or (args.ids and outcomes[PURGED]) else 0
