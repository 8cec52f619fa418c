"""Soak: `--minutes` of steady mixed load on `helpgate serve`, then: was anything lost, repeated or leaked?

One `helpgate serve` process (`--instances 2`: two, sharing the load) on an embedded store running in its own
process, with one Dovecot mailbox configured and outbound mail going to a STARTTLS+AUTH sink in this process
(tests/failover.py's `cluster`, as bench/failover.py uses it). Meanwhile, each at its own steady rate:

* SMTP mail opening tickets, from `--customers` customers picked at random;
* SMTP replies by customers to the mail they got (acknowledgements, agent replies): half threaded by
  In-Reply-To/References, half only by the `[#n]` token of the subject;
* IMAP APPENDs into the mailbox, opening tickets;
* API reads as an agent made with `helpgate create-user`: the queue with filters (status, assignee, requester,
  text), a ticket, the sidebar's stats;
* agent replies (`POST /api/tickets/{n}/replies`) on tickets whose acknowledgement has arrived.

A progress line goes to stderr every 30 s. When the time is up the load stops, everything settles (no mail
waiting, every outbound mail delivered), and the report gives per-kind throughput, API p50/p99 per route,
SMTP submission p99 (connect to QUIT, 250 to DATA included), end-to-end p99 (mail sent to ticket message
stored), the serve process's RSS after warm-up and at the end (growth above 20% fails), the store process's
RSS, and the checks: every mail sent is exactly one ticket message (by Message-ID), each reply on its ticket,
one ticket per opening mail, every outbound mail delivered and received by the sink exactly once (each agent
reply among them), no raw mail left `received` or `quarantined`, no failed request. The exit status is 1
when a check fails.

    uv run python -m bench.soak [--minutes 30] [--instances 1] [--smtp-rate 0.25] [--reply-rate 0.1]
        [--imap-rate 0.1] [--api-rate 2] [--agent-reply-rate 0.1] [--customers 200]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import re
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.utils import parseaddr
from pathlib import Path

import httpx
from tests.dovecot import Dovecot
from tests.failover import SUPPORT, Cluster, Instance, Plan, Sender, cluster, count_inbound, received_ids
from tests.mail import make_mail
from tests.mail_capture import CaptureServer

from bench.events import percentile
from bench.scratch import Scratch, scratch
from helpgate.core.settings import Settings
from helpgate.models import Message, OutboundMail, OutboxEvent, RawMessage, Ticket, WorkflowRun

AGENT_EMAIL = "soak-agent@example.com"
AGENT_PASSWORD = "Soak-agent-password-42"  # noqa: S105 - a throwaway account on a temp store
PROGRESS_SECONDS = 30.0
MAX_RSS_GROWTH = 0.20
TOKEN = re.compile(r"\[#(\d+)\]")
READS = ("list status", "list assignee=me", "list requester", "list q", "ticket", "stats")


def _say(line: str) -> None:
    print(f"  {time.strftime('%H:%M:%S')} {line}", file=sys.stderr, flush=True)


def _load() -> str:
    return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def rss_mb(pid: int) -> float:
    """The resident set of a process (VmRSS of /proc/<pid>/status), in MB; 0.0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


@dataclass(frozen=True)
class Conversation:
    """A mail the sink got for a customer about ticket `number`: something to reply to."""

    customer: str
    number: int
    message_id: str
    subject: str


class Conversations:
    """The sink's mail to our customers, read as it arrives (headers only)."""

    def __init__(self, sink: CaptureServer, customer_domain: str) -> None:
        self.sink = sink
        self.domain = customer_domain
        self.items: list[Conversation] = []
        self._read = 0
        self._parser = BytesHeaderParser()

    def refresh(self) -> list[Conversation]:
        received = list(self.sink.received)
        for mail in received[self._read :]:
            headers = self._parser.parsebytes(mail.data)
            customer = parseaddr(str(headers.get("To", "")))[1].lower()
            subject = str(headers.get("Subject", ""))
            token = TOKEN.search(subject)
            if customer.endswith(self.domain) and token:
                message_id = str(headers.get("Message-ID", "")).strip()
                self.items.append(Conversation(customer, int(token.group(1)), message_id, subject))
        self._read = len(received)
        return self.items


