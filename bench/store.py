"""Benchmark of the embedded store: ticket insert rate and ticket-list page times as the store grows.

What it measures, on the embedded store exactly as ``helpgate serve`` starts it (``EmbeddedStore`` in a temp
data dir, Beanie initialised with ``ALL_MODELS`` through ``make_client``/``init_models``):

* at each size checkpoint (``--sizes``, default 0,10000,50000 tickets):
  - insert rate: tickets/s over a window of ``--window`` sequential ``tickets.open_ticket`` calls (the ticket,
    its ~2 KB first message, the counters and the ``ticket/created`` outbox event), and its ratio to the rate
    at the first size (the target: >= 0.5). The machine is shared and its load drifts over a long run, so by
    default the window alternates, 25 tickets at a time, with the same calls on a fresh empty store (a second
    ``EmbeddedStore``); "paired" is the ratio to that rate, measured under the same load (``--no-control``);
  - the first page of the ticket list as an agent sees it and as a customer sees it, the agent's page 10
    (``ticket_list.list_tickets``, page_size 25), and one ``tickets.get_ticket``: median of ``--repeat`` runs;
* the insert rate of mongoeco's stock SQLite engine against helpgate's patched one
  (``db.flat_insert_engine_class``) on plain 2 KB documents at ``--engine-sizes`` (default 0,2000) documents,
  through mongoeco's wire server run in-process and pymongo's ``insert_one``. Both collections are pre-filled
  with the patched engine (``insert_many``), so only the measured window runs on the engine under test. The
  patched engine also syncs every commit (``PRAGMA synchronous=FULL``), so the comparison favours stock.

Filling between checkpoints runs ``--fill-concurrency`` ``open_ticket`` calls at a time; the measurement
windows are sequential. A progress line is printed every few seconds. When filling takes longer than
``--budget`` seconds in all, the bench measures at the size reached and skips the larger sizes.

Run::

    cd /work/main && UV_PYTHON_DOWNLOADS=never uv run python bench/store.py
    uv run python bench/store.py --sizes 0,2000 --engine-sizes 0,1000 --window 100   # quick
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from beanie import init_beanie
from bson import ObjectId
from pymongo import AsyncMongoClient

from helpgate.accounts import users
from helpgate.core import db
from helpgate.models import ALL_MODELS, Direction, Role, User
from helpgate.tickets import ticket_list, tickets
from helpgate.tickets.tickets import NewMessage

DATABASE = "helpgate"
MAILBOX = "support@localhost"
PAGE_SIZE = 25
PROGRESS_SECONDS = 5.0
TEXT_BYTES = 2048
AGENT_PAGE_TARGET_MS = 100.0
INSERT_RATIO_TARGET = 0.5
CONTROL_CHUNK = 25  # tickets per turn when a window alternates with an empty store

WORDS = [
    "printer",
    "invoice",
    "login",
    "password",
    "refund",
    "order",
    "delivery",
    "broken",
    "screen",
    "account",
    "error",
    "please",
    "help",
    "urgent",
    "since",
    "yesterday",
    "update",
    "version",
    "install",
    "connection",
    "network",
    "billing",
    "subscription",
    "cancel",
]


def say(text: str) -> None:
    print(text, flush=True)


def sizes_option(value: str) -> list[int]:
    sizes = sorted({int(part) for part in value.split(",") if part.strip()})
    if not sizes or sizes[0] < 0:
        raise argparse.ArgumentTypeError("a comma-separated list of sizes >= 0")
    return sizes


def filler_text(rng: random.Random, size: int) -> str:
    words: list[str] = []
    length = 0
    while length < size:
        word = rng.choice(WORDS)
        words.append(word)
        length += len(word) + 1
    return " ".join(words)[:size]


@dataclass
class Checkpoint:
    size: int
    insert_rate: float
    agent_page1_ms: float
    agent_page10_ms: float
    customer_page1_ms: float
    customer_tickets: int
    get_ms: float
    control_rate: float | None = None  # an empty store's rate, in chunks alternating with insert_rate's


@dataclass
class EngineRate:
    engine: str
    documents: int
    rate: float


class Opener(Protocol):
    """What `fill` drives: `open_one` adds one ticket, `opened` counts them."""

    opened: int

    async def open_one(self) -> None: ...


class TicketFactory:
    """Opens tickets the way the inbound pipeline does, for a small pool of customers."""

    def __init__(self, customers: list[User], seed: int = 7) -> None:
        self.customers = customers
        self.rng = random.Random(seed)
        self.opened = 0

    async def open_one(self) -> None:
        index = self.opened
        self.opened += 1
        customer = self.customers[index % len(self.customers)]
        message_id = f"{uuid.uuid4().hex}@bench.example.com"
        subject = f"Bench ticket {index}: {self.rng.choice(WORDS)} {self.rng.choice(WORDS)}"
        first = NewMessage(
            dedupe_key=f"{MAILBOX} {message_id}",
            direction=Direction.INBOUND,
            from_email=customer.email,
            from_name=customer.name,
            to=[MAILBOX],
            subject=subject,
            text=filler_text(self.rng, TEXT_BYTES),
            message_id=message_id,
        )
        await tickets.open_ticket(requester=customer, subject=subject, mailbox=MAILBOX, first=first)


async def fill(factory: Opener, target: int, concurrency: int, deadline: float) -> bool:
    """Open tickets `concurrency` at a time until `target` exist, with a progress line every few seconds.

    False when the time budget ran out first (the store then holds fewer tickets than `target`).
    """
    start_count = factory.opened
    if target <= start_count:
        return True
    started = last_report = time.monotonic()
    say(f"  filling {start_count} -> {target} tickets, {concurrency} at a time")
    while factory.opened < target:
        if time.monotonic() > deadline:
            say(f"  --budget reached at {factory.opened} tickets: measuring there and stopping")
            return False
        batch = min(concurrency, target - factory.opened)
        await asyncio.gather(*(factory.open_one() for _ in range(batch)))
        now = time.monotonic()
        if now - last_report >= PROGRESS_SECONDS:
            last_report = now
            done = factory.opened - start_count
            rate = done / (now - started)
            eta = (target - factory.opened) / rate if rate else float("inf")
            say(f"  ... {factory.opened}/{target} tickets, {rate:.1f}/s, ~{eta:.0f}s left at that rate")
    elapsed = time.monotonic() - started
    say(f"  filled to {target} in {elapsed:.1f}s ({(target - start_count) / elapsed:.1f} tickets/s)")
    return True


async def opening_seconds(factory: TicketFactory, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        await factory.open_one()
    return time.perf_counter() - started


async def use_store(client: AsyncMongoClient[dict[str, Any]]) -> None:
    """Point the models at this client's database (indexes exist already)."""
    await init_beanie(database=client[DATABASE], document_models=list(ALL_MODELS), skip_indexes=True)


