"""Failover harness: two `helpgate serve` processes on one store and one Dovecot; one is killed half-way.

Mail goes in by SMTP (alternately to both instances) and into the shared IMAP mailbox; once half of it is
sent, the instance polling the mailbox gets SIGKILL, and the rest goes to the survivor (an SMTP client whose
connection breaks sends again to the other instance, as an MTA would). Acknowledgements go to a capture
server in this process (STARTTLS + AUTH, like Mailtrap). When everything has settled, the store and the sink
say whether every mail became exactly one ticket message and every acknowledgement was sent exactly once.

The store must outlive the killed instance: pass the URI of a store running in its own process (the tests'
`store_uri`). Used by tests/inbound/test_failover.py (a few dozen mails) and bench/failover.py (500 + 500);
bench/soak.py starts its instances with `cluster` and checks its mail with `count_inbound` and `received_ids`.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import signal
import smtplib
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from email import policy
from pathlib import Path

from helpgate.core import db
from helpgate.core.crypto import SecretBox
from helpgate.mailboxes import leases, mailboxes
from helpgate.models import ALL_MODELS, ImapSecurity, Message, OutboundMail, RawMessage, Ticket
from tests.dovecot import PASSWORD, Dovecot
from tests.health import log_tail, serve_env, wait_healthy
from tests.mail import make_mail
from tests.mail_capture import PASSWORD as SINK_PASSWORD
from tests.mail_capture import USERNAME as SINK_USERNAME
from tests.mail_capture import CaptureServer, free_port, make_certificate

SECRET_KEY = "failover-secret-key-of-at-least-32-bytes"
SUPPORT = "support@localhost"
ACKNOWLEDGEMENT = "ticket_acknowledgement"


@dataclass(frozen=True)
class Plan:
    smtp_mails: int
    imap_mails: int
    rate: float = 4.0  # mails sent per second, both ways together
    kill_at: float | None = 0.5  # the share of the mail sent when the mailbox's poller is killed; None: no kill
    settle_seconds: float = 600.0  # at most this long for everything to become tickets and acknowledgements
    # Short leases, so the survivor takes over within seconds rather than minutes.
    mailbox_lease_seconds: float = 4.0
    claim_seconds: float = 8.0  # inbound claims, outbox events, outbound mail
    workflow_lease_seconds: float = 9.0


@dataclass
class Report:
    mails: int = 0
    seconds: float = 0.0
    killed: str = "nobody"
    tickets: int = 0
    lost: list[str] = field(default_factory=list)  # Message-IDs that became no ticket message
    duplicated: list[str] = field(default_factory=list)  # Message-IDs that became more than one
    acknowledgements: int = 0  # queued, one per ticket at most (idempotency key)
    acknowledged_tickets: int = 0
    sent_twice: list[str] = field(default_factory=list)  # acknowledgements the sink received more than once
    never_received: list[str] = field(default_factory=list)  # acknowledgements the sink never received
    uncertain: list[str] = field(default_factory=list)  # cut off during DATA by the kill (at most once)
    left_received: int = 0  # raw mail never processed
    smtp_resent: int = 0  # SMTP mails sent again to the survivor after a broken connection

    def lines(self) -> list[str]:
        return [
            f"mails sent: {self.mails} in {self.seconds:.0f} s until settled; killed: {self.killed}",
            f"tickets: {self.tickets}; lost: {len(self.lost)}; duplicated: {len(self.duplicated)}; "
            f"raw mail left unprocessed: {self.left_received}; SMTP mails resent after the kill: {self.smtp_resent}",
            f"acknowledgements: {self.acknowledgements} queued for {self.acknowledged_tickets} tickets; "
            f"received twice: {len(self.sent_twice)}; never received: {len(self.never_received)} "
            f"(uncertain: {len(self.uncertain)})",
        ]


class Instance:
    """One `helpgate serve` process on the shared store."""

    def __init__(self, name: str, plan: Plan, store_uri: str, database: str, sink: CaptureServer, root: Path) -> None:
        self.name = name
        self.http_port, self.smtp_port = free_port(), free_port()
        directory = root / name
        directory.mkdir(parents=True)
        self.log_path = directory / "serve.log"
        env = serve_env(
            store_uri=store_uri,
            database=database,
            data_dir=directory / "data",
            http_port=self.http_port,
            smtp_port=self.smtp_port,
            HELPGATE_SUPPORT_ADDRESSES=SUPPORT,
            HELPGATE_INSTANCE_ID=name,
            HELPGATE_SECRET_KEY=SECRET_KEY,
            HELPGATE_MAILBOX_LEASE_SECONDS=str(plan.mailbox_lease_seconds),
            HELPGATE_INBOUND_CLAIM_SECONDS=str(plan.claim_seconds),
            HELPGATE_OUTBOX_LEASE_SECONDS=str(plan.claim_seconds),
            HELPGATE_OUTBOUND_LEASE_SECONDS=str(plan.claim_seconds),
            HELPGATE_WORKFLOW_LEASE_SECONDS=str(plan.workflow_lease_seconds),
            SMTP_HOST="127.0.0.1",
            SMTP_PORT=str(sink.port),
            SMTP_USERNAME=SINK_USERNAME,
            SMTP_PASSWORD=SINK_PASSWORD,
            SMTP_SECURITY="starttls",
            SMTP_CA_FILE=str(sink.certificate.cert),
            JWT_SECRET="failover-jwt-secret-of-32-bytes-or-more",
        )
        self.env = env  # also for `helpgate` commands on the same store (create-user, ...)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "helpgate", "serve"], env=env, stdout=log, stderr=log
            )

    def wait_healthy(self, timeout: float = 60.0) -> None:
        wait_healthy(self.process, self.http_port, self.log_path, timeout)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, lines: int = 40) -> str:
        return log_tail(self.log_path, lines)


def _mail(kind: str, n: int, run: str) -> tuple[str, bytes]:
    """A mail from its own customer (so no rate limit or subject threading joins two), and its Message-ID."""
    message_id = f"<{kind}{n}.{run}@example.org>"
    mail = make_mail(
        sender=f"Customer {kind} {n} <{kind}{n}.{run}@example.org>",
        to=SUPPORT,
        subject=f"Failover {kind} question {n} ({run})",
        body=f"Question {n} sent by {kind}: the printer in room {n} is jammed again.",
        message_id=message_id,
    )
    return message_id, bytes(mail)


class Sender:
    """Sends the SMTP mails to the instances in turn; a broken connection means: send to the next live one."""

    def __init__(self, instances: list[Instance]) -> None:
        self.instances = instances
        self.resent = 0
        self._next = 0

    def send(self, sender: str, data: bytes) -> None:
        for _attempt in range(2 * len(self.instances)):
            instance = self.instances[self._next % len(self.instances)]
            self._next += 1
            if instance.process.poll() is not None:
                continue
            try:
                with smtplib.SMTP("127.0.0.1", instance.smtp_port, timeout=30) as client:
                    client.sendmail(sender, [SUPPORT], data)
                return
            except (OSError, smtplib.SMTPException):
                self.resent += 1  # the instance died under us (or answered 4xx): try the other one
        raise RuntimeError("no instance accepted the mail")


def _append(dovecot: Dovecot, data: bytes) -> None:
    client = dovecot.client()
    try:
        typ, detail = client.append("INBOX", "", None, data)
        assert typ == "OK", detail
    finally:
        client.logout()


async def _holder(mailbox_key: str) -> str | None:
    lease = await leases.get(mailbox_key)
    return lease.owner if lease else None


async def _send_all(
    plan: Plan, dovecot: Dovecot, instances: list[Instance], mailbox_key: str, progress: Callable[[str], None]
) -> tuple[list[str], Sender, str]:
    """Send everything at `plan.rate`, killing the mailbox's poller at `plan.kill_at`; (Message-IDs, sender, killed)."""
    run = uuid.uuid4().hex[:6]
    work = [("smtp", n) for n in range(plan.smtp_mails)] + [("imap", n) for n in range(plan.imap_mails)]
    work.sort(key=lambda item: item[1])  # interleaved: smtp 0, imap 0, smtp 1, ...
    sender = Sender(instances)
    message_ids: list[str] = []
    killed = "nobody"
    kill_after = -1 if plan.kill_at is None else int(len(work) * plan.kill_at)
    started = time.monotonic()
    for index, (kind, n) in enumerate(work):
        if index == kill_after:
            owner = await _holder(mailbox_key)
            victim = next((i for i in instances if i.name == owner), instances[0])
            victim.kill()
            killed = f"{victim.name} (it held the mailbox lease: {owner == victim.name}) after {index} mails"
            progress(f"SIGKILL {killed}")
        message_id, data = _mail(kind, n, run)
        message_ids.append(message_id)
        if kind == "smtp":
            await asyncio.to_thread(sender.send, f"{kind}{n}.{run}@example.org", data)
        else:
            await asyncio.to_thread(_append, dovecot, data)
        if (index + 1) % 100 == 0:
            progress(f"sent {index + 1}/{len(work)}")
        if plan.rate > 0:
            await asyncio.sleep(max(0.0, started + (index + 1) / plan.rate - time.monotonic()))
    return message_ids, sender, killed


