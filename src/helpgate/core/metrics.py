"""Prometheus metrics: the counters and histograms every part of helpgate updates, and their exposition.

They live in `core` because core code counts too (tickets opened, outbound mail sent); this module imports
nothing but prometheus_client, so nothing here ties core to the HTTP API, which only serves the text.

Counters and histograms are module-level in prometheus_client's default registry, as exporters usually do:
they count what this process did, whatever gateway did it, and several gateways in one process (tests)
share them without registering anything twice. What belongs to one gateway (its queues) is read when
scraped, by an `Exporter` per gateway that keeps its own collector, never registered globally.

Label values are bounded: reasons are short codes, never free text; routes are templates, never raw paths.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client import REGISTRY, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

log = logging.getLogger(__name__)

INBOUND_RECEIVED = Counter(
    "helpgate_inbound_received", "Raw messages stored: SMTP answered 250, or IMAP fetched them", ["source"]
)
INBOUND_REJECTED = Counter(
    "helpgate_inbound_rejected", "SMTP refusals, before anything was stored (per recipient or message)", ["reason"]
)
INBOUND_NORMALISED = Counter(
    "helpgate_inbound_normalised", "SMTP messages stored after their bare-LF line endings were turned into CRLF"
)
INBOUND_ACCEPTED = Counter(
    "helpgate_inbound_accepted", "Messages the pipeline put on a ticket, a new one or the one they answer", ["source"]
)
INBOUND_QUARANTINED = Counter(
    "helpgate_inbound_quarantined", "Messages kept aside for a person and for replay, by reason", ["reason"]
)
INBOUND_IGNORED = Counter(
    "helpgate_inbound_ignored",
    "Messages stored but put on no ticket: our own mail, duplicates, stray reports",
    ["reason"],
)
INBOUND_SECONDS = Histogram("helpgate_inbound_processing_seconds", "Pipeline time per stored message")
STORE_COMMANDS = Counter(
    "helpgate_store_commands",
    "Commands this process sent to the store (MongoDB or the embedded one), by command name",
    ["command"],
)
TICKETS_CREATED = Counter("helpgate_tickets_created", "Tickets opened, by mail or over the API", ["channel"])
TRIAGE = Counter(
    "helpgate_triage", "Triages made, by who made them and why the heuristic stood in", ["source", "fallback_reason"]
)
TRIAGE_SECONDS = Histogram(
    "helpgate_triage_duration_seconds",
    "Time to triage one ticket, the AI's retries included",
    ["source"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0),
)
OUTBOUND_SENT = Counter("helpgate_outbound_sent", "Outbound mails the relay accepted (250 to DATA)")
OUTBOUND_FAILED = Counter(
    "helpgate_outbound_failed", "Outbound mails failed for good: refused (5xx) or attempts spent", ["reason"]
)
IMAP_POLL_ERRORS = Counter(
    "helpgate_imap_poll_errors", "IMAP sessions ended by an error (the poller reconnects with backoff)", ["mailbox"]
)
HTTP_SECONDS = Histogram(
    "helpgate_http_request_duration_seconds",
    "HTTP requests by route template and status",
    ["method", "route", "status"],
)

NO_FALLBACK = "none"


def observe_triage(*, source: str, fallback_reason: str | None, seconds: float) -> None:
    TRIAGE.labels(source=source, fallback_reason=fallback_reason or NO_FALLBACK).inc()
    TRIAGE_SECONDS.labels(source=source).observe(seconds)


def source_kind(source: str) -> str:
    """The kind of a RawMessage source, "smtp" or "imap" ("imap:<mailbox>"): mailboxes are no label here."""
    return source.split(":", 1)[0]


@dataclass
class Queues:
    """One gateway's queues, read when scraped."""

    inbound_backlog: int
    outbound: dict[str, int] = field(default_factory=dict)  # unsent mail by delivery status
    events: dict[str, int] = field(default_factory=dict)  # undelivered outbox events by status
    runs: dict[str, int] = field(default_factory=dict)  # unfinished workflow runs by status
    oldest_event_seconds: float = 0.0  # age of the oldest undelivered outbox event, 0 when none
    store_ok: bool = True  # False: the store did not answer, the store-backed gauges are left out


type ReadQueues = Callable[[], Awaitable[Queues]]


def _by_status(name: str, documentation: str, counts: dict[str, int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=["status"])
    for status, value in sorted(counts.items()):
        family.add_metric([status], value)
    return family


class _QueueCollector:
    def __init__(self) -> None:
        self.queues: Queues | None = None

    def collect(self) -> Iterator[Metric]:
        queues = self.queues
        if queues is None:
            return
        yield GaugeMetricFamily(
            "helpgate_inbound_backlog", "Stored messages waiting for the pipeline here", value=queues.inbound_backlog
        )
        yield GaugeMetricFamily("helpgate_store_up", "1 when the store answered the last count", value=queues.store_ok)
        if not queues.store_ok:
            return
        yield _by_status("helpgate_outbound_pending", "Outbound mail not sent yet, by status", queues.outbound)
        yield _by_status("helpgate_outbox_events_pending", "Outbox events not delivered yet, by status", queues.events)
        yield _by_status("helpgate_workflow_runs_pending", "Workflow runs not finished, by status", queues.runs)
        yield GaugeMetricFamily(
            "helpgate_outbox_oldest_pending_seconds",
            "Age of the oldest undelivered outbox event (0: none)",
            value=queues.oldest_event_seconds,
        )


class Exporter:
    """The text /metrics serves for one gateway: the process-wide metrics plus that gateway's queues.

    Counting the queues costs the store a scan per collection on the embedded store, so they are read at
    most once per `max_age` seconds whatever the scrape rate; `read` bounds its own wait for the store.
    """

    def __init__(self, read: ReadQueues, *, max_age: float = 10.0) -> None:
        self._read = read
        self._max_age = max_age
        self._queues = _QueueCollector()
        self._read_at: float | None = None
        self._lock = asyncio.Lock()

    async def refresh(self) -> None:
        async with self._lock:
            now = time.monotonic()
            if self._read_at is not None and now - self._read_at < self._max_age:
                return
            try:
                self._queues.queues = await self._read()
            except Exception:  # a scrape must still answer: the counters do not need the queues
                log.exception("metrics.queues_unread")
            self._read_at = time.monotonic()

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()
        yield from self._queues.collect()

    async def render(self) -> bytes:
        await self.refresh()
        return generate_latest(self)
