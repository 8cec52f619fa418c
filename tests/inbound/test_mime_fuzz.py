"""No input crashes parsing: mutated corpus messages either parse or raise MalformedMail, and through the real
pipeline every one ends processed, duplicate, ignored or quarantined with a reason.

Deterministic: Hypothesis is derandomized and the pipeline run uses a fixed seed, so CI sees the same inputs.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymongo import AsyncMongoClient

from helpgate.core.models import RawMessage, RawStatus
from helpgate.core.services import raw_messages
from helpgate.inbound import mime, pipeline

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
