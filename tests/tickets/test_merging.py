"""Merging a ticket into another over the API: messages move, the merged ticket closes and names the one that
remains, mail answering either lands there, and what may not merge is refused."""

from __future__ import annotations

import httpx
import pytest

from helpgate.core.clock import utcnow
from helpgate.gateway import Gateway
from helpgate.models import AuditEntry, OutboxEvent, Role, Ticket, UnfinishedChange
from helpgate.tickets import merging, unfinished
from tests.conftest import login, make_user
from tests.mail import make_mail, send

JANE = "jane@example.org"


async def mailed(gateway: Gateway, subject: str, sender: str = JANE, **headers: str) -> None:
    assert gateway.smtp is not None
    await send(gateway.smtp.port, make_mail(sender=sender, subject=subject, **headers), sender=sender)
    await gateway.worker.idle()


async def test_a_merged_ticket_moves_its_messages_and_mail_to_either_lands_on_the_one_that_remains(
    gateway: Gateway, api: httpx.AsyncClient
) -> None:
    await make_user("agent@example.com", Role.AGENT)
    agent = await login(api, "agent@example.com")
    await mailed(gateway, "Printer broken", message_id="<first@example.org>")
    await mailed(gateway, "Printer still broken", message_id="<second@example.org>")  # the split conversation
    reply = await api.post("/api/tickets/2/replies", json={"text": "Which model is it?"}, headers=agent)
    assert reply.status_code == 201

    merged = await api.post("/api/tickets/2/merge", json={"into": 1}, headers=agent)
    assert merged.status_code == 200, merged.text
    assert merged.json()["number"] == 1 and merged.json()["merged_from"] == [2]
    assert merged.json()["message_count"] == 3

    source = (await api.get("/api/tickets/2", headers=agent)).json()
    assert source["status"] == "closed" and source["merged_into"] == 1 and source["messages"] == []
    target = (await api.get("/api/tickets/1", headers=agent)).json()
    texts = [message["text"] for message in target["messages"]]
    assert texts[1:] == ["Help, the printer is on fire.", "Which model is it?"]
    assert target["messages"][2]["delivery"] is not None  # the reply's delivery moved with it

    # Jane answers the agent's reply, and her own second mail: both land on ticket 1.
    await mailed(gateway, "Re: Printer still broken", in_reply_to=f"<{reply.json()['message_id']}>")
    await mailed(gateway, "Re: Printer still broken", in_reply_to="<second@example.org>")
    assert await Ticket.find().count() == 2
    target = (await api.get("/api/tickets/1", headers=agent)).json()
    assert target["message_count"] == 5

    entry = await AuditEntry.find_one({"action": "ticket.merged"})
    assert entry is not None and entry.actor_email == "agent@example.com" and entry.changes == {"merged_into": 1}


async def test_what_may_not_merge_is_refused_and_a_merged_ticket_takes_no_more_work(
    gateway: Gateway, api: httpx.AsyncClient
) -> None:
    await make_user("agent@example.com", Role.AGENT)
    agent = await login(api, "agent@example.com")
    await mailed(gateway, "One")
    await mailed(gateway, "Two")
    await mailed(gateway, "Someone else's", sender="omar@example.net")
    await mailed(gateway, "Three")

    assert (await api.post("/api/tickets/1/merge", json={"into": 1}, headers=agent)).status_code == 422
    other = await api.post("/api/tickets/1/merge", json={"into": 3}, headers=agent)
    assert other.status_code == 409 and "different requesters" in other.json()["detail"]
    assert (await api.post("/api/tickets/2/merge", json={"into": 1}, headers=agent)).status_code == 200
    again = await api.post("/api/tickets/2/merge", json={"into": 4}, headers=agent)
    assert again.status_code == 409 and "merged into ticket 1 already" in again.json()["detail"]
    into_merged = await api.post("/api/tickets/4/merge", json={"into": 2}, headers=agent)
    assert into_merged.status_code == 409 and "merge into that one" in into_merged.json()["detail"]

    for refused in (
        await api.post("/api/tickets/2/replies", json={"text": "hello"}, headers=agent),
        await api.post("/api/tickets/2/notes", json={"text": "hello"}, headers=agent),
        await api.patch("/api/tickets/2", json={"status": "open"}, headers=agent),
    ):
        assert refused.status_code == 409 and "was merged into ticket 1" in refused.json()["detail"]

    # A merge cut off after its first write is finished by asking again.
    await Ticket.find_one({"number": 4}).update({"$set": {"merged_into": 1, "status": "closed"}})
    finished = await api.post("/api/tickets/4/merge", json={"into": 1}, headers=agent)
    assert finished.status_code == 200 and finished.json()["merged_from"] == [2, 4]
    assert finished.json()["message_count"] == 3


async def test_a_merge_cut_off_after_its_claim_is_finished_once_by_the_finisher(
    gateway: Gateway, api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await make_user("agent@example.com", Role.AGENT)
    agent = await login(api, "agent@example.com")
    await mailed(gateway, "Printer broken")
    await mailed(gateway, "Printer still broken")

    async def cut_off(*_args: object, **_kwargs: object) -> None:  # the instance stops right after the claim
        raise ConnectionError("cut off")

    monkeypatch.setattr(merging, "finish_merge", cut_off)
    cut = await api.post("/api/tickets/2/merge", json={"into": 1}, headers=agent)
    monkeypatch.undo()
    assert cut.status_code == 500
    source = (await api.get("/api/tickets/2", headers=agent)).json()
    assert source["merged_into"] == 1 and len(source["messages"]) == 1  # claimed, nothing moved yet

    await gateway.finish_changes(now=utcnow())  # younger than the grace: maybe still in progress
    assert (await api.get("/api/tickets/1", headers=agent)).json()["message_count"] == 1
    later = utcnow() + unfinished.GRACE * 2
    await gateway.finish_changes(now=later)
    await gateway.finish_changes(now=later)

    target = (await api.get("/api/tickets/1", headers=agent)).json()
    assert target["message_count"] == 2 and target["merged_from"] == [2]
    assert (await api.get("/api/tickets/2", headers=agent)).json()["messages"] == []
    assert await AuditEntry.find({"action": "ticket.merged"}).count() == 1
    assert await OutboxEvent.find({"name": "ticket/merged"}).count() == 1
    assert await OutboxEvent.find({"name": "ticket/updated", "data.ticket_number": 2}).count() == 1
    assert await UnfinishedChange.find_all().count() == 0
    # Asking again once it is finished changes nothing and announces nothing more.
    again = await api.post("/api/tickets/2/merge", json={"into": 1}, headers=agent)
    assert again.status_code == 200 and again.json()["message_count"] == 2
    assert await OutboxEvent.find({"name": "ticket/updated", "data.ticket_number": 2}).count() == 1