async def _settled(expected: int, sink: CaptureServer, progress: Callable[[str], None], deadline: float) -> None:
    """Until every mail is a ticket, no raw mail waits, and every acknowledgement left the queue."""
    last = ""
    while time.monotonic() < deadline:
        tickets = await Ticket.find_all().count()
        waiting = await RawMessage.find({"status": "received"}).count()
        acks = OutboundMail.find({"template": ACKNOWLEDGEMENT})
        queued = await acks.count()
        done = await OutboundMail.find({"template": ACKNOWLEDGEMENT, "status": {"$in": ["sent", "uncertain"]}}).count()
        line = f"tickets {tickets}/{expected}, raw waiting {waiting}, acks {done}/{queued}, sink {len(sink.received)}"
        if line != last:
            progress(line)
            last = line
        if tickets >= expected and waiting == 0 and queued >= expected and done == queued:
            return
        await asyncio.sleep(2.0)
    progress("settle deadline passed")


async def count_inbound(message_ids: list[str]) -> tuple[list[str], list[str]]:
    """The Message-IDs that became no inbound ticket message, and those that became more than one."""
    counts: Counter[str] = Counter()
    async for document in Message.get_pymongo_collection().find({"direction": "inbound"}, {"message_id": 1}):
        counts[str(document.get("message_id", "")).strip("<>")] += 1
    lost = [message_id for message_id in message_ids if counts[message_id.strip("<>")] == 0]
    duplicated = [message_id for message_id in message_ids if counts[message_id.strip("<>")] > 1]
    return lost, duplicated


