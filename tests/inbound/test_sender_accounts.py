"""The sender's account, through the real pipeline and store: a new sender becomes a customer once, in one store
command, named from the From header; an account that exists is used as it is; mail that opens no ticket makes none."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from pymongo import AsyncMongoClient
from pymongo.errors import DuplicateKeyError

from helpgate.accounts import users
from helpgate.accounts.users import UserChanges
from helpgate.inbound import pipeline, raw_messages
from helpgate.mail_out import message_ids
from helpgate.models import Message, RawMessage, RawStatus, Role, Ticket, User
from tests.mail import make_mail

Store = AsyncMongoClient[dict[str, Any]]
SECRET = "a-secret-for-reply-addresses"
CORPUS = Path(__file__).parent.parent / "corpus"


async def _deliver(data: bytes) -> RawMessage:
    raw = await raw_messages.store(data=data, source="smtp", mailbox="support@localhost")
    await pipeline.process(raw, policy=pipeline.Policy(secret=SECRET))
    stored = await RawMessage.get(raw.id)
    assert stored is not None
    return stored


def _commands() -> dict[str, float]:
    return {
        name: REGISTRY.get_sample_value("helpgate_store_commands_total", {"command": name}) or 0.0
        for name in ("find", "insert", "findAndModify", "update")
    }


def _created(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.getMessage().startswith("user.created")]


async def test_a_new_sender_becomes_a_customer_named_from_the_from_header_once(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="helpgate.accounts.users")
    await _deliver(bytes(make_mail(sender="Jane Doe <Jane@Example.org>", subject="Printer on fire")))
    await _deliver(bytes(make_mail(sender="Janet <jane@example.org>", subject="Scanner too")))

    [stored] = await User.get_pymongo_collection().find({}).to_list()
    assert {key: stored[key] for key in ("email", "name", "role", "password_hash", "active", "skills", "away")} == {
        "email": "jane@example.org",
        "name": "Jane Doe",  # the first mail's; a later From does not rename the account
        "role": "customer",
        "password_hash": None,
        "active": True,
        "skills": [],
        "away": False,
    }
    every_field = User(email="x@example.org").model_dump(by_alias=True, exclude={"id"}).keys() | {"_id"}
    assert stored.keys() == every_field  # the whole document, as an insert of the model writes it
    tickets = await Ticket.find_all().sort("number").to_list()
    assert [ticket.requester.user_id for ticket in tickets] == [stored["_id"], stored["_id"]]
    assert _created(caplog) == [f"user.created id={stored['_id']} role=customer source=mail"]


async def test_a_customer_is_found_or_made_in_one_command(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="helpgate.accounts.users")
    before = _commands()
    made = await users.get_or_create_customer(email=" Jane@Example.org ", name="Jane Doe")
    between = _commands()
    found = await users.get_or_create_customer(email="jane@example.org", name="Someone Else")
    after = _commands()

    assert {name: between[name] - before[name] for name in before} == {
        "find": 0,
        "insert": 0,
        "findAndModify": 1,
        "update": 0,
    }
    assert {name: after[name] - between[name] for name in before} == {
        "find": 0,
        "insert": 0,
        "findAndModify": 1,
        "update": 0,
    }
    assert found.id == made.id and (found.email, found.name) == ("jane@example.org", "Jane Doe")
    assert await User.get(made.id) == made.model_copy(update={"created_at": found.created_at})
    assert len(_created(caplog)) == 1


async def test_senders_writing_at_once_make_one_customer_logged_once(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="helpgate.accounts.users")
    made = await asyncio.gather(*(users.get_or_create_customer(email="jane@example.org") for _ in range(8)))

    assert len({user.id for user in made}) == 1
    assert await User.find_all().count() == 1 and len(_created(caplog)) == 1


async def test_an_upsert_that_loses_the_race_on_the_address_returns_the_winners_account(
    store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Two upserts of one new address can both insert; the unique index refuses the second (MongoDB retries some
    of these itself), which then returns the account the other one made."""
    collection = User.get_pymongo_collection()
    winner = await users.create(actor=None, email="winner@example.org", role=Role.CUSTOMER, name="Jane")

    class Raced:
        def __getattr__(self, name: str) -> Any:
            return getattr(collection, name)

        async def find_one_and_update(self, *args: Any, **kwargs: Any) -> Any:
            await collection.update_one({"_id": winner.id}, {"$set": {"email": "jane@example.org"}})  # it wins
            raise DuplicateKeyError("E11000 duplicate key error collection: users index: email_unique")

    monkeypatch.setattr(User, "get_pymongo_collection", classmethod(lambda cls: Raced()))
    caplog.set_level(logging.INFO, logger="helpgate.accounts.users")
    caplog.clear()

    found = await users.get_or_create_customer(email="jane@example.org", name="Jane Doe")

    monkeypatch.undo()
    assert found.id == winner.id and found.name == "Jane"
    assert await User.find_all().count() == 1 and _created(caplog) == []