@dataclass
class Tally:
    """What the load did: counts, latencies (ms), errors, and what the checks need."""

    counts: Counter[str] = field(default_factory=Counter)  # smtp, reply, imap, read, agent reply
    ms: dict[str, list[float]] = field(default_factory=dict)  # by route or kind
    errors: Counter[str] = field(default_factory=Counter)
    sent_at: dict[str, float] = field(default_factory=dict)  # inbound Message-ID (no <>) → wall clock when sent
    openers: list[str] = field(default_factory=list)  # Message-IDs of mail that opens a ticket
    reply_ticket: dict[str, int] = field(default_factory=dict)  # customer reply's Message-ID → its ticket
    agent_replies: list[str] = field(default_factory=list)  # Message-IDs of agent replies (outbound)

    def time(self, name: str, ms: float) -> None:
        self.ms.setdefault(name, []).append(ms)

    def p(self, name: str, fraction: float) -> float:
        return percentile(sorted(self.ms.get(name, [])), fraction)


class Load:
    """The five kinds of traffic against the instances; each action is one mail or one request."""

    def __init__(self, up: Cluster, dovecot: Dovecot, args: argparse.Namespace, tally: Tally) -> None:
        self.up, self.dovecot, self.args, self.tally = up, dovecot, args, tally
        self.run = uuid.uuid4().hex[:6]
        self.domain = f".{self.run}@example.org"
        self.conversations = Conversations(up.sink, self.domain)
        self.sender = Sender(up.instances)
        self.rng = random.Random(8)
        self.client = httpx.AsyncClient(timeout=60)
        self.token = ""
        self._next_instance = 0

    def customer(self) -> str:
        return f"customer{self.rng.randrange(self.args.customers)}{self.domain}"

    async def _smtp(self, sender: str, data: bytes, message_id: str) -> None:
        self.tally.sent_at[message_id.strip("<>")] = time.time()
        started = time.perf_counter()
        await asyncio.to_thread(self.sender.send, sender, data)
        self.tally.time("smtp submission", (time.perf_counter() - started) * 1000)

    def _opener(self, kind: str, n: int, subject: str, body: str) -> tuple[str, str, bytes]:
        """A mail opening a ticket, from a random customer: (customer, Message-ID, bytes)."""
        customer, message_id = self.customer(), f"<{kind}{n}.{self.run}@example.org>"
        mail = make_mail(sender=customer, to=SUPPORT, subject=subject, body=body, message_id=message_id)
        self.tally.openers.append(message_id)
        return customer, message_id, bytes(mail)

    async def smtp_mail(self, n: int) -> None:
        customer, message_id, data = self._opener(
            "smtp",
            n,
            subject=f"Soak question {n}: the scanner on floor {n % 7} is offline",
            body=f"Hello, question {n}: the scanner says 'offline' since this morning. Can you help?",
        )
        await self._smtp(customer, data, message_id)
        self.tally.counts["smtp"] += 1

    async def customer_reply(self, n: int) -> None:
        conversations = self.conversations.refresh()
        if not conversations:
            self.tally.counts["reply skipped (nothing to answer yet)"] += 1
            return
        answered = self.rng.choice(conversations)
        message_id = f"<reply{n}.{self.run}@example.org>"
        by_header = n % 2 == 0  # else by the subject's [#n] token only
        mail = make_mail(
            sender=answered.customer,
            to=SUPPORT,
            subject=answered.subject if answered.subject.lower().startswith("re:") else f"Re: {answered.subject}",
            body=f"Thanks. Reply {n}: it still does not work after a restart.",
            message_id=message_id,
            in_reply_to=answered.message_id if by_header else None,
            references=answered.message_id if by_header else None,
        )
        await self._smtp(answered.customer, bytes(mail), message_id)
        self.tally.reply_ticket[message_id.strip("<>")] = answered.number
        self.tally.counts["reply"] += 1

    async def imap_mail(self, n: int) -> None:
        _customer, message_id, data = self._opener(
            "imap",
            n,
            subject=f"Soak mailbox question {n}: VPN drops every hour",
            body=f"Question {n}: my VPN connection drops every hour on the hour.",
        )
        self.tally.sent_at[message_id.strip("<>")] = time.time()
        started = time.perf_counter()
        await asyncio.to_thread(self.dovecot.append, [data])
        self.tally.time("imap append", (time.perf_counter() - started) * 1000)
        self.tally.counts["imap"] += 1

    def _base(self) -> str:
        instance = self.up.instances[self._next_instance % len(self.up.instances)]
        self._next_instance += 1
        return f"http://127.0.0.1:{instance.http_port}"

    async def _login(self) -> None:
        answer = await self.client.post(
            f"{self._base()}/api/auth/login", json={"email": AGENT_EMAIL, "password": AGENT_PASSWORD}
        )
        answer.raise_for_status()
        self.token = str(answer.json()["access_token"])

    async def _request(self, route: str, method: str, path: str, json: dict[str, str] | None = None) -> httpx.Response:
        """One timed request as the agent; an expired token means: log in again and send it once more."""
        for attempt in range(2):
            if not self.token:
                await self._login()
            started = time.perf_counter()
            answer = await self.client.request(
                method, self._base() + path, headers={"Authorization": f"Bearer {self.token}"}, json=json
            )
            if answer.status_code == 401 and attempt == 0:
                self.token = ""
                continue
            self.tally.time(route, (time.perf_counter() - started) * 1000)
            if answer.status_code >= 300:
                raise RuntimeError(f"{method} {path}: {answer.status_code} {answer.text[:200]}")
            return answer
        raise AssertionError("unreachable")

    def _known_ticket(self) -> int | None:
        conversations = self.conversations.refresh()
        return self.rng.choice(conversations).number if conversations else None

    async def api_read(self, n: int) -> None:
        route = READS[n % len(READS)]
        number = self._known_ticket()
        if route == "ticket" and number is None:
            route = "list status"  # no ticket known yet
        paths = {
            "list status": "/api/tickets?status=new&status=open&sort=priority",
            "list assignee=me": "/api/tickets?assignee=me&status=open&status=pending",
            "list requester": f"/api/tickets?requester={self.customer()}",
            "list q": "/api/tickets?q=scanner&page_size=10",
            "ticket": f"/api/tickets/{number}",
            "stats": "/api/tickets/stats",
        }
        await self._request(route, "GET", paths[route])
        self.tally.counts["read"] += 1

    async def agent_reply(self, n: int) -> None:
        number = self._known_ticket()
        if number is None:
            self.tally.counts["agent reply skipped (no ticket acknowledged yet)"] += 1
            return
        text = f"Hello, agent reply {n}: please restart the device once more and tell us what it says."
        answer = await self._request("reply", "POST", f"/api/tickets/{number}/replies", json={"text": text})
        self.tally.agent_replies.append(str(answer.json()["message_id"]).strip("<>"))
        self.tally.counts["agent reply"] += 1


