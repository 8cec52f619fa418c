"""Workflow throughput: events/s through the local runner, and mail accepted → ticket triaged and assigned.

1. Local runner. ``--events`` events through ``LocalRunner([a 3-step function], concurrency=4)`` on the
   embedded store (its child process on a temp dir). Each event starts one run whose three steps are
   trivial async functions returning a small dict, so what is measured is the runner and its store. Events
   are dispatched one after another, as the relay does. The run ends when every run is ``completed``: the
   store is polled once a second, and the end time is the last run's ``finished_at``. Reported as events/s
   and steps/s, with what the store costs: the commands sent per run and their mean round trip, and a
   floor, which is the same writes per run issued directly by 4 tasks on a fresh database with no runner.
2. Mail accepted → ticket triaged and assigned. A whole ``Gateway`` runs in process: embedded store, port
   0, workflows on the local runner, heuristic triage (no GEMINI_API_KEY) and outbound mail to the file
   transport (no SMTP_HOST). The bench sets up a catalog of 5 skills and 5 agents with 2 skills each, then
   sends ``--tickets`` mails over ``--senders`` persistent ``smtplib`` connections (one thread each). Every
   mail has its own customer, Message-ID and subject, and names one skill. Per ticket, the latency is
   ``assigned_at`` (store) minus the wall-clock time its 250 came back (client, same machine). The report
   also gives its stages (250 → ticket created → triaged → assigned), the acknowledgements queued, any
   duplicates, and the mails never assigned (LOST). Waiting ends ``--timeout`` seconds after the last 250,
   or earlier once neither tickets nor assignments have moved for 2 minutes. The store is polled every 3 s.

Each command the store receives is counted and timed by a pymongo CommandListener; the bench's own polls
are left out. It prints progress while running and one table at the end. Warnings and errors that
helpgate logs are counted and summarised, not printed. The workload on the embedded store is slow: a
default run takes tens of minutes on 2 busy cores. For a quick look, use ``--events 200 --tickets 100``.

    uv run python -m bench.events [--events 1000] [--tickets 500] [--senders 4] [--timeout 900]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import os
import smtplib
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from pymongo import monitoring
from pymongo.asynchronous.collection import AsyncCollection
from tests.conftest import start_embedded_store, stop_embedded_store

from helpgate.accounts import skills, users
from helpgate.core import db
from helpgate.core.clock import utcnow
from helpgate.core.settings import Settings
from helpgate.gateway import Gateway
from helpgate.models import ALL_MODELS, OutboundMail, Role, RunStatus, Ticket, User, WorkflowRun
from helpgate.outbox.models.workflow_run import run_key
from helpgate.workflows.runner import LocalRunner
from helpgate.workflows.step import Context, Event, Step, Workflow

HOST = "127.0.0.1"
SUPPORT_ADDRESS = "support@localhost"
JWT_SECRET = "bench-secret-of-at-least-thirty-two-bytes"  # noqa: S105 - a throwaway key for a temp store
CONCURRENCY = 4
PROGRESS_SECONDS = 3.0
RUNNER_POLL_SECONDS = 1.0
TICKET_POLL_SECONDS = 3.0  # each poll is a collection scan on the embedded store: keep it modest
STALL_SECONDS = 120.0
IDLE_SECONDS = 120.0
TRIGGER = "bench/tick"
BENCH_COMMENT = "bench-poll"
STEP_IDS = ("first", "second", "third")
ACK_TEMPLATE = "ticket_acknowledgement"
# name, description: the heuristic triage matches the name or a description word in subject and body.
SKILLS = (
    ("billing", "invoices refunds payments"),
    ("network", "vpn wifi router firewall"),
    ("printers", "toner scanner jams"),
    ("accounts", "password login lockout"),
    ("mailboxes", "outlook inbox calendar"),
)
KEYWORDS = ("invoices", "wifi", "toner", "password", "outlook")


def say(text: str) -> None:
    print(text, flush=True)


@dataclass
class Commands:
    """Store commands by "command collection": how many, and their client round trips in microseconds."""

    counts: Counter[str] = field(default_factory=Counter)
    micros: Counter[str] = field(default_factory=Counter)
    by_task: Counter[str] = field(default_factory=Counter)  # "task command collection"
    idle_polls: Counter[str] = field(default_factory=Counter)  # background loops' reads that found nothing

    def total(self) -> int:
        return sum(self.counts.values())

    def by_name(self) -> Counter[str]:
        names: Counter[str] = Counter()
        for key, count in self.counts.items():
            names[key.split(" ", 1)[0]] += count
        return names


class CommandTimer(monitoring.CommandListener):
    """Counts and times the commands of every client in this process (registered before any exists).

    The bench's own polls carry BENCH_COMMENT and are left out."""

    def __init__(self) -> None:
        self.seen = Commands()
        self._pending: dict[int, str] = {}
        self._tasks: dict[int, str] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command.get("comment") == BENCH_COMMENT:
            return
        target = event.command.get(event.command_name)
        key = f"{event.command_name} {target}" if isinstance(target, str) else event.command_name
        task = _task_name()
        self._pending[event.request_id] = key
        self._tasks[event.request_id] = task
        self.seen.counts[key] += 1
        self.seen.by_task[f"{task} {key}"] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        key, task = self._pending.get(event.request_id), self._tasks.pop(event.request_id, "")
        cursor = event.reply.get("cursor")
        empty = isinstance(cursor, dict) and not cursor.get("firstBatch")
        if key is not None and empty and task in POLLING_TASKS:
            self.seen.counts[key] -= 1  # counted apart, as the issue counts the cost of a ticket
            self.seen.idle_polls[f"{task} {key}"] += 1
        self._finished(event.request_id, event.duration_micros)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self._finished(event.request_id, event.duration_micros)

    def _finished(self, request_id: int, micros: int) -> None:
        key = self._pending.pop(request_id, None)
        if key is not None:
            self.seen.micros[key] += micros

    def snapshot(self) -> Commands:
        seen = self.seen
        return Commands(seen.counts.copy(), seen.micros.copy(), seen.by_task.copy(), seen.idle_polls.copy())

    def since(self, before: Commands) -> Commands:
        seen = self.seen
        return Commands(
            seen.counts - before.counts,
            seen.micros - before.micros,
            seen.by_task - before.by_task,
            seen.idle_polls - before.idle_polls,
        )


