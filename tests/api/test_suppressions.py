"""Admins list suppressed addresses and lift them, over the API and the CLI; each lift is audited."""

from __future__ import annotations

import asyncio

import httpx

from helpgate.core.settings import Settings
from helpgate.gateway import Gateway
from helpgate.mail_out import suppressions
from helpgate.models import AuditEntry, Role, Suppression
from tests.cli import run_cli
from tests.conftest import login, make_user


async def test_admin_lists_and_lifts_a_suppression_and_it_is_audited(gateway: Gateway, api: httpx.AsyncClient) -> None:
    await suppressions.suppress(address="gone@example.org", reason="bounced 5.1.1 user unknown")
    await suppressions.suppress(address="full@example.org", reason="bounced 5.2.2 mailbox full")
    await make_user("admin@example.com", Role.ADMIN)
    await make_user("agent@example.com", Role.AGENT)
    admin = await login(api, "admin@example.com")

    listed = (await api.get("/api/suppressions", headers=admin)).json()
    assert listed["total"] == 2
    assert {item["address"]: item["reason"] for item in listed["items"]} == {
        "gone@example.org": "bounced 5.1.1 user unknown",
        "full@example.org": "bounced 5.2.2 mailbox full",
    }
    agent = await login(api, "agent@example.com")
    assert (await api.delete("/api/suppressions/gone@example.org", headers=agent)).status_code == 403
    assert (await api.delete("/api/suppressions/Gone@Example.org", headers=admin)).status_code == 204
    assert (await api.delete("/api/suppressions/gone@example.org", headers=admin)).status_code == 404

    assert [s.address for s in await Suppression.find_all().to_list()] == ["full@example.org"]
    [entry] = await AuditEntry.find({"action": "suppression.lifted"}).to_list()
    assert (entry.actor_email, entry.target_id) == ("admin@example.com", "gone@example.org")


async def test_the_cli_lists_and_lifts_as_an_audited_system_actor(gateway: Gateway, settings: Settings) -> None:
    await suppressions.suppress(address="gone@example.org", reason="bounced 5.1.1 user unknown")

    listed = await asyncio.to_thread(run_cli, "suppressions", "list", settings=settings)
    assert listed.returncode == 0 and "gone@example.org\t" in listed.stdout and "5.1.1" in listed.stdout
    lifted = await asyncio.to_thread(run_cli, "suppressions", "lift", "gone@example.org", settings=settings)
    assert lifted.returncode == 0, lifted.stderr
    again = await asyncio.to_thread(run_cli, "suppressions", "lift", "gone@example.org", settings=settings)
    assert again.returncode == 1 and "not suppressed" in again.stderr

    assert await Suppression.find_all().count() == 0
    [entry] = await AuditEntry.find({"action": "suppression.lifted"}).to_list()
    assert entry.actor_id is None and entry.actor_email.startswith("cli:") and entry.target_id == "gone@example.org"
