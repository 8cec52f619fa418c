"""Benchmark of the parser: µs per message for helpgate's ``mime.parse`` against the bare stdlib, same run.

What it measures, over each corpus (``tests/corpus/*.eml``, and the Zammad test corpus in
``../shared/corpus/zammad-mail/`` when that directory exists; it is third-party data, read here at run time only):

* ``stdlib``: ``email.message_from_bytes(raw, policy=policy.default)``, which is lazy: headers and bodies are
  decoded only when asked for;
* ``stdlib+read``: the same, then every header value, ``walk()`` and every leaf's ``get_content()``: what any
  real use of the message costs at least;
* ``helpgate``: ``mime.parse(raw)``: headers, charset cascade, body choice, HTML sanitising and to-text, quote and
  signature stripping, attachment hashing and sniffing.

The three run interleaved message by message for ``--rounds`` rounds, and the best round counts (the least
disturbed by the machine). The ratio helpgate/stdlib is the figure the issue targets (≤ 3x).
For the Zammad corpus it also reports how many messages parse and how many match the peer's expected
subject, sender address and three body words (``expected.json``).

Run::

    cd /work/main && UV_PYTHON_DOWNLOADS=never uv run python bench/parse.py
    uv run python bench/parse.py --rounds 3          # quicker
    uv run python bench/parse.py --zammad /work/shared/corpus/zammad-mail   # from a git worktree
"""

from __future__ import annotations

import argparse
import email
import email.policy
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from helpgate.inbound import markup, mime

ROOT = Path(__file__).resolve().parent.parent
OWN_CORPUS = ROOT / "tests" / "corpus"
ZAMMAD_CORPUS = ROOT.parent / "shared" / "corpus" / "zammad-mail"
RATIO_TARGET = 3.0
PROGRESS_SECONDS = 3.0


@dataclass
class Timing:
    name: str
    best_us: float = float("inf")


def stdlib(raw: bytes) -> object:
    return email.message_from_bytes(raw, policy=email.policy.default)


def stdlib_read(raw: bytes) -> object:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    for _, value in message.items():
        str(value)
    for part in message.walk():
        if not part.is_multipart():
            try:
                part.get_content()
            except Exception:  # noqa: S112 - the stdlib refuses some real-world parts; skipping is what a reader does
                continue
    return message


def helpgate(raw: bytes) -> object:
    return mime.parse(raw)


def load(directory: Path, pattern: str) -> list[tuple[str, bytes]]:
    return [(path.name, path.read_bytes()) for path in sorted(directory.glob(pattern))]


def measure(messages: list[tuple[str, bytes]], rounds: int, label: str) -> list[Timing]:
    runners: list[tuple[Timing, Callable[[bytes], object]]] = [
        (Timing("stdlib"), stdlib),
        (Timing("stdlib+read"), stdlib_read),
        (Timing("helpgate"), helpgate),
    ]
    for _, raw in messages:  # warm up imports, regex caches, lxml
        for _, run in runners:
            run(raw)
    last_progress = time.monotonic()
    for round_number in range(1, rounds + 1):
        totals = [0.0] * len(runners)
        for _, raw in messages:
            for index, (_, run) in enumerate(runners):
                started = time.perf_counter()
                run(raw)
                totals[index] += time.perf_counter() - started
        for (timing, _), total in zip(runners, totals, strict=True):
            timing.best_us = min(timing.best_us, total / len(messages) * 1e6)
        if time.monotonic() - last_progress > PROGRESS_SECONDS or round_number == rounds:
            last_progress = time.monotonic()
            print(f"  [{label}] round {round_number}/{rounds} done", file=sys.stderr, flush=True)
    return [timing for timing, _ in runners]


def report(label: str, messages: list[tuple[str, bytes]], timings: list[Timing]) -> float:
    size = sum(len(raw) for _, raw in messages) / len(messages) / 1024
    print(f"\n{label}: {len(messages)} messages, {size:.1f} KiB on average")
    base = timings[0].best_us
    for timing in timings:
        print(f"  {timing.name:<12} {timing.best_us:9.0f} µs/message   {timing.best_us / base:5.2f}x stdlib")
    ratio = timings[-1].best_us / base
    verdict = "within" if ratio <= RATIO_TARGET else "OVER"
    print(f"  ratio helpgate/stdlib = {ratio:.2f} ({verdict} the {RATIO_TARGET:.0f}x target)")
    return ratio


def zammad_agreement(messages: list[tuple[str, bytes]], directory: Path = ZAMMAD_CORPUS) -> None:
    """How many parse, and how many match the peer's expected subject, sender and body words."""
    expected = {entry["box"]: entry for entry in json.loads((directory / "expected.json").read_text())}
    parsed = subject_ok = from_ok = body_ok = all_ok = 0
    misses: list[str] = []
    for name, raw in messages:
        want = expected.get(name)
        try:
            mail = mime.parse(raw)
        except mime.MalformedMail:
            misses.append(f"{name}: does not parse")
            continue
        parsed += 1
        if want is None:
            continue
        checks = _agreement(mail, want)
        subject_ok += checks["subject"]
        from_ok += checks["from"]
        body_ok += checks["body"]
        all_ok += all(checks.values())
        if not all(checks.values()):
            misses.append(f"{name}: differs in {', '.join(k for k, v in checks.items() if not v)}")
    total = len(messages)
    print(
        f"  parse: {parsed}/{total}; subject {subject_ok}/{total}, from {from_ok}/{total}, body words {body_ok}/{total}"
    )
    print(f"  all three match: {all_ok}/{total}")
    for miss in misses:
        print(f"    {miss}")


def _agreement(mail: mime.ParsedMail, want: dict[str, object]) -> dict[str, bool]:
    def squeeze(text: object) -> str:
        return " ".join(str(text or "").split())

    words = [str(word) for word in want.get("body_words", []) or []]  # type: ignore[attr-defined]
    # Zammad shows "no visible content" for mail without a readable body; nothing to compare then.
    placeholder = words == ["visible", "content"]
    body = "".join((mail.full_text + (markup.to_text(mail.html) if mail.html else "")).split())
    return {
        "subject": squeeze(want.get("subject")) == squeeze(mail.subject),
        "from": str(want.get("from_email") or "").lower().rstrip(".") == mail.from_email,
        "body": placeholder or all("".join(word.split()) in body for word in words),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--zammad", type=Path, default=ZAMMAD_CORPUS, help="the Zammad corpus (from a git worktree: /work/shared/...)"
    )
    args = parser.parse_args(argv)
    zammad_dir: Path = args.zammad
    own = load(OWN_CORPUS, "*.eml")
    timings = measure(own, args.rounds, "tests/corpus")
    report("tests/corpus", own, timings)
    if (zammad_dir / "expected.json").exists():
        zammad = load(zammad_dir, "*.box")
        timings = measure(zammad, args.rounds, "zammad-mail")
        report("zammad-mail (third-party, read at run time)", zammad, timings)
        zammad_agreement(zammad, zammad_dir)
    else:
        print(f"\n(no {zammad_dir}: the Zammad comparison is skipped)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