async def paired_insert_window(
    factory: TicketFactory, client: AsyncMongoClient[dict[str, Any]], count: int, control_dir: Path | None
) -> tuple[float, float | None]:
    """Tickets/s on the store, and on a fresh empty store in chunks alternating with it (None without one).

    The machine is shared: its load drifts during a long run, so a rate compared with one measured an hour
    earlier says as much about the neighbours as about the store. The alternating control sees the same load.
    """
    if control_dir is None:
        return count / await opening_seconds(factory, count), None
    control_store = db.EmbeddedStore(control_dir)
    control_client = db.make_client(await control_store.start())
    main_seconds = control_seconds = 0.0
    try:
        await db.init_models(control_client, DATABASE, ALL_MODELS)
        control = TicketFactory(factory.customers, seed=factory.opened)
        done = 0
        while done < count:
            chunk = min(CONTROL_CHUNK, count - done)
            await use_store(control_client)
            control_seconds += await opening_seconds(control, chunk)
            await use_store(client)
            main_seconds += await opening_seconds(factory, chunk)
            done += chunk
    finally:
        await use_store(client)
        await control_client.close()
        await control_store.stop()
        shutil.rmtree(control_dir, ignore_errors=True)
    return count / main_seconds, count / control_seconds


async def median_ms(repeat: int, call: Callable[[], Awaitable[object]]) -> float:
    times: list[float] = []
    for _ in range(repeat):
        started = time.perf_counter()
        await call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def measure(
    factory: TicketFactory,
    client: AsyncMongoClient[dict[str, Any]],
    agent: User,
    customer: User,
    args: argparse.Namespace,
    control_dir: Path | None,
) -> Checkpoint:
    size, window, repeat = factory.opened, args.window, args.repeat
    paired = " alternating with an empty store" if control_dir else ""
    say(f"[size {size}] insert window of {window} tickets (sequential{paired})")
    rate, control_rate = await paired_insert_window(factory, client, window, control_dir)
    empty = f" (empty store meanwhile: {control_rate:.1f}/s)" if control_rate else ""
    say(f"[size {size}] insert {rate:.1f} tickets/s{empty}; timing reads ({repeat} runs each)")
    agent_page1 = await median_ms(repeat, lambda: ticket_list.list_tickets(viewer=agent, page=1, page_size=PAGE_SIZE))
    agent_page10 = await median_ms(repeat, lambda: ticket_list.list_tickets(viewer=agent, page=10, page_size=PAGE_SIZE))
    customer_page1 = await median_ms(
        repeat, lambda: ticket_list.list_tickets(viewer=customer, page=1, page_size=PAGE_SIZE)
    )
    customer_tickets = (await ticket_list.list_tickets(viewer=customer, page=1, page_size=1)).total
    rng = random.Random(size)
    get_ms = await median_ms(repeat, lambda: tickets.get_ticket(viewer=agent, number=rng.randint(1, factory.opened)))
    point = Checkpoint(size, rate, agent_page1, agent_page10, customer_page1, customer_tickets, get_ms, control_rate)
    say(
        f"[size {size}] agent p1 {agent_page1:.1f} ms, agent p10 {agent_page10:.1f} ms, "
        f"customer p1 {customer_page1:.1f} ms ({customer_tickets} tickets), get {get_ms:.1f} ms"
    )
    return point