async def paced(name: str, rate: float, until: float, action: Callable[[int], Awaitable[None]], tally: Tally) -> None:
    """`action(0)`, `action(1)`, ... at `rate` per second until the monotonic time `until` (late calls catch up)."""
    if rate <= 0:
        return
    started = time.monotonic() + random.random() / rate  # the kinds do not all fire at the same instant
    n = 0
    while (due := started + n / rate) < until:
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        try:
            await action(n)
        except Exception as error:  # counted and reported: a soak keeps going
            tally.errors[f"{name}: {type(error).__name__}: {str(error)[:160]}"] += 1
        n += 1


@dataclass
class Memory:
    """RSS samples (MB) of the serve processes and the store process."""

    serve_pids: list[int]
    store_pid: int
    warm: list[float] = field(default_factory=list)
    end: list[float] = field(default_factory=list)
    peak: list[float] = field(default_factory=list)
    store_warm: float = 0.0
    store_end: float = 0.0

    def sample(self) -> list[float]:
        now = [rss_mb(pid) for pid in self.serve_pids]
        self.peak = [max(a, b) for a, b in zip(self.peak or now, now, strict=True)]
        return now

    def growth(self) -> list[float]:
        return [(end - warm) / warm if warm else 0.0 for warm, end in zip(self.warm, self.end, strict=True)]


