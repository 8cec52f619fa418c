"""Address headers read from the raw value: an encoded-word is never an address (RFC 2047 §5)."""

from __future__ import annotations

import pytest

from helpgate.inbound import addresses, mime

ATTACKER = "attacker.example"


def read(value: str) -> list[tuple[str, str]]:
    return addresses.read([value], header="From")


@pytest.mark.parametrize(
    ("word", "shape"),
    [
        ("=?utf-8?q?jane=40example.org=3e=00?=", "NUL, '@' and '>'"),
        ("=?utf-8?q?jane=40example.org?=", "'@' inside"),
        ("=?utf-8?b?amFuZUBleGFtcGxlLm9yZw==?=", "'@' inside, base64"),
        ("=?utf-8?q?=22jane=40example.org=22?=", "quotes"),
        ("=?utf-8?q?=3Cjane=40example.org=3E?=", "angle brackets"),
        ("=?utf-8?q?jane_doe?=", "a space"),
        ("=?utf-8?q?jane=01=7F?=", "control characters"),
        ("=?utf-8?q?jane=E2=80=AEgro.elpmaxe?=", "a right-to-left override"),
    ],
)
def test_encoded_word_in_a_local_part_that_decodes_to_no_plain_atom_is_taken_literally(word: str, shape: str) -> None:
    [(_name, address)] = read(f"{word}@{ATTACKER}")
    assert address == f"{word}@{ATTACKER}".lower(), shape
    local = address.rpartition("@")[0]
    assert not any(char in local for char in '@"<> ') and local.isprintable()


@pytest.mark.parametrize(
    ("value", "address"),
    [
        ("=?utf-8?Q?agent?=@example.com", "agent@example.com"),
        ("Agent <=?utf-8?Q?agent?=@example.com>", "agent@example.com"),
        ("=?utf-8?q?j=C3=BCrgen?=@example.de", "jürgen@example.de"),
        ("jane@=?utf-8?q?example.org?=", "jane@example.org"),
    ],
)
def test_encoded_word_that_decodes_to_a_plain_atom_is_kept(value: str, address: str) -> None:
    assert [found for _, found in read(value)] == [address]


def test_encoded_word_in_a_domain_that_decodes_to_no_domain_is_taken_literally() -> None:
    assert read("jane@=?utf-8?q?example.org=3E?=") == [("", "jane@=?utf-8?q?example.org=3e?=")]


def test_literal_that_is_no_atom_either_is_refused() -> None:
    # Q text holding a raw '@': the literal would put an '@' in the local part.
    assert read(f"=?utf-8?q?jane@example.org?=@{ATTACKER}") == []


@pytest.mark.parametrize(
    "value",
    [f'"jane@example.org"@{ATTACKER}', f'"jane@example.org>\x00"@{ATTACKER}', f'"<jane>"@{ATTACKER}'],
)
def test_raw_quoted_local_part_holding_at_angle_brackets_or_nul_is_refused(value: str) -> None:
    assert read(value) == []


def test_quoted_string_with_no_domain_is_no_address_and_the_reply_to_answers() -> None:
    # The lenient parser would drop the quotes and read jane's address.
    assert read('"jane@example.org"') == []
    mail = mime.parse(b'From: "jane@example.org"\r\nReply-To: <x@attacker.example>\r\nSubject: x\r\n\r\nbody\r\n')
    assert mail.from_email == "x@attacker.example"


def test_raw_quoted_local_part_with_spaces_is_kept_quoted() -> None:
    assert read('"John Doe"@example.org') == [("", '"john doe"@example.org')]


def test_display_names_are_still_decoded_and_never_become_an_address() -> None:
    value = (
        "=?utf-8?q?=3Cjane=40example.org=3E?= <x@attacker.example>, "
        "=?utf-8?q?M=C3=BCller,_Hans?= <hans@example.de>, =?utf-8?q?Jane_=00Doe?= <jd@example.org>"
    )
    assert read(value) == [
        ("<jane@example.org>", "x@attacker.example"),
        ("Müller, Hans", "hans@example.de"),
        ("Jane Doe", "jd@example.org"),
    ]


def test_word_that_is_no_valid_encoded_word_stays_literal() -> None:
    assert read("=?utf-8?Q?attacker?Q?agent?=@victim.example") == [("", "=?utf-8?q?attacker?q?agent?=@victim.example")]


@pytest.mark.parametrize("header", ["From", "Sender", "Reply-To", "To", "Cc"])
def test_every_address_header_follows_the_rule(header: str) -> None:
    attack = f"=?utf-8?q?jane=40example.org=3e=00?=@{ATTACKER}"
    sender = "" if header in ("From", "Sender", "Reply-To") else "From: someone@example.net\r\n"
    mail = mime.parse(f"{sender}{header}: {attack}\r\nSubject: x\r\n\r\nbody\r\n".encode())
    found = [mail.from_email, *mail.to, *mail.cc]
    assert attack.lower() in found
    assert not any("jane@example.org" in address or "\x00" in address for address in found)