async def bench_tickets(args: argparse.Namespace, data_dir: Path) -> list[Checkpoint]:
    store = db.EmbeddedStore(data_dir)
    uri = await store.start()
    say(f"embedded store started at {uri} in {data_dir}")
    client = db.make_client(uri)
    try:
        await db.init_models(client, DATABASE, ALL_MODELS)
        agent = await users.create(actor=None, email="agent@example.com", role=Role.AGENT, name="Bench Agent")
        customers = [
            await users.get_or_create_customer(email=f"customer{index}@example.com", name=f"Customer {index}")
            for index in range(args.customers)
        ]
        factory = TicketFactory(customers)
        results: list[Checkpoint] = []
        deadline = time.monotonic() + args.budget
        for size in args.sizes:
            complete = await fill(factory, size, args.fill_concurrency, deadline)
            control_dir = None if args.no_control else data_dir.parent / f"control-{size}"
            results.append(await measure(factory, client, agent, customers[0], args, control_dir))
            if not complete:
                break
        return results
    finally:
        await client.close()
        await store.stop()


async def engine_rate(engine_class: type[Any], path: Path, count: int) -> float:
    from mongoeco.wire import AsyncMongoEcoProxyServer

    server = AsyncMongoEcoProxyServer(engine=engine_class(str(path)), host="127.0.0.1", port=0)
    address = await server.start()
    client = db.make_client(f"mongodb://{address.host}:{address.port}/?directConnection=true")
    try:
        collection = client[DATABASE]["documents"]
        text = "x" * TEXT_BYTES
        started = time.perf_counter()
        for index in range(count):
            await collection.insert_one({"_id": ObjectId(), "n": index, "text": text})
        return count / (time.perf_counter() - started)
    finally:
        await client.close()
        await server.close()


async def prefill(path: Path, current: int, target: int) -> None:
    """Grow the collection with the patched engine's insert_many (fast), whatever engine is measured."""
    from mongoeco.wire import AsyncMongoEcoProxyServer

    if target <= current:
        return
    server = AsyncMongoEcoProxyServer(engine=db.flat_insert_engine_class()(str(path)), host="127.0.0.1", port=0)
    address = await server.start()
    client = db.make_client(f"mongodb://{address.host}:{address.port}/?directConnection=true")
    try:
        collection = client[DATABASE]["documents"]
        text = "x" * TEXT_BYTES
        while current < target:
            batch = min(500, target - current)
            await collection.insert_many([{"_id": ObjectId(), "n": -1, "text": text} for _ in range(batch)])
            current += batch
    finally:
        await client.close()
        await server.close()


async def bench_engines(args: argparse.Namespace, work_dir: Path) -> list[EngineRate]:
    from mongoeco.engines.sqlite import SQLiteEngine

    rates: list[EngineRate] = []
    for name, engine_class in (("stock", SQLiteEngine), ("patched", db.flat_insert_engine_class())):
        path = work_dir / f"{name}.sqlite3"
        documents = 0
        for size in args.engine_sizes:
            say(f"[engine {name}] pre-filling to {size} documents")
            await prefill(path, documents, size)
            documents = max(documents, size)
            say(f"[engine {name}] {args.engine_window} x insert_one at {size} documents")
            rate = await engine_rate(engine_class, path, args.engine_window)
            documents += args.engine_window
            say(f"[engine {name}] {rate:.1f} inserts/s at {size} documents")
            rates.append(EngineRate(name, size, rate))
    return rates