async def progress(load: Load, memory: Memory, started: float, warm_at: float, until: float) -> None:
    """A line every 30 s; the warm RSS sample once `warm_at` has passed, the end sample at `until`."""
    next_line = started
    while True:
        now = time.monotonic()
        if not memory.warm and now >= warm_at:
            memory.warm, memory.store_warm = memory.sample(), rss_mb(memory.store_pid)
            _say(f"warm-up over: serve RSS {_mb(memory.warm)}, store RSS {memory.store_warm:.0f} MB")
        if now >= until:
            memory.end, memory.store_end = memory.sample(), rss_mb(memory.store_pid)
            return
        if now >= next_line:
            next_line += PROGRESS_SECONDS
            counts = load.tally.counts
            tickets = await Ticket.find_all().count()
            _say(
                f"{now - started:4.0f} s: mails in smtp {counts['smtp']} + replies {counts['reply']} + imap "
                f"{counts['imap']}; tickets {tickets}; API reads {counts['read']}, agent replies "
                f"{counts['agent reply']}; errors {sum(load.tally.errors.values())}; serve RSS "
                f"{_mb(memory.sample())}, store RSS {rss_mb(memory.store_pid):.0f} MB; {_load()}"
            )
        wake = min(next_line, until, until if memory.warm else warm_at)
        await asyncio.sleep(max(0.0, wake - time.monotonic()))


def _mb(values: Sequence[float]) -> str:
    return " / ".join(f"{value:.0f} MB" for value in values)


async def settle(tally: Tally, deadline: float) -> None:
    """Until every mail sent is a ticket message and nothing is left to do: no raw mail, outbox event, workflow
    run (sleeping SLA timers aside) or outbound mail waiting."""
    last = ""
    sent = list(tally.sent_at)
    while time.monotonic() < deadline:
        lost, _ = await count_inbound(sent)
        waiting = {
            "raw mail": await RawMessage.find({"status": "received"}).count(),
            "events": await OutboxEvent.find({"status": {"$in": ["pending", "delivering"]}}).count(),
            "workflow runs": await WorkflowRun.find({"status": {"$in": ["queued", "running"]}}).count(),
            "outbound mail": await OutboundMail.find({"status": {"$in": ["queued", "sending"]}}).count(),
        }
        line = f"settling: {len(lost)} mails not yet ticket messages; waiting: " + ", ".join(
            f"{name} {count}" for name, count in waiting.items()
        )
        if line != last:
            _say(line)
            last = line
        if not lost and not any(waiting.values()):
            return
        await asyncio.sleep(3.0)
    _say("settle deadline passed")


@dataclass
class Checks:
    lines: list[str] = field(default_factory=list)
    failed: int = 0

    def check(self, ok: bool, text: str, bad: Sequence[str] = ()) -> None:
        self.failed += not ok
        example = f" (e.g. {', '.join(list(bad)[:5])})" if bad else ""
        self.lines.append(f"  [{'PASS' if ok else 'FAIL'}] {text}{example}")


async def by_status(model: type[RawMessage] | type[WorkflowRun]) -> Counter[str]:
    counts: Counter[str] = Counter()
    async for document in model.get_pymongo_collection().find({}, {"status": 1}):
        counts[str(document.get("status"))] += 1
    return counts


async def check_inbound(checks: Checks, tally: Tally) -> None:
    """Every mail one ticket message, replies on their tickets, one ticket per opening mail, nothing left over;
    and the end-to-end latencies (the store's `created_at` against our clock: the same host)."""
    sent = list(tally.sent_at)
    lost, duplicated = await count_inbound(sent)
    checks.check(
        not lost and not duplicated,
        f"{len(sent)} mails sent, each one ticket message: lost {len(lost)}, duplicated {len(duplicated)}",
        lost + duplicated,
    )
    stored: dict[str, tuple[int, float]] = {}  # Message-ID → (ticket, stored at)
    fields = {"message_id": 1, "ticket_number": 1, "created_at": 1}
    async for document in Message.get_pymongo_collection().find({"direction": "inbound"}, fields):
        stored[str(document.get("message_id", "")).strip("<>")] = (
            int(document["ticket_number"]),
            document["created_at"].timestamp(),
        )
    tally.ms["end to end"] = [(stored[key][1] - at) * 1000 for key, at in tally.sent_at.items() if key in stored]
    misthreaded = [key for key, number in tally.reply_ticket.items() if key in stored and stored[key][0] != number]
    checks.check(not misthreaded, f"{len(tally.reply_ticket)} customer replies, each on its ticket", misthreaded)
    tickets = await Ticket.find_all().count()
    checks.check(
        tickets == len(tally.openers), f"{tickets} tickets for {len(tally.openers)} mails opening one (SMTP + IMAP)"
    )
    raw = await by_status(RawMessage)
    checks.check(set(raw) <= {"processed"}, f"raw mail by status: {dict(raw)} (none received, quarantined, ...)")
    runs = await by_status(WorkflowRun)
    checks.check(
        set(runs) <= {"completed", "sleeping", "cancelled"},  # sleeping: SLA timers; cancelled: answered in time
        f"workflow runs by status: {dict(runs)} (none failed or left)",
    )


