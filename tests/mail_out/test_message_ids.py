"""Signed Message-IDs and reply addresses: they name their ticket, and nobody else can make one."""

from __future__ import annotations

import pytest

from helpgate.mail_out import message_ids

SECRET = "a-secret-key-of-at-least-thirty-two-bytes"
OTHER = "another-secret-key-of-thirty-two-bytes!!"


def test_message_id_names_its_ticket() -> None:
    made = message_ids.make(42, secret=SECRET, domain="acme.test")
    assert made.startswith("hg.42.") and made.endswith("@acme.test")
    assert message_ids.ticket_of(made, secret=SECRET) == 42
    assert message_ids.ticket_of(f"<{made}>", secret=SECRET) == 42
    assert message_ids.ticket_of(made.upper(), secret=SECRET) == 42  # some MTAs change case


def test_message_ids_are_unique() -> None:
    assert len({message_ids.make(1, secret=SECRET, domain="x") for _ in range(100)}) == 100


@pytest.mark.parametrize(
    "tamper",
    [
        lambda m: m.replace("hg.42.", "hg.43.", 1),  # another ticket
        lambda m: m[: m.index("@") - 1] + ("0" if m[m.index("@") - 1] != "0" else "1") + m[m.index("@") :],
        lambda m: m.replace("hg.", "xx.", 1),
        lambda m: "first@example.org",
        lambda m: "",
    ],
)
def test_tampered_message_id_names_no_ticket(tamper: object) -> None:
    made = message_ids.make(42, secret=SECRET, domain="acme.test")
    assert callable(tamper)
    assert message_ids.ticket_of(tamper(made), secret=SECRET) is None


def test_message_id_from_another_installation_names_no_ticket() -> None:
    assert message_ids.ticket_of(message_ids.make(42, secret=OTHER, domain="x"), secret=SECRET) is None


def test_ticket_zero_means_no_ticket() -> None:
    assert message_ids.ticket_of(message_ids.make(0, secret=SECRET, domain="x"), secret=SECRET) is None


def test_reply_address_round_trip() -> None:
    address = message_ids.reply_address(7, secret=SECRET, address="support@acme.test")
    assert address.startswith("support+7.") and address.endswith("@acme.test")
    assert address == message_ids.reply_address(7, secret=SECRET, address="support@acme.test")  # stable
    assert message_ids.ticket_of_address(address, secret=SECRET) == 7
    assert message_ids.ticket_of_address(f"<{address.upper()}>", secret=SECRET) == 7
    assert message_ids.ticket_of_address(address, secret=OTHER) is None
    assert message_ids.ticket_of_address(address.replace("+7.", "+8."), secret=SECRET) is None
    assert message_ids.ticket_of_address("support@acme.test", secret=SECRET) is None
    assert message_ids.ticket_of_address("support+hello@acme.test", secret=SECRET) is None


def test_a_message_id_mac_is_no_reply_address_mac() -> None:
    made = message_ids.make(5, secret=SECRET, domain="x")
    mac = made.split("@")[0].rsplit(".", 1)[1]
    assert message_ids.ticket_of_address(f"support+5.{mac}@x", secret=SECRET) is None


def test_base_address_drops_the_tag() -> None:
    assert message_ids.base_address("support+7.abcdef0123@acme.test") == "support@acme.test"
    assert message_ids.base_address("support@acme.test") == "support@acme.test"
