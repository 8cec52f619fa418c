"""No input crashes parsing: mutated corpus messages either parse or raise MalformedMail, and through the real
pipeline every one ends processed, duplicate, ignored or quarantined with a reason. Over the wire, the same
corpus with mangled line endings, long lines, dots and NULs gets exactly one reply per DATA: 250 and one stored
message with an outcome, or 552 when it is over the size limit, and nothing else.

Deterministic: Hypothesis is derandomized and the pipeline run uses a fixed seed, so CI sees the same inputs.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymongo import AsyncMongoClient

from helpgate.gateway import Gateway
from helpgate.inbound import mime, pipeline, raw_messages
from helpgate.models import RawMessage, RawStatus
from tests.smtp_wire import WireClient

CORPUS = sorted((Path(__file__).parent.parent / "corpus").glob("*.eml"))
SEEDS = [path.read_bytes() for path in CORPUS]
#: Fragments that have broken mail parsers: boundaries, encoded words, RFC 2231 pieces, bytes no charset likes.
NASTY = (
    b"\r\n\r\n",
    b"\r\n--",
    b"\r\n ",
    b"=?utf-8?b?",
    b"=?x-unknown?q?=FF?=",
    b"?=",
    b"\xff\xfe\x00",
    b"\xe9\x80",
    b"\x1b$B",
    b"\x00",
    b'Content-Type: multipart/mixed; boundary=""\r\n',
    b"Content-Type: message/rfc822\r\n\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"filename*0*=utf-8''%FF%FE; filename*1=x",
    b'charset="',
    b"From: <<@>>, =?utf-8?q?a?= <@>\r\n",
    b"Message-ID: <>\r\n",
    b"X-Long: " + b"a" * 2000 + b"\r\n",
    b"<html><body><table><tr><td>" * 20,
)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(0, len(data)))
        operation = draw(st.sampled_from(("flip", "insert", "delete", "truncate")))
        if operation == "flip" and position < len(data):
            data[position] = draw(st.integers(0, 255))
        elif operation == "insert":
            data[position:position] = draw(st.sampled_from(NASTY))
        elif operation == "delete":
            del data[position : position + draw(st.integers(1, 200))]
        elif operation == "truncate":
            del data[position:]
    return bytes(data)


def parses_or_refuses(data: bytes) -> None:
    try:
        mail = mime.parse(data)
    except mime.MalformedMail:
        return
    assert isinstance(mail.text, str) and isinstance(mail.full_text, str) and isinstance(mail.html, str)
    for attachment in mail.attachments:
        assert "/" not in attachment.filename and "\\" not in attachment.filename


@settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_corpus_never_crashes_the_parser(data: bytes) -> None:
    parses_or_refuses(data)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_crash_the_parser(data: bytes) -> None:
    parses_or_refuses(data)


def mutate(data: bytes, rng: random.Random) -> bytes:
    buffer = bytearray(data)
    for _ in range(rng.randint(1, 5)):
        position = rng.randint(0, len(buffer))
        choice = rng.random()
        if choice < 0.4 and position < len(buffer):
            buffer[position] = rng.randint(0, 255)
        elif choice < 0.8:
            buffer[position:position] = rng.choice(NASTY)
        else:
            del buffer[position : position + rng.randint(1, 300)]
    return bytes(buffer)


async def test_mutated_corpus_through_the_pipeline_always_ends_with_an_outcome(
    store: AsyncMongoClient[dict[str, Any]],
) -> None:
    rng = random.Random(20251127)
    inputs = [mutate(seed, rng) for seed in SEEDS for _ in range(3)] + [b"", b"\r\n\r\n", b"garbage"]
    outcomes: dict[RawStatus, int] = {}
    for data in inputs:
        raw = await raw_messages.store(data=data, source="smtp", mailbox="support@localhost")
        status = await pipeline.process(raw)
        stored = await RawMessage.get(raw.id)
        assert stored is not None and stored.status is status
        assert status in (RawStatus.PROCESSED, RawStatus.DUPLICATE, RawStatus.IGNORED, RawStatus.QUARANTINED)
        if status is not RawStatus.PROCESSED:
            assert stored.reason, data[:200]
        if status is RawStatus.QUARANTINED:
            # Quarantined only for what the message lacks, never because a step crashed on it.
            assert " failed: " not in (stored.reason or ""), stored.reason
        outcomes[status] = outcomes.get(status, 0) + 1
    # Each seed is mutated three times and its Message-ID mostly survives, so a mutation delivered after its
    # sibling is a duplicate: delivered too. (Counting processed alone made the bar depend on how many seeds the
    # corpus has: at 26 seeds the fixed RNG gave 39 processed + 31 duplicates of 81.)
    delivered = outcomes.get(RawStatus.PROCESSED, 0) + outcomes.get(RawStatus.DUPLICATE, 0)
    assert delivered > len(inputs) * 3 // 4, outcomes


# --- the transport: the same corpus as raw bytes over a socket to the real listener -------------------------

WIRE_LIMIT = 6000
#: Line ends and dots that end DATA in lax servers; here they must stay content of the one message.
SMUGGLED = (b"\n.\n", b"\n.\r\n", b"\r\n.\n", b"\r.\r", b"\r\n.\r")


def on_the_wire(seed: bytes, rng: random.Random) -> bytes:
    """The seed as a careless client might send it: random line endings, long lines, dot lines, NULs and
    smuggling attempts; dot-stuffed after CRLF as SMTP requires, after a bare LF only sometimes; then the end."""
    lines = re.split(rb"\r?\n", seed)
    for _ in range(rng.randint(0, 3)):
        lines.insert(rng.randint(0, len(lines)), rng.choice((b".", b"..", b". dot", b"." * rng.randint(3, 9))))
    if rng.random() < 0.4:
        lines.insert(rng.randint(0, len(lines)), bytes(rng.choices(b"abcdefgh =", k=rng.randint(1001, 9000))))
    content = b"".join(line + rng.choice((b"\r\n", b"\r\n", b"\n", b"\r\r\n")) for line in lines)
    for _ in range(rng.randint(0, 2)):
        position = rng.randint(0, len(content))
        extra = rng.choice((b"\x00", b"\r", *SMUGGLED)) + b"MAIL FROM:<ceo@example.org>\r\n"
        content = content[:position] + extra + content[position:]
    content = re.sub(rb"(\A|\r\n)\.", rb"\1..", content)
    if rng.random() < 0.5:
        content = re.sub(rb"((?<!\r)\n)\.", rb"\1..", content)
    if not content.endswith(b"\r\n"):
        content += b"\r\n"
    return content + b".\r\n"


@pytest.mark.parametrize("settings_overrides", [{"max_message_bytes": WIRE_LIMIT}])
async def test_mutated_corpus_over_the_wire_gets_one_reply_and_one_outcome_per_data(gateway: Gateway) -> None:
    assert gateway.smtp is not None
    rng = random.Random(20261206)
    inputs = [on_the_wire(seed, rng) for seed in SEEDS for _ in range(2)]
    client = await WireClient.connect(gateway.smtp.port)
    accepted = 0
    try:
        for wire in inputs:
            await client.envelope()  # every reply in step: a smuggled command would put them out of step
            reply = await client.data(wire)
            received = len(wire) - len(b".\r\n")
            assert reply.code == (552 if received > WIRE_LIMIT else 250), (str(reply), wire[:300])
            accepted += reply.code == 250
        assert (await client.command(b"QUIT")).code == 221
    finally:
        await client.close()
    await gateway.worker.idle()

    stored = await RawMessage.find_all().to_list()
    assert len(stored) == accepted and accepted > len(inputs) // 2
    for raw in stored:
        data = await raw_messages.read_bytes(raw)
        assert re.search(rb"(?<!\r)\n", data) is None, data[:300]  # every line ends in CRLF once stored
        assert raw.status in (RawStatus.PROCESSED, RawStatus.DUPLICATE, RawStatus.IGNORED, RawStatus.QUARANTINED)
        assert raw.status is RawStatus.PROCESSED or raw.reason, data[:300]
        assert " failed: " not in (raw.reason or ""), raw.reason