#: Background loops that look for work: their reads that find nothing are idle polling, counted apart.
POLLING_TASKS = frozenset(
    {
        "outbox-relay",
        "workflow-sweep",
        "inbound-sweep",
        "outbound-dispatch",
        "outbound-recover",
        "imap-supervisor",
        "unfinished-changes",
    }
)


def _task_name() -> str:
    """The asyncio task that sent a command, without the ids a task name may carry (workflow-<fn>-<run id>)."""
    try:
        task = asyncio.current_task()
    except RuntimeError:
        return "-"
    name = task.get_name() if task is not None else "-"
    if name.startswith("workflow-") and name != "workflow-sweep":
        return name.rsplit("-", 1)[0]
    if name.startswith("outbound-") and name.removeprefix("outbound-").isdigit():
        return "outbound-sender"
    return "request" if name.startswith("Task-") else name


class LogTally(logging.Handler):
    """Counts warnings and errors by their first word (the event name), keeping one example of each."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        key = f"{record.levelname} {record.name}: {text.split(' ', 1)[0]}"
        self.counts[key] += 1
        if record.exc_info and record.exc_info[1] is not None:
            text += f" [{type(record.exc_info[1]).__name__}: {record.exc_info[1]}]"
        self.examples.setdefault(key, text[:240])


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of sorted `values` (0.0 when there are none)."""
    if not values:
        return 0.0
    return values[min(len(values) - 1, max(0, round(fraction * len(values) + 0.5) - 1))]


# --- 1. the local runner ---------------------------------------------------------------------------


