"""The shared Zammad corpus delivered over SMTP exactly as the files are, read back through the API.

A new user's first test of a helpdesk: real-world mail (109 messages from Zammad's parser tests, third-party data
read at run time from ``../shared/corpus/zammad-mail/``, never copied into this repository) sent to helpgate's
SMTP listener with ``smtplib`` as bytes (bare-LF line endings and long lines left as they are, dot-stuffed as any
client does), then each message read back as an agent sees it, ``GET /api/tickets/{number}``. It prints:

* accepted: how many got a 250 (target: all of them);
* with delivery reports left aside (they attach to the ticket they return, never open one): subject (the
  message's subject equals Zammad's, whitespace squeezed; target ≥ 97%), sender (``from.email`` equals Zammad's
  ``from_email``, where that is a valid addr-spec; target ≥ 95%) and body words (Zammad's three words found in
  ``text``, ``full_text`` or the text of ``html``; Zammad's "no visible content" placeholder left aside;
  target ≥ 90%);
* each miss, by file.

The gateway runs in this process on the embedded store (a child process, as ``helpgate serve`` runs it) with free
ports on 127.0.0.1; an agent is created in the store and logs in over HTTP like any client.

Run::

    cd /work/main && UV_PYTHON_DOWNLOADS=never uv run python -m bench.corpus
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import smtplib
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from tests.conftest import start_embedded_store, stop_embedded_store

from helpgate.accounts import users
from helpgate.core.settings import Settings
from helpgate.gateway import Gateway
from helpgate.inbound import markup
from helpgate.models import Message, RawMessage, RawStatus, Role

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus" / "zammad-mail"
SUPPORT = "support@localhost"
AGENT = "bench-agent@example.com"
PASSWORD = "bench-password-123"  # noqa: S105 - a throwaway account in a temp store
JWT_SECRET = "bench-secret-of-at-least-thirty-two-bytes"  # noqa: S105 - same
TARGETS = {"accepted": 1.0, "subject": 0.97, "sender": 0.95, "body": 0.90}
PLACEHOLDER = ["visible", "content"]  # Zammad's "no visible content": nothing to compare
ADDR_SPEC = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


@dataclass
class Tally:
    accepted: int = 0
    reports: int = 0
    subject: list[bool] = field(default_factory=list)
    sender: list[bool] = field(default_factory=list)
    body: list[bool] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)


def send(port: int, name: str, data: bytes) -> str | None:
    """None when the listener answered 250, else its answer. Each mail has its own envelope sender, by which the
    stored raw message is found again."""
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
            client.sendmail(envelope_sender(name), [SUPPORT], data)
    except smtplib.SMTPException as error:
        return f"{type(error).__name__}: {error}"
    return None


def envelope_sender(name: str) -> str:
    return f"{name.removesuffix('.box')}@corpus.invalid"


def squeeze(text: object) -> str:
    return " ".join(str(text or "").split())


def check(message: dict[str, Any], want: dict[str, Any], tally: Tally, name: str) -> None:
    subject_ok = squeeze(want.get("subject")) == squeeze(message["subject"])
    tally.subject.append(subject_ok)
    wrong = [] if subject_ok else [f"subject {message['subject']!r} (Zammad: {want.get('subject')!r})"]
    expected_sender = str(want.get("from_email") or "")
    if ADDR_SPEC.match(expected_sender):
        sender_ok = expected_sender.lower().rstrip(".") == message["from"]["email"]
        tally.sender.append(sender_ok)
        wrong += [] if sender_ok else [f"sender {message['from']['email']!r} (Zammad: {expected_sender!r})"]
    words = [str(word) for word in want.get("body_words") or []]
    if words and words != PLACEHOLDER:
        seen = "".join((message["text"] + message["full_text"] + markup.to_text(message["html"])).split())
        missing = [word for word in words if "".join(word.split()) not in seen]
        tally.body.append(not missing)
        wrong += [f"body words {missing} not found"] if missing else []
    if wrong:
        tally.misses.append(f"{name}: {'; '.join(wrong)}")


async def read_back(api: httpx.AsyncClient, name: str, want: dict[str, Any], tally: Tally, headers: Any) -> None:
    raw = await RawMessage.find_one({"envelope_from": envelope_sender(name)})
    if raw is None:
        tally.misses.append(f"{name}: not stored")
        return
    if raw.status is RawStatus.IGNORED and raw.reason and "delivery report" in raw.reason:
        tally.reports += 1
        return
    message = await Message.find_one({"raw_message_id": raw.id})
    if raw.status is not RawStatus.PROCESSED or message is None:
        tally.misses.append(f"{name}: {raw.status} ({raw.reason})")
        for counted in (tally.subject, tally.sender, tally.body):
            counted.append(False)
        return
    detail = (await api.get(f"/api/tickets/{message.ticket_number}", headers=headers)).json()
    [shown] = [m for m in detail["messages"] if m["id"] == str(message.id)]
    check(shown, want, tally, name)


def share(values: list[bool]) -> float:
    return sum(values) / len(values) if values else 1.0


def report(tally: Tally, total: int, seconds: float) -> bool:
    figures = {
        "accepted": (tally.accepted, total),
        "subject": (sum(tally.subject), len(tally.subject)),
        "sender": (sum(tally.sender), len(tally.sender)),
        "body": (sum(tally.body), len(tally.body)),
    }
    print(f"\nzammad-mail over SMTP, as the files are: {total} mails in {seconds:.1f} s ({tally.reports} reports)")
    met = True
    for what, (good, out_of) in figures.items():
        ratio = good / out_of if out_of else 1.0
        ok = ratio >= TARGETS[what]
        met &= ok
        verdict = "ok" if ok else "MISSED"
        print(f"  {what:<9} {good:>4}/{out_of:<4} {ratio:7.1%}   target ≥ {TARGETS[what]:.0%}  {verdict}")
    for miss in tally.misses:
        print(f"    {miss}")
    return met


async def run(store_uri: str, data_dir: Path) -> bool:
    expected = {entry["box"]: entry for entry in json.loads((CORPUS / "expected.json").read_text())}
    mails = [(path.name, path.read_bytes()) for path in sorted(CORPUS.glob("*.box"))]
    settings = Settings(
        _env_file=None,
        data_dir=data_dir,
        http_port=0,
        smtp_port=0,
        mongodb_uri=store_uri,
        mongodb_database="corpus",
        jwt_secret=JWT_SECRET,
        support_addresses=[SUPPORT],
        run_workflows=False,
    )
    gateway = Gateway(settings)
    await gateway.start()
    tally = Tally()
    started = time.monotonic()
    try:
        assert gateway.smtp is not None
        for index, (name, data) in enumerate(mails, 1):
            refused = await asyncio.to_thread(send, gateway.smtp.port, name, data)
            if refused is None:
                tally.accepted += 1
            else:
                tally.misses.append(f"{name}: refused, {refused}")
            if index % 25 == 0:
                print(f"  sent {index}/{len(mails)}", file=sys.stderr, flush=True)
        await gateway.worker.idle()
        await users.create(actor=None, email=AGENT, role=Role.AGENT, password=PASSWORD)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.http_port}", timeout=60) as api:
            login = await api.post("/api/auth/login", json={"email": AGENT, "password": PASSWORD})
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
            for name, _ in mails:
                await read_back(api, name, expected.get(name, {}), tally, headers)
    finally:
        await gateway.stop()
    return report(tally, len(mails), time.monotonic() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.parse_args(argv)
    if not (CORPUS / "expected.json").exists():
        print(f"no corpus at {CORPUS}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="helpgate-corpus-") as directory:
        store, uri = start_embedded_store(Path(directory) / "store", synced=True)
        try:
            met = asyncio.run(run(uri, Path(directory) / "data"))
        finally:
            stop_embedded_store(store)
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