async def test_mail_from_an_inactive_customer_opens_a_ticket_on_the_account_as_it_is(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    jane = await users.create(actor=None, email="jane@example.org", role=Role.CUSTOMER, name="Jane Account")
    await users.update(actor="admin@acme.test", user_id=str(jane.id), changes=UserChanges(active=False))
    before = await User.get_pymongo_collection().find_one({"_id": jane.id})
    caplog.set_level(logging.INFO, logger="helpgate.accounts.users")
    caplog.clear()

    raw = await _deliver(bytes(make_mail(sender="Jane Doe <jane@example.org>")))

    assert raw.status is RawStatus.PROCESSED
    [ticket] = await Ticket.find_all().to_list()
    assert ticket.requester.user_id == jane.id
    assert await User.get_pymongo_collection().find({}).to_list() == [before]  # not renamed, still inactive
    assert _created(caplog) == []


async def test_mail_from_staff_stays_theirs_and_makes_no_customer(store: Store) -> None:
    ann = await users.create(actor=None, email="ann@acme.test", role=Role.AGENT, name="Ann")

    await _deliver(bytes(make_mail(sender="Ann <ann@acme.test>", subject="A note for myself")))

    [ticket] = await Ticket.find_all().to_list()
    assert ticket.requester.user_id == ann.id
    assert [user.role for user in await User.find_all().to_list()] == [Role.AGENT]


async def test_a_strangers_mail_to_a_tickets_reply_address_makes_no_account(store: Store) -> None:
    await _deliver(bytes(make_mail(sender="jane@example.org")))
    address = message_ids.reply_address(1, secret=SECRET, address="support@localhost")

    raw = await _deliver(bytes(make_mail(sender="Bob <bob@example.org>", to=address, subject="About Jane's")))

    assert raw.status is RawStatus.PROCESSED and raw.ticket_number == 1
    assert await Message.find({"ticket_number": 1}).count() == 2
    assert [user.email for user in await User.find_all().to_list()] == ["jane@example.org"]


async def test_a_strangers_reply_that_finds_no_ticket_makes_the_customer_of_its_new_ticket(store: Store) -> None:
    raw = await _deliver(bytes(make_mail(sender="Bob <bob@example.org>", subject="Re: something long ago")))

    [bob] = await User.find_all().to_list()
    [ticket] = await Ticket.find_all().to_list()
    assert raw.status is RawStatus.PROCESSED and ticket.requester.user_id == bob.id
    assert (bob.email, bob.name, bob.role) == ("bob@example.org", "Bob", Role.CUSTOMER)


async def test_a_delivery_report_about_no_ticket_makes_no_account(store: Store) -> None:
    raw = await _deliver((CORPUS / "dsn_bounce.eml").read_bytes())

    assert raw.status is RawStatus.IGNORED
    assert await User.find_all().count() == 0