async def _trivial(index: int) -> dict[str, int]:
    return {"step": index, "value": index * 7}


async def _three_steps(ctx: Context, step: Step) -> Any:
    for index, step_id in enumerate(STEP_IDS):
        await step.run(step_id, functools.partial(_trivial, index))
    return {"event": ctx.event.id}


BENCH_WORKFLOW = Workflow(id="bench-three-steps", trigger=TRIGGER, handler=_three_steps, retries=0)


@dataclass
class RunnerResult:
    events: int
    completed: int
    failed: int
    seconds: float
    dispatch_seconds: float
    commands: Commands
    floor_seconds: float = 0.0

    @classmethod
    def none(cls) -> RunnerResult:
        """`--events 0`: the runner phase left out."""
        return cls(0, 0, 0, 0.0, 0.0, Commands())


def _runs() -> AsyncCollection[dict[str, Any]]:
    collection: AsyncCollection[dict[str, Any]] = WorkflowRun.get_pymongo_collection()
    return collection


async def _dispatch_all(runner: LocalRunner, count: int) -> None:
    last, last_count = time.perf_counter(), 0
    for index in range(count):
        await runner.dispatch(Event(id=f"bench-event-{index}", name=TRIGGER, data={"index": index}))
        if (now := time.perf_counter()) - last >= PROGRESS_SECONDS:
            say(f"  dispatched {index + 1}/{count} ({(index + 1 - last_count) / (now - last):.0f}/s lately)")
            last, last_count = now, index + 1


async def _wait_runs(count: int, timeout: float) -> tuple[int, int]:
    """Poll until every run finished; (completed, failed)."""
    started = last = time.perf_counter()
    while True:
        completed = await _runs().count_documents({"status": str(RunStatus.COMPLETED)}, comment=BENCH_COMMENT)
        failed = await _runs().count_documents({"status": str(RunStatus.FAILED)}, comment=BENCH_COMMENT)
        now = time.perf_counter()
        if completed + failed >= count or now - started > timeout:
            return completed, failed
        if now - last >= PROGRESS_SECONDS:
            last = now
            say(f"  runs completed {completed}/{count}, failed {failed}")
        await asyncio.sleep(RUNNER_POLL_SECONDS)


async def _runner_phase(count: int, timeout: float, counter: CommandTimer) -> RunnerResult:
    runner = LocalRunner([BENCH_WORKFLOW], concurrency=CONCURRENCY)
    await runner.start()
    before = counter.snapshot()
    started_at = time.time()
    try:
        await _dispatch_all(runner, count)
        dispatch_seconds = time.time() - started_at
        completed, failed = await _wait_runs(count, timeout)
        commands = counter.since(before)
    finally:
        await runner.stop()
    last = await _runs().find_one({"finished_at": {"$ne": None}}, sort=[("finished_at", -1)])
    finished: datetime | None = last["finished_at"] if last else None
    seconds = finished.timestamp() - started_at if finished else float("nan")
    return RunnerResult(count, completed, failed, seconds, dispatch_seconds, commands)


async def _floor_run(collection: AsyncCollection[dict[str, Any]], index: int) -> None:
    """One run's writes as the runner makes them: create, claim, reload, three steps, complete."""
    now = utcnow()
    document = {
        "key": run_key(BENCH_WORKFLOW.id, f"floor-{index}"),
        "function_id": BENCH_WORKFLOW.id,
        "event_id": f"floor-{index}",
        "event_name": TRIGGER,
        "event_data": {"index": index},
        "status": str(RunStatus.QUEUED),
        "steps": {},
        "attempt": 0,
        "next_run_at": now,
        "created_at": now,
        "updated_at": now,
    }
    run_id = (await collection.insert_one(document)).inserted_id
    claim = {"status": str(RunStatus.RUNNING), "claim": f"token-{index}", "lease_until": now, "updated_at": now}
    due = {"status": {"$in": ["queued", "sleeping", "running"]}, "next_run_at": {"$lte": now}}
    await collection.update_one({"_id": run_id, **due, "function_id": {"$in": [BENCH_WORKFLOW.id]}}, {"$set": claim})
    await collection.find_one({"_id": run_id, "claim": f"token-{index}"})
    mine = {"_id": run_id, "claim": f"token-{index}", "status": str(RunStatus.RUNNING)}
    for step, step_id in enumerate(STEP_IDS):
        await collection.update_one(mine, {"$set": {f"steps.{step_id}": {"id": step_id, "data": {"step": step}}}})
    done = {"status": str(RunStatus.COMPLETED), "claim": None, "finished_at": now, "output": {"event": index}}
    await collection.update_one(mine, {"$set": done})


