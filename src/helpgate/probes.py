"""What /readyz and the /metrics scrape read of one running gateway.

Readiness asks: does the store answer, is the SMTP listener listening, is the HTTP server serving, and is the
outbox relay keeping up (when this instance runs the workflows, the oldest undelivered outbox event must be
younger than HELPGATE_READY_OUTBOX_MAX_AGE_SECONDS: older means the relay is stopped, or its back end keeps
refusing events). Liveness (/healthz, Gateway.health) is a separate, wider report.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from helpgate.core import metrics
from helpgate.maintenance import backlog

if TYPE_CHECKING:
    from helpgate.gateway import Gateway

log = logging.getLogger(__name__)

STORE_TIMEOUT = 2.0  # seconds the store may take to answer a ping
COUNT_TIMEOUT = 5.0  # seconds the queue counts of a scrape may take

type Check = dict[str, Any]  # {"ok": bool, "detail": str}


def _check(ok: bool, detail: str) -> Check:
    return {"ok": ok, "detail": detail}


async def _store(gateway: Gateway) -> Check:
    if gateway.client is None:
        return _check(False, "not connected")
    try:
        await asyncio.wait_for(gateway.client.admin.command("ping"), STORE_TIMEOUT)
    except Exception as error:
        return _check(False, f"ping failed: {type(error).__name__}: {error}")
    return _check(True, "answers ping")


def _smtp(gateway: Gateway) -> Check:
    if gateway.smtp is None or not gateway.smtp.listening:
        return _check(False, "not listening")
    return _check(True, f"listening on {gateway.settings.smtp_host}:{gateway.smtp.port}")


def _http(gateway: Gateway) -> Check:
    if not gateway.http_serving:
        return _check(False, "not started, or stopping")
    return _check(True, f"serving on {gateway.settings.http_host}:{gateway.http_port}")


async def _relay(gateway: Gateway) -> Check:
    if gateway.workflows is None:
        return _check(True, "workflows run on another instance (HELPGATE_RUN_WORKFLOWS=false)")
    running = bool(gateway.workflows.relay.health()["ok"])
    limit = gateway.settings.ready_outbox_max_age_seconds
    try:
        age = await asyncio.wait_for(backlog.oldest_undelivered_event_age(), STORE_TIMEOUT)
    except Exception as error:
        return _check(False, f"cannot read the outbox: {type(error).__name__}: {error}")
    state = "running" if running else "not running"
    if age > limit:
        return _check(False, f"{state}; the oldest undelivered outbox event is {age:.0f} s old (limit {limit:g} s)")
    if not running:
        return _check(False, "the outbox relay is not running")
    return _check(True, f"running; oldest undelivered outbox event {age:.0f} s old (limit {limit:g} s)")


async def readiness(gateway: Gateway) -> dict[str, Check]:
    """Each condition of readiness by name, with `ok` and a detail a person can act on."""
    return {
        "store": await _store(gateway),
        "smtp": _smtp(gateway),
        "http": _http(gateway),
        "relay": await _relay(gateway),
    }


async def queues(gateway: Gateway) -> metrics.Queues:
    """The gateway's queues for the scrape: the inbound backlog from memory, the rest counted in the store."""
    inbound = gateway.worker.backlog
    try:
        async with asyncio.timeout(COUNT_TIMEOUT):
            depths = await backlog.depths()
    except Exception as error:
        log.warning("metrics.store_unavailable reason=%s: %s", type(error).__name__, error)
        return metrics.Queues(inbound_backlog=inbound, store_ok=False)
    return metrics.Queues(
        inbound_backlog=inbound,
        outbound=depths.outbound,
        events=depths.events,
        runs=depths.runs,
        oldest_event_seconds=backlog.age(depths.oldest_event),
    )
