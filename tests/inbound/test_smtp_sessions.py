"""SessionSlots and client_of on their own: the caps, the release, what counts as one client."""

from __future__ import annotations

import pytest

from helpgate.inbound.smtp_sessions import Refusal, SessionSlots, client_of


def test_a_client_at_its_cap_is_refused_while_others_are_admitted() -> None:
    slots = SessionSlots(total=10, per_client=2)
    assert [slots.admit("192.0.2.1") for _ in range(3)] == [None, None, Refusal.TOO_MANY_FROM_CLIENT]
    assert slots.admit("192.0.2.2") is None
    assert (slots.open, slots.of("192.0.2.1")) == (3, 2)


def test_the_total_cap_refuses_every_client() -> None:
    slots = SessionSlots(total=2, per_client=2)
    assert [slots.admit(f"192.0.2.{n}") for n in range(3)] == [None, None, Refusal.TOO_MANY_SESSIONS]


def test_a_released_slot_is_free_again_and_an_idle_client_is_forgotten() -> None:
    slots = SessionSlots(total=1, per_client=1)
    assert slots.admit("192.0.2.1") is None
    slots.release("192.0.2.1")
    assert slots.open == 0 and slots._by_client == {}
    assert slots.admit("192.0.2.9") is None


@pytest.mark.parametrize(
    ("address", "client"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::9%eth0", "2001:db8:1:2::/64"),
        ("not an address", "not an address"),
    ],
)
def test_a_client_is_its_ipv4_address_or_its_ipv6_slash_64(address: str, client: str) -> None:
    assert client_of(address) == client