async def check_outbound(checks: Checks, tally: Tally, sink: CaptureServer) -> None:
    """Every outbound mail sent and received by the sink exactly once; one acknowledgement per ticket."""
    mails = await OutboundMail.find_all().to_list()
    received = received_ids(sink)
    by_template = Counter(f"{mail.template} {mail.status}" for mail in mails)
    unsent = [f"{mail.key} {mail.status}" for mail in mails if mail.status != "sent"]
    checks.check(not unsent, f"{len(mails)} outbound mails, all sent: {dict(sorted(by_template.items()))}", unsent)
    twice = [mail.key for mail in mails if received[mail.key] > 1]
    never = [mail.key for mail in mails if mail.status == "sent" and received[mail.key] == 0]
    strangers = sorted(set(received) - {mail.key for mail in mails})
    checks.check(
        not twice and not never and not strangers,
        f"sink got {len(sink.received)} mails: each outbound mail once (twice {len(twice)}, never {len(never)}, "
        f"unknown {len(strangers)})",
        twice + never + strangers,
    )
    tickets = await Ticket.find_all().count()
    acknowledged = {mail.ticket_number for mail in mails if mail.template == "ticket_acknowledgement"}
    checks.check(len(acknowledged) == tickets, f"{len(acknowledged)} tickets acknowledged of {tickets}")
    missing = [key for key in tally.agent_replies if received[key] != 1]
    checks.check(not missing, f"{len(tally.agent_replies)} agent replies, each received once", missing)


def check_memory(checks: Checks, memory: Memory) -> None:
    for index, growth in enumerate(memory.growth()):
        checks.check(
            growth <= MAX_RSS_GROWTH,
            f"serve #{index + 1} RSS {memory.warm[index]:.0f} MB after warm-up, {memory.end[index]:.0f} MB at the "
            f"end of the load ({growth:+.0%}; peak {memory.peak[index]:.0f} MB), at most +{MAX_RSS_GROWTH:.0%}",
        )


LABELS = {
    "smtp submission": "SMTP connect .. QUIT",
    "imap append": "IMAP login+APPEND",
    "end to end": "sent -> ticket message",
    **{route: f"GET {route}" for route in READS},
    "reply": "POST .../replies",
}


def report(tally: Tally, checks: Checks, memory: Memory, seconds: float, args: argparse.Namespace) -> None:
    counts = tally.counts
    print(
        f"soak: {seconds / 60:.1f} min of load on {args.instances} `helpgate serve` process(es), embedded store in "
        f"its own process, {os.cpu_count()} cores; {_load()}"
    )
    print("throughput (achieved; target in brackets):")
    for kind, rate in (
        ("smtp", args.smtp_rate),
        ("reply", args.reply_rate),
        ("imap", args.imap_rate),
        ("read", args.api_rate),
        ("agent reply", args.agent_reply_rate),
    ):
        print(f"  {kind:<12} {counts[kind]:>6}  {counts[kind] / seconds:6.3f}/s  ({rate:g}/s)")
    for kind, count in counts.items():
        if "skipped" in kind:
            print(f"  {kind}: {count}")
    print(f"latency (ms)                {'n':>6} {'p50':>8} {'p99':>8} {'max':>8}")
    for name, label in LABELS.items():
        values = tally.ms.get(name, [])
        top = max(values, default=0.0)
        print(f"  {label:<26}{len(values):>6} {tally.p(name, 0.5):>8.1f} {tally.p(name, 0.99):>8.1f} {top:>8.1f}")
    print(
        f"store process RSS: {memory.store_warm:.0f} MB after warm-up, {memory.store_end:.0f} MB at the end "
        "(for information)"
    )
    print("checks:")
    for line in checks.lines:
        print(line)
    print("PASS" if not checks.failed else f"FAIL: {checks.failed} check(s)")