async def _floor_phase(client: Any, count: int) -> float:
    """The same writes with no runner, CONCURRENCY at a time, on a fresh database with the same indexes."""
    collection: AsyncCollection[dict[str, Any]] = client["bench_floor"]["workflow_runs"]
    await collection.create_indexes(WorkflowRun.Settings.indexes)
    queue = iter(range(count))

    async def worker() -> None:
        for index in queue:
            await _floor_run(collection, index)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return time.perf_counter() - started


async def bench_runner(count: int, timeout: float, counter: CommandTimer) -> RunnerResult:
    with tempfile.TemporaryDirectory(prefix="helpgate-bench-events-") as directory:
        store = db.EmbeddedStore(Path(directory) / "data")
        client = db.make_client(await store.start())
        try:
            await db.init_models(client, "bench_runner", ALL_MODELS)
            say(f"[runner] {count} events, 3 steps each, concurrency {CONCURRENCY}")
            result = await _runner_phase(count, timeout, counter)
            say(f"[runner] {result.completed} completed, {result.failed} failed in {result.seconds:.2f}s")
            say(f"[runner] store floor: the same writes for {count} runs, {CONCURRENCY} tasks, no runner")
            result.floor_seconds = await _floor_phase(client, count)
        finally:
            await client.close()
            await store.stop()
    return result


# --- 2. mail → triaged and assigned ----------------------------------------------------------------


@dataclass
class Sent:
    accepted: dict[str, float] = field(default_factory=dict)  # Message-ID (lower case) → wall time of the 250
    failed: list[str] = field(default_factory=list)
    started: float = 0.0
    ended: float = 0.0


def build_mail(index: int) -> tuple[str, str, bytes]:
    """(Message-ID, envelope sender, bytes): a customer of its own, naming one skill in subject and body."""
    skill, keyword = SKILLS[index % len(SKILLS)][0], KEYWORDS[index % len(KEYWORDS)]
    sender = f"customer{index}@example.org"
    message_id = f"bench-{index}@bench.example.org"
    mail = EmailMessage()
    mail["From"] = f"Customer {index} <{sender}>"
    mail["To"] = SUPPORT_ADDRESS
    mail["Subject"] = f"Bench {index}: {skill} help"
    mail["Message-ID"] = f"<{message_id}>"
    mail.set_content(f"Hello, since this morning our {keyword} gives trouble. Could someone look? Bench {index}.\n")
    return message_id, sender, mail.as_bytes()


def send_share(port: int, share: Sequence[tuple[str, str, bytes]], sent: Sent) -> None:
    """One persistent connection (reopened once it drops) sending its share; runs in a thread."""
    smtp = smtplib.SMTP(HOST, port, timeout=120)
    for message_id, sender, data in share:
        try:
            smtp.sendmail(sender, [SUPPORT_ADDRESS], data)
        except smtplib.SMTPServerDisconnected as error:
            sent.failed.append(f"{message_id}: disconnected: {error}")
            smtp = smtplib.SMTP(HOST, port, timeout=120)
            continue
        except (smtplib.SMTPException, OSError) as error:
            sent.failed.append(f"{message_id}: {type(error).__name__}: {error}")
            continue
        sent.accepted[message_id] = time.time()
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


