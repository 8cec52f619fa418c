"""Metrics, readiness and structured logs of a real gateway, read over HTTP as Prometheus and an orchestrator
would, and from a `helpgate serve` process's own log output.

The counters are process-wide (several gateways run in one test process), so tests compare a scrape taken
before with one taken after.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import smtplib
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from helpgate.core import db
from helpgate.core.clock import utcnow
from helpgate.core.settings import Settings
from helpgate.gateway import Gateway
from helpgate.models import OutboxEvent
from tests.conftest import make_settings
from tests.fake_inngest import FakeInngest, serving
from tests.health import serve_env
from tests.mail import make_mail, send
from tests.mail_capture import free_port

type Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

TOKEN = "metrics-token-for-tests"


async def scrape(api: httpx.AsyncClient, headers: dict[str, str] | None = None) -> Samples:
    response = await api.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


# --- metrics ---------------------------------------------------------------------------------------------


async def test_mail_over_smtp_counts_received_accepted_and_ticket_created(
    gateway: Gateway, api: httpx.AsyncClient
) -> None:
    assert gateway.smtp is not None
    before = await scrape(api)
    await send(gateway.smtp.port, make_mail())
    await gateway.worker.idle()
    after = await scrape(api)

    assert delta(before, after, "helpgate_inbound_received_total", source="smtp") == 1
    assert delta(before, after, "helpgate_inbound_accepted_total", source="smtp") == 1
    assert delta(before, after, "helpgate_tickets_created_total", channel="mail") == 1
    assert delta(before, after, "helpgate_inbound_processing_seconds_count") == 1


async def test_unknown_recipient_counts_as_rejected_with_its_reason(gateway: Gateway, api: httpx.AsyncClient) -> None:
    assert gateway.smtp is not None
    before = await scrape(api)
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        await send(gateway.smtp.port, make_mail(to="nobody@localhost"), recipients=["nobody@localhost"])
    after = await scrape(api)

    assert delta(before, after, "helpgate_inbound_rejected_total", reason="unknown_recipient") == 1
    assert delta(before, after, "helpgate_inbound_received_total", source="smtp") == 0


@pytest.mark.parametrize("settings_overrides", [{"max_message_bytes": 2000}])
async def test_mail_over_the_size_limit_counts_as_rejected_too_large(gateway: Gateway, api: httpx.AsyncClient) -> None:
    assert gateway.smtp is not None
    before = await scrape(api)
    with pytest.raises(smtplib.SMTPException):
        await send(gateway.smtp.port, make_mail(body="x" * 5000))
    after = await scrape(api)

    assert delta(before, after, "helpgate_inbound_rejected_total", reason="too_large") == 1


async def test_mail_without_sender_counts_as_quarantined_with_its_reason(
    gateway: Gateway, api: httpx.AsyncClient
) -> None:
    assert gateway.smtp is not None
    mail = EmailMessage()
    mail["To"] = "support@localhost"
    mail["Subject"] = "Who am I"
    mail["Message-ID"] = "<anonymous@example.org>"
    mail.set_content("No From header at all.")
    before = await scrape(api)
    await send(gateway.smtp.port, mail)
    await gateway.worker.idle()
    after = await scrape(api)

    assert delta(before, after, "helpgate_inbound_quarantined_total", reason="no_sender") == 1
    assert delta(before, after, "helpgate_inbound_accepted_total", source="smtp") == 0


async def test_metrics_parse_and_name_routes_by_template(gateway: Gateway, api: httpx.AsyncClient) -> None:
    await api.get("/api/tickets/987654")  # 401: no token
    await api.get("/no/such/page/123456")  # 404: no route
    response = await api.get("/metrics")
    families = {family.name: family for family in text_string_to_metric_families(response.text)}

    assert families["helpgate_inbound_received"].type == "counter"
    assert families["helpgate_triage_duration_seconds"].type == "histogram"
    assert families["helpgate_inbound_backlog"].samples[0].value == 0
    pending = {sample.labels["status"]: sample.value for sample in families["helpgate_outbound_pending"].samples}
    assert pending == {"queued": 0, "sending": 0}
    assert families["helpgate_store_up"].samples[0].value == 1
    http = [
        sample
        for sample in families["helpgate_http_request_duration_seconds"].samples
        if sample.name.endswith("_count")
    ]
    routes = {(sample.labels["route"], sample.labels["status"]) for sample in http}
    assert ("/api/tickets/{number}", "401") in routes
    assert ("unmatched", "404") in routes
    assert not any("987654" in label or "123456" in label for sample in http for label in sample.labels.values())


async def test_store_commands_are_counted_by_command(gateway: Gateway, api: httpx.AsyncClient) -> None:
    """What a mail costs the store shows in /metrics: at least its raw message insert and the ticket insert."""
    assert gateway.smtp is not None
    before = await scrape(api)
    await send(gateway.smtp.port, make_mail())
    await gateway.worker.idle()
    after = await scrape(api)
    assert delta(before, after, "helpgate_store_commands_total", command="insert") >= 3  # raw, ticket, message
    assert delta(before, after, "helpgate_store_commands_total", command="find") >= 1


@pytest.mark.parametrize("settings_overrides", [{"metrics_token": TOKEN}])
async def test_metrics_token_is_required_once_set(api: httpx.AsyncClient) -> None:
    missing = await api.get("/metrics")
    wrong = await api.get("/metrics", headers={"Authorization": "Bearer not-the-token"})
    for refused in (missing, wrong):
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"
        assert "metrics token" in refused.json()["detail"]
    samples = await scrape(api, headers={"Authorization": f"Bearer {TOKEN}"})
    assert value(samples, "helpgate_store_up") == 1


# --- readiness -------------------------------------------------------------------------------------------


async def test_ready_when_every_part_is_up(api: httpx.AsyncClient) -> None:
    response = await api.get("/readyz")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready" and body["not_ready"] == []
    assert set(body["checks"]) == {"store", "smtp", "http", "relay"}
    assert all(check["ok"] for check in body["checks"].values())


@pytest.mark.parametrize("settings_overrides", [{"run_workflows": True, "ready_outbox_max_age_seconds": 60}])
async def test_not_ready_when_the_relay_stopped_with_an_old_event_waiting(
    gateway: Gateway, api: httpx.AsyncClient
) -> None:
    assert (await api.get("/readyz")).status_code == 200
    assert gateway.workflows is not None
    await gateway.workflows.relay.stop()
    await OutboxEvent(name="test/old", key=f"test {uuid.uuid4()}", created_at=utcnow() - timedelta(hours=1)).insert()

    response = await api.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not ready" and body["not_ready"] == ["relay"]
    detail = body["checks"]["relay"]["detail"]
    assert detail.startswith("not running;") and "event is 3600 s old (limit 60 s)" in detail
    samples = await scrape(api)  # the same wait, as Prometheus sees it
    assert value(samples, "helpgate_outbox_events_pending", status="pending") == 1
    assert 3600 <= value(samples, "helpgate_outbox_oldest_pending_seconds") < 3660


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Gateway]:
    gateway = Gateway(settings)
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.stop()
        client = db.make_client(settings.mongodb_uri or "")
        await client.drop_database(settings.mongodb_database)
        await client.close()


async def _readiness(api: httpx.AsyncClient, status: int, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = await api.get("/readyz")
        if response.status_code == status or time.monotonic() > deadline:
            assert response.status_code == status, response.text
            body: dict[str, Any] = response.json()
            return body
        await asyncio.sleep(0.2)


async def test_not_ready_while_inngest_refuses_events_and_ready_again_after(
    tmp_path: Path, store_uri: str, database_name: str
) -> None:
    """The relay runs, but every event it sends is refused: past the age limit the instance is not ready."""
    fake = FakeInngest(event_status=503)
    async with serving(fake.app()) as url:
        fake.base_url = url
        overrides = {
            "run_workflows": True,
            "inngest_dev": "1",
            "inngest_base_url": url,
            "ready_outbox_max_age_seconds": 1.0,
        }
        async with (
            running(make_settings(tmp_path, store_uri, database_name, **overrides)) as gateway,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.http_port}", timeout=30) as api,
        ):
            assert gateway.smtp is not None
            await send(gateway.smtp.port, make_mail())
            await gateway.worker.idle()

            body = await _readiness(api, 503)
            assert body["not_ready"] == ["relay"]
            assert body["checks"]["relay"]["detail"].startswith("running; the oldest undelivered outbox event")
            assert fake.events, "the relay tried to deliver"

            fake.event_status = 200
            body = await _readiness(api, 200)
            assert body["checks"]["relay"]["ok"] is True


# --- structured logs -------------------------------------------------------------------------------------


def _serve_with_json_logs(tmp_path: Path, store_uri: str, database: str) -> tuple[subprocess.Popen[bytes], int, int]:
    http_port, smtp_port = free_port(), free_port()
    env = serve_env(
        store_uri=store_uri,
        database=database,
        data_dir=tmp_path / "data",
        http_port=http_port,
        smtp_port=smtp_port,
        HELPGATE_LOG_FORMAT="json",
        JWT_SECRET="json-logs-secret-of-32-bytes-or-more",
    )
    with (tmp_path / "stderr.log").open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "helpgate", "serve"], env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=stderr
        )
    return process, http_port, smtp_port


def _json_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def test_json_logs_carry_ticket_and_message_id(tmp_path: Path, store_uri: str, database_name: str) -> None:
    process, http_port, smtp_port = _serve_with_json_logs(tmp_path, store_uri, database_name)
    log_path = tmp_path / "stderr.log"
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}", timeout=10) as api:
            deadline = time.monotonic() + 60
            while True:
                assert process.poll() is None, log_path.read_text()
                with contextlib.suppress(httpx.TransportError):
                    if (await api.get("/readyz")).status_code == 200:
                        break
                assert time.monotonic() < deadline, log_path.read_text()
                await asyncio.sleep(0.1)
        await send(smtp_port, make_mail(message_id="<json-logs@example.org>"))
        deadline = time.monotonic() + 60
        while True:
            lines = _json_lines(log_path)  # every line is one JSON object, or this raises
            events = {line.get("event"): line for line in lines}
            if "inbound.processed" in events and "triage.fallback" in events:
                break
            assert time.monotonic() < deadline, log_path.read_text()
            await asyncio.sleep(0.2)
    finally:
        process.terminate()
        process.wait(30)
        client = db.make_client(store_uri)
        await client.drop_database(database_name)
        await client.close()

    processed = events["inbound.processed"]
    assert processed["ticket"] == 1 and processed["message_id"] == "json-logs@example.org"
    assert processed["level"] == "INFO" and processed["logger"] == "helpgate.inbound.pipeline"
    assert processed["time"].endswith("+00:00") and processed["message"].startswith("inbound.processed raw=")
    assert events["triage.fallback"]["ticket"] == 1  # a workflow step's line: the run's ticket
    stored = events["raw.stored"]
    assert "ticket" not in stored  # logged during SMTP, before any ticket: no stale fields
