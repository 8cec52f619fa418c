"""Evaluation of ticket triage: how often the heuristic (and the AIs configured) agrees with hand labels.

What it measures, over ``bench/data/triage_tickets.jsonl`` (support tickets written and labelled by hand for
this bench: all seven categories, three priorities, a few non-English, two with prompt-injection text) and the
skill catalog ``bench/data/skills.json``:

* category accuracy and priority accuracy (exact match with the label);
* skills precision and recall, micro-averaged over all (ticket, skill) pairs, and how many tickets got exactly
  the labelled skill set;
* for Gemini (``GEMINI_API_KEY`` set; ``GEMINI_MODEL``, ``GEMINI_BASE_URL`` honoured) and an OpenAI-compatible
  endpoint (``OPENAI_BASE_URL`` set; ``OPENAI_API_KEY``, ``OPENAI_MODEL`` honoured): the same through
  ``triage_ticket``, plus how many tickets fell back to the heuristic, median/p95 latency and tokens per ticket.

All triagers appear in ONE table. The labels are the test: the heuristic's keyword tables are not tuned to them.

Run::

    cd /work/main && uv run python -m bench.triage_eval
    uv run python -m bench.triage_eval --misses            # also list each disagreement
    GEMINI_API_KEY=... uv run python -m bench.triage_eval --concurrency 4
    OPENAI_BASE_URL=http://localhost:11434/v1 OPENAI_MODEL=llama3.2 uv run python -m bench.triage_eval
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from helpgate.workflows.ai.gemini import GeminiTriager, triage_ticket
from helpgate.workflows.ai.heuristic import heuristic_triage
from helpgate.workflows.ai.openai_compat import OpenAITriager
from helpgate.workflows.ai.provider import Provider
from helpgate.workflows.ai.triage import SkillInfo, TicketText, Triage

DATA = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class Labelled:
    ticket: TicketText
    category: str
    priority: str
    skills: frozenset[str]


@dataclass
class Score:
    name: str
    total: int = 0
    category_ok: int = 0
    priority_ok: int = 0
    skills_exact: int = 0
    true_positive: int = 0
    predicted: int = 0
    labelled: int = 0
    fallbacks: int = 0
    latencies_ms: list[int] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)

    def add(self, item: Labelled, triage: Triage) -> None:
        got = frozenset(triage.skills)
        self.total += 1
        self.category_ok += triage.category == item.category
        self.priority_ok += triage.priority == item.priority
        self.skills_exact += got == item.skills
        self.true_positive += len(got & item.skills)
        self.predicted += len(got)
        self.labelled += len(item.skills)
        wrong = [
            f"{what} {have!r}≠{want!r}"
            for what, have, want in (
                ("category", triage.category, item.category),
                ("priority", triage.priority, item.priority),
                ("skills", sorted(got), sorted(item.skills)),
            )
            if have != want
        ]
        if wrong:
            self.misses.append(f"#{item.ticket.number} {item.ticket.subject[:40]!r}: {'; '.join(wrong)}")


def load(data: Path, skills: Path, limit: int | None) -> tuple[list[Labelled], list[SkillInfo]]:
    catalog = [SkillInfo(entry["name"], entry.get("description", "")) for entry in json.loads(skills.read_text())]
    items = []
    for number, line in enumerate(data.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        row = json.loads(line)
        ticket = TicketText(number, row["subject"], row["body"], "customer@example.com")
        items.append(Labelled(ticket, row["category"], row["priority"], frozenset(row["skills"])))
    return items[:limit], catalog


def progress(name: str, done: int, total: int) -> None:
    if done == total or done % 10 == 0:
        print(f"  [{name}] {done}/{total}", file=sys.stderr, flush=True)


def run_heuristic(items: Sequence[Labelled], catalog: Sequence[SkillInfo]) -> Score:
    score = Score("heuristic")
    for done, item in enumerate(items, start=1):
        score.add(item, heuristic_triage(item.ticket, catalog))
        progress(score.name, done, len(items))
    return score


def configured_triagers(args: argparse.Namespace) -> list[Provider]:
    triagers: list[Provider] = []
    if os.environ.get("GEMINI_API_KEY"):
        triagers.append(
            GeminiTriager(
                os.environ["GEMINI_API_KEY"],
                args.model,
                timeout_seconds=args.timeout,
                attempts=args.attempts,
                base_url=os.environ.get("GEMINI_BASE_URL") or None,
            )
        )
    else:
        print("(GEMINI_API_KEY unset: Gemini is not evaluated)", file=sys.stderr)
    if os.environ.get("OPENAI_BASE_URL"):
        triagers.append(
            OpenAITriager(
                os.environ.get("OPENAI_API_KEY") or None,
                args.openai_model,
                base_url=os.environ["OPENAI_BASE_URL"],
                timeout_seconds=args.timeout,
                attempts=args.attempts,
            )
        )
    else:
        print("(OPENAI_BASE_URL unset: no OpenAI-compatible AI is evaluated)", file=sys.stderr)
    return triagers


async def run_ai(
    triager: Provider, items: Sequence[Labelled], catalog: Sequence[SkillInfo], args: argparse.Namespace
) -> Score:
    score = Score(f"{triager.source} ({triager.model})")
    gate = asyncio.Semaphore(args.concurrency)

    async def one(item: Labelled) -> None:
        async with gate:
            outcome = await triage_ticket(item.ticket, catalog, triager)
        score.add(item, outcome.triage)
        score.fallbacks += outcome.source != triager.source
        if outcome.source == triager.source:
            score.latencies_ms.append(outcome.latency_ms)
            score.tokens.append((outcome.input_tokens or 0) + (outcome.output_tokens or 0))
        progress(score.name, score.total, len(items))

    try:
        await asyncio.gather(*(one(item) for item in items))
    finally:
        await triager.aclose()
    return score


def ratio(part: int, whole: int) -> str:
    return f"{part / whole:6.1%}" if whole else "     -"


def report(scores: Sequence[Score]) -> None:
    header = (
        f"{'triager':<28} {'n':>3} {'category':>8} {'priority':>8} {'skill P':>8} {'skill R':>8} {'exact':>6} "
        f"{'fallback':>8} {'p50 ms':>7} {'p95 ms':>7} {'tokens':>6}"
    )
    print("\n" + header + "\n" + "-" * len(header))
    for score in scores:
        latencies = sorted(score.latencies_ms)
        p50 = f"{statistics.median(latencies):7.0f}" if latencies else "      -"
        p95 = f"{latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))]:7d}" if latencies else "      -"
        tokens = f"{statistics.mean(score.tokens):6.0f}" if score.tokens else "     -"
        print(
            f"{score.name:<28} {score.total:>3} {ratio(score.category_ok, score.total):>8} "
            f"{ratio(score.priority_ok, score.total):>8} {ratio(score.true_positive, score.predicted):>8} "
            f"{ratio(score.true_positive, score.labelled):>8} {ratio(score.skills_exact, score.total):>6} "
            f"{score.fallbacks:>8} {p50} {p95} {tokens}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA / "triage_tickets.jsonl")
    parser.add_argument("--skills", type=Path, default=DATA / "skills.json")
    parser.add_argument("--limit", type=int, default=None, help="only the first N tickets")
    parser.add_argument("--model", default=os.environ.get("GEMINI_MODEL", "gemini-2.5-flash"))
    parser.add_argument("--openai-model", default=os.environ.get("OPENAI_MODEL", "gpt-4o-mini"))
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per AI call")
    parser.add_argument("--attempts", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=2, help="AI calls in flight")
    parser.add_argument("--misses", action="store_true", help="list every ticket a triager got wrong")
    args = parser.parse_args(argv)

    items, catalog = load(args.data, args.skills, args.limit)
    print(f"{len(items)} labelled tickets, {len(catalog)} skills in the catalog", file=sys.stderr)
    scores = [run_heuristic(items, catalog)]
    for triager in configured_triagers(args):
        scores.append(asyncio.run(run_ai(triager, items, catalog, args)))
    report(scores)
    if args.misses:
        for score in scores:
            print(f"\n{score.name}: {len(score.misses)} tickets with a disagreement")
            for miss in score.misses:
                print(f"  {miss}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