async def send_all(port: int, count: int, senders: int) -> Sent:
    mails = [build_mail(index) for index in range(count)]
    sent = Sent(started=time.time())
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=senders, thread_name_prefix="bench-sender") as pool:
        tasks = {loop.run_in_executor(pool, send_share, port, mails[n::senders], sent) for n in range(senders)}
        pending = tasks
        while pending:
            _done, pending = await asyncio.wait(pending, timeout=PROGRESS_SECONDS)
            done, rate = len(sent.accepted), len(sent.accepted) / (time.time() - sent.started)
            say(f"  accepted {done}/{count}, failed {len(sent.failed)}, {rate:.1f}/s")
        for task in tasks:
            task.result()
    sent.ended = time.time()
    return sent


async def setup_staff() -> None:
    """The skill catalog and 5 agents, agent n with skills n and n+1."""
    await skills.replace([skills.SkillEntry(name, description) for name, description in SKILLS], actor=None)
    for n in range(len(SKILLS)):
        agent = await users.create(
            actor=None, email=f"agent{n}@acme.test", role=Role.AGENT, name=f"Agent {n}", source="bench"
        )
        wanted = await skills.check_known([SKILLS[n][0], SKILLS[(n + 1) % len(SKILLS)][0]])
        await User.get_pymongo_collection().update_one({"_id": agent.id}, {"$set": {"skills": wanted}})


async def wait_assigned(count: int, timeout: float) -> str:
    """Poll until `count` tickets have assigned_at; give up after `timeout` seconds, or STALL_SECONDS with no
    new ticket and no new assignment. Says how the wait ended."""
    tickets: AsyncCollection[dict[str, Any]] = Ticket.get_pymongo_collection()
    started = changed = time.perf_counter()
    last = (-1, -1)
    while True:
        created = await tickets.count_documents({}, comment=BENCH_COMMENT)
        assigned = await tickets.count_documents({"assigned_at": {"$ne": None}}, comment=BENCH_COMMENT)
        now = time.perf_counter()
        if (created, assigned) != last:
            last, changed = (created, assigned), now
        say(f"  tickets {created}/{count}, assigned {assigned}/{count} ({now - started:.0f}s)")
        if assigned >= count:
            return "all assigned"
        if now - started > timeout:
            return f"--timeout {timeout:.0f}s reached"
        if now - changed > STALL_SECONDS:
            return f"STALLED: no new ticket or assignment for {STALL_SECONDS:.0f}s"
        await asyncio.sleep(TICKET_POLL_SECONDS)


@dataclass
class MailResult:
    sent: Sent
    tickets: int = 0
    latencies: list[float] = field(default_factory=list)  # 250 → assigned_at, sorted
    stages: dict[str, list[float]] = field(default_factory=dict)
    triaged: int = 0
    assigned: int = 0
    lost: list[str] = field(default_factory=list)  # Message-IDs accepted but never assigned
    no_ticket: int = 0  # of those, the ones that never became a ticket
    duplicates: int = 0
    unmatched: int = 0
    acks: int = 0
    ack_tickets: int = 0
    last_assigned: float = 0.0
    assigned_times: list[float] = field(default_factory=list)  # sorted
    commands: Commands = field(default_factory=Commands)
    runs: Counter[str] = field(default_factory=Counter)
    wait: str = ""  # how waiting for the assignments ended
    idle: bool = True
    store_cpu: float = 0.0  # seconds of CPU the store process spent while the mail was handled