def _create_agent(instance: Instance) -> None:
    """The agent, made the way an operator does it."""
    command = [sys.executable, "-m", "helpgate", "create-user", AGENT_EMAIL, "--role", "agent"]
    command += ["--password", AGENT_PASSWORD, "--name", "Soak Agent"]
    done = subprocess.run(command, env=instance.env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"helpgate create-user failed ({done.returncode}):\n{done.stdout}{done.stderr}")


async def soak(args: argparse.Namespace, place: Scratch) -> int:
    defaults = Settings.model_fields
    plan = Plan(
        smtp_mails=0,
        imap_mails=0,
        kill_at=None,
        mailbox_lease_seconds=float(defaults["mailbox_lease_seconds"].default),
        claim_seconds=float(defaults["inbound_claim_seconds"].default),
        workflow_lease_seconds=float(defaults["workflow_lease_seconds"].default),
    )  # production's leases: nobody is killed here
    names = tuple(f"instance-{chr(ord('a') + index)}" for index in range(args.instances))
    async with cluster(
        plan, store_uri=place.store_uri, dovecot=place.dovecot, root=place.root, names=names, prefix="soak"
    ) as up:
        await asyncio.to_thread(_create_agent, up.instances[0])
        tally = Tally()
        load = Load(up, place.dovecot, args, tally)
        memory = Memory([instance.process.pid for instance in up.instances], place.store_pid)
        seconds = args.minutes * 60
        started = time.monotonic()
        until = started + seconds
        warm_at = started + min(max(60.0, seconds / 10), seconds / 2)
        _say(f"{len(up.instances)} instance(s) up, agent created; {args.minutes:g} min of load; {_load()}")
        try:
            await asyncio.gather(
                paced("smtp", args.smtp_rate, until, load.smtp_mail, tally),
                paced("reply", args.reply_rate, until, load.customer_reply, tally),
                paced("imap", args.imap_rate, until, load.imap_mail, tally),
                paced("read", args.api_rate, until, load.api_read, tally),
                paced("agent reply", args.agent_reply_rate, until, load.agent_reply, tally),
                progress(load, memory, started, warm_at, until),
            )
            loaded = time.monotonic() - started
            _say(f"load over after {loaded:.0f} s; {_load()}")
            await settle(tally, time.monotonic() + args.settle)
            await asyncio.sleep(3.0)  # anything sent twice would show by now
            checks = Checks()
            await check_inbound(checks, tally)
            await check_outbound(checks, tally, up.sink)
            checks.check(not tally.errors, f"{sum(tally.errors.values())} failed actions", list(tally.errors))
            check_memory(checks, memory)
        finally:
            await load.client.aclose()
        report(tally, checks, memory, loaded, args)
        return 1 if checks.failed else 0


async def run(args: argparse.Namespace) -> int:
    with scratch("helpgate-bench-soak-") as place:
        return await soak(args, place)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0, help="how long the load lasts")
    parser.add_argument("--instances", type=int, default=1, choices=(1, 2), help="helpgate serve processes")
    parser.add_argument("--smtp-rate", type=float, default=0.25, help="new tickets by SMTP per second")
    parser.add_argument("--reply-rate", type=float, default=0.1, help="customer replies by SMTP per second")
    parser.add_argument("--imap-rate", type=float, default=0.1, help="new tickets by IMAP APPEND per second")
    parser.add_argument("--api-rate", type=float, default=2.0, help="API reads per second")
    parser.add_argument("--agent-reply-rate", type=float, default=0.1, help="agent replies per second")
    parser.add_argument("--customers", type=int, default=200, help="customers the new tickets come from")
    parser.add_argument("--settle", type=float, default=600.0, help="at most this many seconds to settle at the end")
    args = parser.parse_args(argv)
    rates = (args.smtp_rate, args.reply_rate, args.imap_rate, args.api_rate, args.agent_reply_rate)
    if args.minutes <= 0 or args.customers < 1 or args.settle <= 0 or min(rates) < 0:
        parser.error("--minutes, --customers and --settle must be positive, the rates at least 0")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    logging.getLogger("mail.log").setLevel(logging.ERROR)  # the sink's aiosmtpd warns on every AUTH
    sys.exit(asyncio.run(run(parse_args(argv))))


if __name__ == "__main__":
    main()
