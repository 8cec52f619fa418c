"""Evaluation of ticket triage: how often each triage source agrees with hand labels on held-out tickets, and how
the learned triage improves with the number of corrections it has.

The data: ``bench/data/triage_tickets.jsonl``, 338 support mails written and labelled by hand for this bench (English,
German, French, Spanish, Dutch, Portuguese and a few Italian and Japanese; one line to several paragraphs, with
signatures, quoted replies and forwards; all nine default categories, the overlapping ones on purpose, three
priorities; two with prompt-injection text), and the skill catalog ``bench/data/skills.json``. Each ticket carries a
fixed ``split``: ``test`` when the SHA-256 of its subject, a newline and its body, read as a number, is divisible by 3
(108 tickets), ``train`` otherwise (230). It was chosen once by that rule and is stored; nothing is drawn at run time.
The keyword tables (tickets/categories.py, workflows/ai/heuristic.py) were tuned on the train split and on a dev set,
never on the held-out split.

The dev set, ``bench/data/triage_dev.jsonl`` (``--split dev``): 240 more mails in the same languages and categories,
written for tuning by a writer who saw neither the keyword tables nor the held-out split (12 train mails, for the
format), with the category and priority the writer meant (``category``, ``priority``) and the priority a second
reader gave without seeing those (``priority_second``; the two agree on 222). Only category and priority are
labelled (no skills), and only the 222 tickets with one agreed priority are scored. Its odd-numbered lines (1, 3,
5, ...) were read while tuning, its even-numbered lines were not: they are the check of what the rules learnt from
the others (``--dev-half``). ``priority_guideline`` (``--dev-priority guideline``, all 240 scored) is the priority a
third reader gave by ``bench/data/triage_priority_guideline.md``, the train split's labelling conventions as
inferred from the train split alone.

What it prints:

* per source, on the held-out split (``--split``): category and priority accuracy (exact match with the label),
  skills precision and recall (micro-averaged over all (ticket, skill) pairs) and the tickets with exactly the
  labelled skills. Sources: ``heuristic`` (the keyword tables), ``learned`` (the classifier trained on the whole train
  split as if every train ticket were a correction: its own category and priority, the keyword tables' skills), and
  Gemini (``GEMINI_API_KEY`` set; ``GEMINI_MODEL``, ``GEMINI_BASE_URL`` honoured) and an OpenAI-compatible endpoint
  (``OPENAI_BASE_URL`` set; ``OPENAI_API_KEY``, ``OPENAI_MODEL`` honoured) through ``triage_ticket``, with the
  tickets that fell back, median/p95 latency and tokens per ticket;
* the learning curve: the learned classifier after 20, 50, 100 and 200 corrections drawn from the train split
  (``random.Random(seed).sample``; seed 0, or the mean of ``--seeds`` seeds), scored on the held-out split, with
  the fields it would answer in an installation (where it beat the keyword tables on the corrections it held out).

Run::

    cd /work/main && uv run python -m bench.triage_eval
    uv run python -m bench.triage_eval --seeds 5 --split train   # the curve over 5 seeds; scores on the train split
    uv run python -m bench.triage_eval --misses            # also list each disagreement
    uv run python -m bench.triage_eval --split dev --dev-half unread   # the dev set's half nobody read
    GEMINI_API_KEY=... uv run python -m bench.triage_eval --concurrency 4
    OPENAI_BASE_URL=http://localhost:11434/v1 OPENAI_MODEL=llama3.2 uv run python -m bench.triage_eval
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from helpgate.workflows.ai.gemini import GeminiTriager, triage_ticket
from helpgate.workflows.ai.heuristic import heuristic_triage
from helpgate.workflows.ai.learned import FIELDS, Example, Learnt, learn, learned_triage
from helpgate.workflows.ai.openai_compat import OpenAITriager
from helpgate.workflows.ai.provider import Provider
from helpgate.workflows.ai.triage import DEFAULT_CATEGORIES, SkillInfo, TicketText, Triage

DATA = Path(__file__).resolve().parent / "data"
CURVE = (20, 50, 100, 200)  # corrections the learned triage has had


@dataclass(frozen=True)
class Labelled:
    ticket: TicketText
    category: str
    priority: str
    skills: frozenset[str] | None  # None: not labelled (the dev set)
    split: str  # "train" or "test", as stored in the data; "dev" for the dev set

    def correction(self) -> Example:
        """As an installation would train on it: the text, and the category and priority an agent left."""
        ticket = self.ticket
        return Example(ticket.number, ticket.subject, ticket.body, self.category, self.priority)


@dataclass
class Score:
    name: str
    total: int = 0
    category_ok: int = 0
    priority_ok: int = 0
    skills_exact: int = 0
    skills_scored: int = 0  # tickets with labelled skills
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
        if item.skills is not None:
            self.skills_scored += 1
            self.skills_exact += got == item.skills
            self.true_positive += len(got & item.skills)
            self.predicted += len(got)
            self.labelled += len(item.skills)
        wrong = [
            f"{what} {have!r}≠{want!r}"
            for what, have, want in (
                ("category", triage.category, item.category),
                ("priority", triage.priority, item.priority),
                ("skills", sorted(got), sorted(got if item.skills is None else item.skills)),
            )
            if have != want
        ]
        if wrong:
            self.misses.append(f"#{item.ticket.number} {item.ticket.subject[:40]!r}: {'; '.join(wrong)}")


def load(
    data: Path, skills: Path, limit: int | None, *, priority: str = "priority"
) -> tuple[list[Labelled], list[SkillInfo]]:
    catalog = [SkillInfo(entry["name"], entry.get("description", "")) for entry in json.loads(skills.read_text())]
    items = []
    for number, line in enumerate(data.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        row = json.loads(line)
        if priority == "priority" and row.get("priority_second", row["priority"]) != row["priority"]:
            continue  # the dev set's two readers disagree on its priority: a judgement call, not scored
        ticket = TicketText(number, row["subject"], row["body"], "customer@example.com")
        labelled = frozenset(row["skills"]) if "skills" in row else None
        items.append(Labelled(ticket, row["category"], row[priority], labelled, row.get("split", "dev")))
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


def trained(corrections: Sequence[Labelled]) -> Learnt:
    learnt = learn([item.correction() for item in corrections], DEFAULT_CATEGORIES)
    assert learnt is not None, "too few corrections to learn from"
    return learnt


def learned_answers(learnt: Learnt, item: Labelled, catalog: Sequence[SkillInfo]) -> Triage:
    """The classifier's category and priority (whether or not it would answer them yet), the keywords' skills."""
    return learned_triage(item.ticket, catalog, DEFAULT_CATEGORIES, learnt.classifier, FIELDS, "bench")


def run_learned(train: Sequence[Labelled], items: Sequence[Labelled], catalog: Sequence[SkillInfo]) -> Score:
    learnt = trained(train)
    score = Score(f"learned ({len(train)} corrections)")
    for item in items:
        score.add(item, learned_answers(learnt, item, catalog))
    return score


def learning_curve(
    train: Sequence[Labelled], items: Sequence[Labelled], catalog: Sequence[SkillInfo], seeds: int
) -> None:
    """The learned classifier after each number of corrections in CURVE, drawn from `train`, scored on `items`."""
    header = f"{'corrections':>11} {'category':>8} {'priority':>8} {'answers (in an installation)':<32} {'train s':>7}"
    print(f"\nlearned triage by corrections ({len(items)} tickets scored, seeds 0-{seeds - 1})")
    print(header + "\n" + "-" * len(header))
    for size in (size for size in CURVE if size <= len(train)):
        category, priority, answers, seconds = [], [], [], []
        for seed in range(seeds):
            started = time.monotonic()
            learnt = trained(random.Random(seed).sample(list(train), size))
            seconds.append(time.monotonic() - started)
            score = Score("curve")
            for item in items:
                score.add(item, learned_answers(learnt, item, catalog))
            category.append(score.category_ok / score.total)
            priority.append(score.priority_ok / score.total)
            answers.append("+".join(learnt.answers) or "none (keywords)")
        said = ", ".join(sorted(set(answers)))
        print(
            f"{size:>11} {statistics.mean(category):>8.1%} {statistics.mean(priority):>8.1%} {said:<32} "
            f"{statistics.mean(seconds):>7.2f}"
        )


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
            f"{ratio(score.true_positive, score.labelled):>8} {ratio(score.skills_exact, score.skills_scored):>6} "
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
    parser.add_argument("--dev-data", type=Path, default=DATA / "triage_dev.jsonl")
    parser.add_argument(
        "--dev-half", choices=("read", "unread"), default=None, help="with --split dev: only the lines read, or not"
    )
    parser.add_argument(
        "--dev-priority",
        choices=("writer", "guideline"),
        default="writer",
        help="with --split dev: the priorities the writer and a second reader agree on, or all 240 by the guideline",
    )
    parser.add_argument("--split", choices=("test", "train", "all", "dev"), default="test", help="the tickets scored")
    parser.add_argument("--seeds", type=int, default=1, help="the learning curve's mean over seeds 0..N-1")
    args = parser.parse_args(argv)

    labelled, catalog = load(args.data, args.skills, args.limit)
    if args.split == "dev":
        column = "priority" if args.dev_priority == "writer" else "priority_guideline"
        labelled += load(args.dev_data, args.skills, args.limit, priority=column)[0]
    items = [item for item in labelled if args.split == item.split or (args.split == "all" and item.split != "dev")]
    if args.dev_half is not None:
        items = [item for item in items if (item.ticket.number % 2 == 1) == (args.dev_half == "read")]
    train = [item for item in labelled if item.split == "train"]
    print(f"{len(items)} tickets scored ({args.split}), {len(catalog)} skills in the catalog", file=sys.stderr)
    scores = [run_heuristic(items, catalog), run_learned(train, items, catalog)]
    for triager in configured_triagers(args):
        scores.append(asyncio.run(run_ai(triager, items, catalog, args)))
    report(scores)
    learning_curve(train, items, catalog, max(1, args.seeds))
    if args.misses:
        for score in scores:
            print(f"\n{score.name}: {len(score.misses)} tickets with a disagreement")
            for miss in score.misses:
                print(f"  {miss}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