def _seconds(later: datetime | None, earlier: float | datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    return later.timestamp() - (earlier.timestamp() if isinstance(earlier, datetime) else earlier)


async def collect(sent: Sent) -> MailResult:
    """Match tickets to the mails sent (origin_key is "<Message-ID> <fingerprint>") and time each one."""
    result = MailResult(sent=sent, stages={"250 → created": [], "created → triaged": [], "triaged → assigned": []})
    projection = {"origin_key": 1, "created_at": 1, "assigned_at": 1, "triage.at": 1}
    seen: Counter[str] = Counter()
    assigned_ids: set[str] = set()
    async for ticket in Ticket.get_pymongo_collection().find({}, projection):
        result.tickets += 1
        message_id = str(ticket.get("origin_key", "")).split(" ", 1)[0].lower()
        seen[message_id] += 1
        accepted = sent.accepted.get(message_id)
        triaged_at = (ticket.get("triage") or {}).get("at")
        assigned_at = ticket.get("assigned_at")
        result.triaged += triaged_at is not None
        result.assigned += assigned_at is not None
        if accepted is None:
            result.unmatched += 1
            continue
        pairs = ((ticket["created_at"], accepted), (triaged_at, ticket["created_at"]), (assigned_at, triaged_at))
        for name, (later, earlier) in zip(result.stages, pairs, strict=True):
            if (seconds := _seconds(later, earlier)) is not None:
                result.stages[name].append(seconds)
        if (seconds := _seconds(assigned_at, accepted)) is not None:
            assigned_ids.add(message_id)
            result.latencies.append(seconds)
            result.assigned_times.append(assigned_at.timestamp())
    result.duplicates = sum(n - 1 for n in seen.values() if n > 1)
    result.lost = sorted(mid for mid in sent.accepted if mid not in assigned_ids)
    result.no_ticket = sum(1 for mid in result.lost if mid not in seen)
    result.latencies.sort()
    result.assigned_times.sort()
    result.last_assigned = result.assigned_times[-1] if result.assigned_times else 0.0
    for values in result.stages.values():
        values.sort()
    await _collect_mail_and_runs(result)
    return result


async def _collect_mail_and_runs(result: MailResult) -> None:
    outbound: AsyncCollection[dict[str, Any]] = OutboundMail.get_pymongo_collection()
    numbers = [
        doc.get("ticket_number") async for doc in outbound.find({"template": ACK_TEMPLATE}, {"ticket_number": 1})
    ]
    result.acks, result.ack_tickets = len(numbers), len(set(numbers))
    async for run in _runs().find({}, {"function_id": 1, "status": 1}):
        result.runs[f"{run['function_id']} {run['status']}"] += 1


def gateway_settings(root: Path, store_uri: str | None = None) -> Settings:
    values: dict[str, Any] = {
        "data_dir": root / "data",
        "http_host": HOST,
        "http_port": 0,
        "smtp_host": HOST,
        "smtp_port": 0,
        "support_addresses": [SUPPORT_ADDRESS],
        "mongodb_uri": store_uri,
        "jwt_secret": JWT_SECRET,
        "run_workflows": True,
        "gemini_api_key": None,
        "outbound_smtp_host": None,
        "inngest_dev": None,
        "inngest_base_url": None,
        "inngest_signing_key": None,
    }
    return Settings(_env_file=None, **values)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def bench_mail(
    count: int, senders: int, timeout: float, counter: CommandTimer, *, stock_store: bool = False
) -> MailResult:
    """The embedded store runs as `serve` runs it (synced), started here so that its CPU time can be read."""
    with tempfile.TemporaryDirectory(prefix="helpgate-bench-mail-") as directory:
        options = ("--change-records",) if stock_store else ()
        store, uri = start_embedded_store(Path(directory) / "store", synced=True, options=options)
        gateway = Gateway(gateway_settings(Path(directory), uri))
        await gateway.start()
        try:
            assert gateway.smtp is not None and gateway.workflows is not None
            await setup_staff()
            await gateway.workflows.wait_idle(60)
            say(f"[mail] gateway on smtp {gateway.smtp.port}; {count} mails over {senders} connections")
            before = counter.snapshot()
            store_cpu = cpu_seconds(store.pid)
            sent = await send_all(gateway.smtp.port, count, senders)
            say(f"[mail] {len(sent.accepted)} accepted in {sent.ended - sent.started:.1f}s; waiting for assignments")
            wait = await wait_assigned(len(sent.accepted), timeout)
            say(f"[mail] {wait}; waiting for the workflows to finish (acknowledgements, notifications)")
            idle = True
            try:
                await gateway.workflows.wait_idle(IDLE_SECONDS if wait == "all assigned" else 1.0)
            except TimeoutError:
                idle = False
            commands = counter.since(before)
            store_cpu = cpu_seconds(store.pid) - store_cpu
            result = await collect(sent)
            result.wait, result.idle, result.commands, result.store_cpu = wait, idle, commands, store_cpu
        finally:
            await gateway.stop()
            stop_embedded_store(store)
    return result


# --- the report ------------------------------------------------------------------------------------


def _top(commands: Commands, per: int, limit: int = 5) -> str:
    return ", ".join(f"{name} {n / per:.1f}" for name, n in commands.by_name().most_common(limit))


def _window_rate(times: Sequence[float], window: int) -> str:
    """Assignments/s over the first and the last `window` of the sorted `times`."""
    if len(times) < 2 * window or window < 2:
        return "n/a"
    first, last = times[window - 1] - times[0], times[-1] - times[-window]
    return f"{(window - 1) / first if first else 0:.2f} / {(window - 1) / last if last else 0:.2f}"


def _runner_rows(runner: RunnerResult) -> list[tuple[str, str]]:
    if not runner.events:
        return [("local runner", "left out (--events 0)")]
    rate = runner.completed / runner.seconds if runner.seconds > 0 else 0.0
    floor = runner.events / runner.floor_seconds if runner.floor_seconds > 0 else 0.0
    total, micros = runner.commands.total(), sum(runner.commands.micros.values())
    return [
        (f"local runner: {runner.events} events x 3 steps", f"{rate:.1f} events/s, {3 * rate:.0f} steps/s"),
        ("  completed / failed / time", f"{runner.completed} / {runner.failed} / {runner.seconds:.1f}s"),
        ("  dispatch alone (runs.create_many per event)", f"{runner.events / runner.dispatch_seconds:.1f} events/s"),
        ("  store commands per run", f"{total / runner.events:.1f} ({_top(runner.commands, runner.events)})"),
        ("  store round trip, mean", f"{micros / total / 1000 if total else 0:.1f} ms"),
        (f"  store floor: same writes, {CONCURRENCY} tasks", f"{floor:.1f} runs/s (runner at {rate / floor:.0%})"),
    ]


def _mail_rows(mail: MailResult, args: argparse.Namespace) -> list[tuple[str, str]]:
    sent, values = mail.sent, mail.latencies
    accepted = len(sent.accepted)
    batch = mail.last_assigned - sent.started if mail.last_assigned else 0.0
    stages = ", ".join(f"{name} {percentile(v, 0.5):.1f}/{percentile(v, 0.95):.1f}" for name, v in mail.stages.items())
    window = min(100, len(mail.assigned_times) // 2)
    return [
        (f"mail → assigned: {accepted} tickets", f"median {percentile(values, 0.5):.2f}s"),
        ("  p95 / max", f"{percentile(values, 0.95):.2f}s / {values[-1] if values else 0.0:.2f}s"),
        ("  stages, median/p95 s", stages),
        (
            "  SMTP accepted / failed",
            f"{accepted} / {len(sent.failed)}, {accepted / (sent.ended - sent.started):.1f}/s",
        ),
        ("  batch: first mail → last assigned", f"{batch:.1f}s, {len(values) / batch if batch else 0:.2f} tickets/s"),
        (f"  assigned/s, first / last {window}", _window_rate(mail.assigned_times, window)),
        ("  tickets / triaged / assigned", f"{mail.tickets} / {mail.triaged} / {mail.assigned}"),
        ("  acknowledgements (rows / tickets)", f"{mail.acks} / {mail.ack_tickets}"),
        ("  duplicate / unmatched tickets", f"{mail.duplicates} / {mail.unmatched}"),
        ("  LOST (never assigned)", f"{len(mail.lost)}, {mail.no_ticket} without a ticket ({mail.wait})"),
        (
            "  store commands per ticket, idle polls apart",
            f"{mail.commands.total() / max(1, accepted):.1f} ({_top(mail.commands, accepted)})",
        ),
        ("  store CPU per ticket", f"{mail.store_cpu / max(1, accepted) * 1000:.1f} ms"),
        ("  workflows idle afterwards", "yes" if mail.idle else "NO"),
    ]


def _by_task(commands: Commands, per: int) -> None:
    tasks: Counter[str] = Counter()
    for key, count in commands.by_task.items():
        tasks[key.split(" ", 1)[0]] += count
    idle = sum(commands.idle_polls.values())
    say(f"store commands per ticket by the task that sent them (idle polls, {idle / per:.1f} per ticket, apart):")
    for task, count in tasks.most_common():
        polls = sum(n for key, n in commands.idle_polls.items() if key.split(" ", 1)[0] == task)
        say(f"  {task:<38} {(count - polls) / per:6.1f}" + (f"   (+{polls / per:.1f} idle polls)" if polls else ""))
        for key, n in sorted(commands.by_task.items(), key=lambda item: -item[1]):
            name, command = key.split(" ", 1)
            busy = n - commands.idle_polls.get(key, 0)
            if name == task and busy > 0:
                say(f"      {command:<34} {busy / per:6.1f}")


def _store_time(commands: Commands, per: int) -> None:
    total = sum(commands.micros.values()) or 1
    say("store time by command and collection, mail phase (per ticket; mean round trip; share of store time):")
    for key, micros in commands.micros.most_common(40):
        count = commands.counts[key]
        if count > 0:  # else only idle polls (their time is in the share)
            say(f"  {key:<36} {count / per:>6.1f}  {micros / count / 1000:>7.1f} ms  {micros / total:>5.0%}")


def report(runner: RunnerResult, mail: MailResult, tally: LogTally, args: argparse.Namespace) -> None:
    rows = _runner_rows(runner) + _mail_rows(mail, args)
    width = max(len(label) for label, _ in rows) + 2
    say("")
    say(f"== workflows: local runner, and mail → assigned ({args.senders} senders, concurrency {CONCURRENCY}) ==")
    for label, value in rows:
        say(f"{label:<{width}}{value}")
    say("runs by function and status: " + ", ".join(f"{k} {n}" for k, n in sorted(mail.runs.items())))
    _store_time(mail.commands, max(1, len(mail.sent.accepted)))
    _by_task(mail.commands, max(1, len(mail.sent.accepted)))
    if tally.counts:
        say("helpgate warnings and errors (count, first example):")
        for key, n in tally.counts.most_common():
            say(f"  {n:>5}  {key}  | {tally.examples[key]}")
    for message in mail.sent.failed[:5]:
        say(f"  send failed: {message}")


async def run(args: argparse.Namespace, counter: CommandTimer, tally: LogTally) -> None:
    runner = await bench_runner(args.events, args.timeout, counter) if args.events else RunnerResult.none()
    mail = await bench_mail(args.tickets, args.senders, args.timeout, counter, stock_store=args.stock_store)
    report(runner, mail, tally, args)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=1000, help="events through the local runner")
    parser.add_argument("--tickets", type=int, default=500, help="mails sent to the gateway")
    parser.add_argument("--senders", type=int, default=4, help="concurrent SMTP connections")
    parser.add_argument(
        "--timeout",
        type=float,
        default=900.0,
        help="seconds to wait for the runs, or for assignments after the last 250",
    )
    parser.add_argument(
        "--stock-store",
        action="store_true",
        help="the embedded store with mongoeco's change-stream bookkeeping (as stock), to compare side by side",
    )
    args = parser.parse_args(argv)
    counter = CommandTimer()
    monitoring.register(counter)
    tally = LogTally()
    root = logging.getLogger()
    root.addHandler(tally)
    root.setLevel(logging.WARNING)
    asyncio.run(run(args, counter, tally))


if __name__ == "__main__":
    main()