def report(points: Sequence[Checkpoint], engines: Sequence[EngineRate], window: int, repeat: int) -> None:
    say("")
    say(f"== tickets on the embedded store (insert window {window}, medians of {repeat}, page_size {PAGE_SIZE}) ==")
    say(
        f"{'tickets':>8} {'insert/s':>9} {'ratio':>6} {'empty/s':>8} {'paired':>7} {'agent p1 ms':>12} "
        f"{'agent p10 ms':>13} {'cust p1 ms':>11} {'cust tickets':>13} {'get ms':>8}"
    )
    for p in points:
        control = f"{'-':>8} {'-':>7}"
        if p.control_rate:
            control = f"{p.control_rate:>8.1f} {p.insert_rate / p.control_rate:>7.2f}"
        say(
            f"{p.size:>8} {p.insert_rate:>9.1f} {p.insert_rate / points[0].insert_rate:>6.2f} {control} "
            f"{p.agent_page1_ms:>12.1f} {p.agent_page10_ms:>13.1f} "
            f"{p.customer_page1_ms:>11.1f} {p.customer_tickets:>13} {p.get_ms:>8.1f}"
        )
    say("ratio: insert/s over the first size's; paired: insert/s over the empty store's measured alongside it")
    if points:
        first = points[0]
        for point in points[1:]:
            ratios = [("first size", point.insert_rate / first.insert_rate)]
            if point.control_rate:
                ratios.append(("paired empty store", point.insert_rate / point.control_rate))
            for name, ratio in ratios:
                verdict = "OK" if ratio >= INSERT_RATIO_TARGET else "BELOW TARGET"
                say(f"insert rate at {point.size} / {name}: {ratio:.2f} (target >= {INSERT_RATIO_TARGET}) {verdict}")
        fast = [p.size for p in points if p.agent_page1_ms < AGENT_PAGE_TARGET_MS]
        if fast:
            say(f"largest size with agent page 1 under {AGENT_PAGE_TARGET_MS:.0f} ms: {max(fast)} tickets")
        else:
            say(f"agent page 1 is over {AGENT_PAGE_TARGET_MS:.0f} ms at every size measured")
    if engines:
        say("")
        say("== mongoeco insert_one, plain 2 KB documents: stock vs patched engine ==")
        say(f"{'engine':>8} {'documents':>10} {'insert/s':>9}")
        for e in engines:
            say(f"{e.engine:>8} {e.documents:>10} {e.rate:>9.1f}")
        for name in ("stock", "patched"):
            mine = [e for e in engines if e.engine == name]
            if len(mine) >= 2:
                say(
                    f"{name}: rate at {mine[-1].documents} / rate at {mine[0].documents} = "
                    f"{mine[-1].rate / mine[0].rate:.2f}"
                )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=sizes_option, default=sizes_option("0,10000,50000"), help="ticket counts")
    parser.add_argument("--window", type=int, default=200, help="tickets per insert-rate window")
    parser.add_argument("--repeat", type=int, default=10, help="runs per read timing (median)")
    parser.add_argument("--customers", type=int, default=20, help="customers the tickets are spread over")
    parser.add_argument("--fill-concurrency", type=int, default=4, help="open_ticket calls at a time when filling")
    parser.add_argument("--engine-sizes", type=sizes_option, default=sizes_option("0,2000"), help="document counts")
    parser.add_argument("--engine-window", type=int, default=100, help="insert_one calls per engine window")
    parser.add_argument(
        "--budget", type=float, default=3600.0, help="seconds of filling after which the last size is cut short"
    )
    parser.add_argument("--skip-engines", action="store_true", help="skip the stock vs patched engine comparison")
    parser.add_argument(
        "--no-control", action="store_true", help="do not alternate each insert window with a fresh empty store"
    )
    parser.add_argument("--skip-tickets", action="store_true", help="skip the ticket benchmark")
    args = parser.parse_args(argv)
    if args.window < 1 or args.repeat < 1 or args.customers < 1 or args.fill_concurrency < 1:
        parser.error("--window, --repeat, --customers and --fill-concurrency must be >= 1")
    return args


async def run(args: argparse.Namespace) -> None:
    task = asyncio.current_task()
    assert task is not None
    # SIGTERM unwinds like Ctrl-C does: the store child is stopped and the temp dir removed.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="helpgate-bench-store-") as directory:
        work_dir = Path(directory)
        engines = [] if args.skip_engines else await bench_engines(args, work_dir)
        points = [] if args.skip_tickets else await bench_tickets(args, work_dir / "data")
    report(points, engines, args.window, args.repeat)
    say(f"total time {time.monotonic() - started:.0f}s")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        asyncio.run(run(args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
