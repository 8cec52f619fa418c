"""The category catalog: a store starts with the defaults, admins replace it (API and command line, audited),
and triage files tickets under the store's catalog, falling back to "other"."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from helpgate.gateway import Gateway
from helpgate.models import AuditEntry, Role, Ticket
from helpgate.tickets import categories
from helpgate.tickets.categories import DEFAULTS
from tests.cli import run_cli
from tests.conftest import login, make_user
from tests.mail import make_mail, send


async def test_a_store_starts_with_the_defaults_and_admins_replace_the_catalog(
    gateway: Gateway, api: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await make_user("agent@example.com", Role.AGENT)
    agent = await login(api, "agent@example.com")
    listed = await api.get("/api/categories", headers=agent)
    assert listed.status_code == 200
    assert [entry["name"] for entry in listed.json()] == [entry.name for entry in DEFAULTS]
    assert listed.json()[0]["keywords"][:2] == ["invoice*", "refund*"]

    wanted = [
        {"name": "Bug", "description": "something that should work and does not", "keywords": ["Crash", " error "]},
        {"name": "billing"},
    ]
    replaced = await api.put("/api/categories", json=wanted, headers=admin)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json() == [
        {"name": "bug", "description": "something that should work and does not", "keywords": ["crash", "error"]},
        {"name": "billing", "description": "", "keywords": []},
    ]
    assert (await api.put("/api/categories", json=wanted, headers=agent)).status_code == 403
    twice = await api.put("/api/categories", json=[{"name": "bug"}, {"name": "BUG"}], headers=admin)
    assert twice.status_code == 422 and "listed twice" in twice.text
    bad = await api.put("/api/categories", json=[{"name": "no spaces please"}], headers=admin)
    assert bad.status_code == 422 and "invalid category name" in bad.text
    entry = await AuditEntry.find_one({"action": "categories.replaced"})
    assert entry is not None and entry.changes == {"categories": ["bug", "billing"]}

    await categories.ensure_defaults()  # as every start-up does: the defaults are written once, never again
    assert [each["name"] for each in (await api.get("/api/categories", headers=agent)).json()] == ["bug", "billing"]


@pytest.mark.parametrize("settings_overrides", [{"run_workflows": True}])
async def test_triage_files_tickets_under_the_stores_catalog(
    gateway: Gateway, api: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    assert gateway.smtp is not None
    catalog = [{"name": "printers", "keywords": ["printer", "toner"]}, {"name": "billing", "keywords": ["invoice"]}]
    assert (await api.put("/api/categories", json=catalog, headers=admin)).status_code == 200
    await send(gateway.smtp.port, make_mail(subject="The printer is on fire", body="Help, it is burning."))
    await send(gateway.smtp.port, make_mail(subject="Hello", body="Just saying hello."))
    async with asyncio.timeout(30):
        while len(found := [t for t in await Ticket.find().sort("number").to_list() if t.triage is not None]) < 2:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    assert [ticket.category for ticket in found] == ["printers", "other"]


async def test_the_command_line_prints_and_replaces_the_catalog(gateway: Gateway, tmp_path: Path) -> None:
    wanted = [{"name": "shipping", "description": "parcels", "keywords": ["parcel"]}]
    file = tmp_path / "categories.json"
    file.write_text(json.dumps(wanted))
    replaced = await asyncio.to_thread(run_cli, "categories", "set", str(file), settings=gateway.settings)
    assert replaced.returncode == 0, replaced.stderr
    assert json.loads(replaced.stdout) == wanted and "audited as cli:" in replaced.stderr
    listed = await asyncio.to_thread(run_cli, "categories", "list", settings=gateway.settings)
    assert json.loads(listed.stdout) == wanted
    file.write_text('[{"name": ""}]')
    refused = await asyncio.to_thread(run_cli, "categories", "set", str(file), settings=gateway.settings)
    assert refused.returncode == 2 and "not valid" in refused.stderr
