"""The counters: one document, one command per change of several of them, and the upgrade from the previous
version's one document per counter, on the real embedded store."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from helpgate.accounts import users
from helpgate.core import db
from helpgate.core.settings import Settings
from helpgate.gateway import Gateway
from helpgate.models import Direction, Role
from helpgate.tickets import counters, tickets
from helpgate.tickets.tickets import NewMessage
from tests.conftest import login, make_user
from tests.store_commands import Commands

Store = AsyncMongoClient[dict[str, Any]]
OLD_SHAPE = [  # as the previous version left a store with 41 tickets opened, 3 of them kept
    {"_id": "ticket_number", "value": 41},
    {"_id": "tickets_total", "value": 3},
    {"_id": "tickets:new:none", "value": 2},
    {"_id": "tickets:solved:high", "value": 1},
    {"_id": "ticket_counters_version", "value": 1},
    {"_id": "categories_seeded", "value": 1},
]


async def test_a_ticket_takes_its_number_and_its_queue_counts_in_one_command(commands: Commands, store: Store) -> None:
    customer = await users.get_or_create_customer(email="c@example.org")
    first = NewMessage(dedupe_key="k", direction=Direction.INBOUND, from_email="c@example.org", text="hi")
    commands.recording = True

    ticket = await tickets.open_ticket(requester=customer, subject="s", mailbox=None, first=first)

    commands.recording = False
    assert commands.on("counters") == ["findAndModify"]
    assert ticket.number == 1
    assert await counters.values([counters.TICKETS_TOTAL, counters.ticket_bucket("new", None)]) == {
        counters.TICKETS_TOTAL: 1,
        counters.ticket_bucket("new", None): 1,
    }


async def test_a_move_between_two_counters_is_one_command(commands: Commands, store: Store) -> None:
    await counters.increment_all(["a:one"], by=2)
    commands.recording = True

    await counters.move("a:one", "a:two")

    commands.recording = False
    assert commands.on("counters") == ["update"]
    assert await counters.values(["a:one", "a:two"]) == {"a:one": 1, "a:two": 1}


async def test_names_with_dots_dollars_and_percent_signs_are_counters_of_their_own(store: Store) -> None:
    names = ["a.b", "a", "$a", "a%2Eb", "a%b", "a:b"]
    for by, name in enumerate(names, start=1):
        await counters.increment(name, by)

    assert await counters.values(names) == {name: by for by, name in enumerate(names, start=1)}
    assert await counters.current("b") == 0
    with pytest.raises(ValueError):
        await counters.increment("")


async def test_a_name_given_twice_in_one_write_counts_twice(store: Store) -> None:
    assert await counters.increment("n", also=["n", "m"]) == 2
    await counters.increment_all(["m", "m"])
    assert await counters.values(["n", "m"]) == {"n": 2, "m": 3}


async def test_reset_overwrites_only_the_counters_it_names(store: Store) -> None:
    await counters.increment_all(["kept", "reset"], by=5)
    await counters.reset({"reset": 1, "new": 2})
    assert await counters.values(["kept", "reset", "new"]) == {"kept": 5, "reset": 1, "new": 2}


# --- the upgrade from one document per counter --------------------------------------------------------


async def _write_old_shape(settings: Settings) -> None:
    client: Store = db.make_client(settings.mongodb_uri or "")
    try:
        await client[settings.mongodb_database]["counters"].insert_many(OLD_SHAPE)
    finally:
        await client.close()


async def test_a_store_of_the_previous_version_keeps_its_numbers_and_counts(settings: Settings) -> None:
    await _write_old_shape(settings)
    gateway = Gateway(settings)
    await gateway.start()
    try:
        base_url = f"http://127.0.0.1:{gateway.http_port}"
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as api:
            await make_user("agent@example.com", Role.AGENT)
            await make_user("alice@example.org", Role.CUSTOMER)
            agent, alice = await login(api, "agent@example.com"), await login(api, "alice@example.org")
            opened = await api.post("/api/tickets", json={"subject": "Hello", "text": "Help."}, headers=alice)
            stats = (await api.get("/api/tickets/stats", headers=agent)).json()
            queue = (await api.get("/api/tickets", headers=agent)).json()

        assert opened.status_code == 201 and opened.json()["number"] == 42
        assert stats["by_status"] == {"new": 3, "open": 0, "pending": 0, "solved": 1, "closed": 0}
        assert queue["total"] == 4  # the old total and the new ticket: counted, not recounted from 1 ticket
        assert gateway.client is not None
        left = await gateway.client[settings.mongodb_database]["counters"].find({}).to_list()
        assert [document["_id"] for document in left] == [counters.DOCUMENT_ID]
    finally:
        await gateway.stop()
        await _drop(settings)


async def _drop(settings: Settings) -> None:
    client: Store = db.make_client(settings.mongodb_uri or "")
    await client.drop_database(settings.mongodb_database)
    await client.close()


async def test_instances_starting_together_fold_each_old_counter_once(store: Store, database_name: str) -> None:
    await counters.increment(counters.TICKET_NUMBER, 2)  # ticket numbers taken by a new instance meanwhile
    await store[database_name]["counters"].insert_many(OLD_SHAPE)

    moved = await asyncio.gather(*(counters.fold_old_documents() for _ in range(3)))

    assert sum(moved) == len(OLD_SHAPE)
    assert await counters.values([counters.TICKET_NUMBER, "tickets:new:none", counters.TICKETS_TOTAL]) == {
        counters.TICKET_NUMBER: 43,
        "tickets:new:none": 2,
        counters.TICKETS_TOTAL: 3,
    }
    assert await store[database_name]["counters"].count_documents({}) == 1


async def test_a_fold_cut_off_before_deleting_adds_nothing_twice_on_the_next_start(
    store: Store, database_name: str
) -> None:
    collection = store[database_name]["counters"]
    await collection.insert_many(OLD_SHAPE)
    await counters.fold_old_documents()
    await collection.insert_one({"_id": "ticket_number", "value": 41})  # added, its document not deleted yet

    assert await counters.fold_old_documents() == 0
    assert await counters.increment(counters.TICKET_NUMBER) == 42
    assert await collection.count_documents({}) == 1


async def test_a_store_without_old_counters_is_not_written_to(store: Store, database_name: str) -> None:
    assert await counters.fold_old_documents() == 0
    assert await store[database_name]["counters"].count_documents({}) == 0  # `helpgate import` needs it empty