def received_ids(sink: CaptureServer) -> Counter[str]:
    """How often the sink received each Message-ID (without angle brackets)."""
    received: Counter[str] = Counter()
    for mail in list(sink.received):
        parsed = email.message_from_bytes(mail.data, policy=policy.default)
        received[str(parsed.get("Message-ID", "")).strip().strip("<>")] += 1
    return received


async def _verify(report: Report, message_ids: list[str], sink: CaptureServer) -> None:
    report.lost, report.duplicated = await count_inbound(message_ids)
    report.tickets = await Ticket.find_all().count()
    report.left_received = await RawMessage.find({"status": "received"}).count()
    acks = await OutboundMail.find({"template": ACKNOWLEDGEMENT}).to_list()
    report.acknowledgements = len(acks)
    report.acknowledged_tickets = len({ack.ticket_number for ack in acks})
    received = received_ids(sink)
    for ack in acks:
        if received[ack.key] > 1:
            report.sent_twice.append(ack.key)
        elif received[ack.key] == 0:
            report.never_received.append(ack.key)
        if ack.status == "uncertain":
            report.uncertain.append(ack.key)


@dataclass(frozen=True)
class Cluster:
    instances: list[Instance]
    sink: CaptureServer
    mailbox_key: str  # the lease of the Dovecot mailbox


@contextlib.asynccontextmanager
async def cluster(
    plan: Plan, *, store_uri: str, dovecot: Dovecot, root: Path, names: tuple[str, ...], prefix: str
) -> AsyncIterator[Cluster]:
    """`helpgate serve` processes named `names` on a fresh database of the store at `store_uri` (dropped at the
    end), with the Dovecot mailbox configured and outbound mail going to a sink; yielded once all are healthy."""
    database = f"{prefix}_{uuid.uuid4().hex[:8]}"
    client = db.make_client(store_uri)
    await db.init_models(client, database, ALL_MODELS)
    sink = CaptureServer(make_certificate(_directory(root / "sink"))).start()
    instances: list[Instance] = []
    try:
        mailbox = await mailboxes.create(
            actor=None,
            box=SecretBox(SECRET_KEY), address=SUPPORT, imap_host="127.0.0.1", imap_port=dovecot.imap_port,
            imap_security=ImapSecurity.NONE, username="test", password=PASSWORD,
        )  # fmt: skip
        assert mailbox.id is not None
        instances = [Instance(name, plan, store_uri, database, sink, root) for name in names]
        for instance in instances:
            await asyncio.to_thread(instance.wait_healthy)
        yield Cluster(instances, sink, leases.mailbox_key(mailbox.id))
    finally:
        for instance in instances:
            instance.stop()
        sink.stop()
        await client.drop_database(database)
        await client.close()


async def run(plan: Plan, *, store_uri: str, dovecot: Dovecot, root: Path, progress: Callable[[str], None]) -> Report:
    """The whole failover run on a fresh database of the store at `store_uri` (dropped afterwards)."""
    report = Report(mails=plan.smtp_mails + plan.imap_mails)
    names = ("instance-a", "instance-b")
    async with cluster(plan, store_uri=store_uri, dovecot=dovecot, root=root, names=names, prefix="failover") as up:
        started = time.monotonic()
        progress(f"two instances up; sending {plan.smtp_mails} by SMTP and {plan.imap_mails} by IMAP")
        message_ids, sender, report.killed = await _send_all(plan, dovecot, up.instances, up.mailbox_key, progress)
        report.smtp_resent = sender.resent
        await _settled(report.mails, up.sink, progress, time.monotonic() + plan.settle_seconds)
        await asyncio.sleep(3.0)  # anything sent twice would show by now
        report.seconds = time.monotonic() - started
        await _verify(report, message_ids, up.sink)
        return report


def _directory(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def logs(root: Path) -> str:
    """The end of each instance's log, for a failure message."""
    return "\n".join(
        f"--- {path.parent.name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-30:])
        for path in sorted(root.glob("*/serve.log"))
    )
