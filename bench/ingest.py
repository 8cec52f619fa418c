"""Benchmark of inbound SMTP: messages/s helpgate accepts end to end, against a bare aiosmtpd sink.

What it measures, in one run, with the same client for both targets:

* a bare sink: an aiosmtpd ``Controller`` in a child process whose handler only counts and answers 250;
* helpgate: a real ``helpgate serve`` child process (``python -m helpgate serve``) on a temp data dir with
  the embedded store (``MONGODB_URI`` unset), free ports on 127.0.0.1, started once ``GET /healthz`` is 200.

The client runs in a separate process: ``--connections`` threads, each sending its share of ``--messages``
messages of ~``--size`` bytes over one persistent ``smtplib.SMTP`` connection, timestamping every 250. For
each target it reports the overall msgs/s, the rate of the first and last ``--window`` messages and their
ratio, and helpgate's rate as a fraction of the sink's. Every message has a unique Message-ID and no
In-Reply-To, so each must become one ticket: after sending, the bench waits for helpgate's inbound worker
(``/healthz`` ``inbound.processed``/``backlog``), reports the processing rate (first message stored to last
processed, from the RawMessage timestamps), reads the ticket total through the API as an admin created with
``helpgate create-user``, and checks the tickets in the store against the Message-IDs sent (LOST/DUPLICATE).

Run::

    cd /work/main && UV_PYTHON_DOWNLOADS=never uv run python bench/ingest.py
    uv run python bench/ingest.py --messages 500          # quick
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import multiprocessing
import os
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TypedDict

HOST = "127.0.0.1"
SUPPORT_ADDRESS = "support@localhost"
SENDERS = 50
PROGRESS_SECONDS = 3.0
ADMIN_EMAIL = "bench-admin@example.com"
ADMIN_PASSWORD = "bench-password-123"  # noqa: S105 - a throwaway account in a temp data dir
JWT_SECRET = "bench-secret-of-at-least-thirty-two-bytes"  # noqa: S105 - same
STALL_SECONDS = 120.0
SUSTAIN_TARGET = 0.7
RATE_TARGET = 40.0
PR_SET_PDEATHSIG = 1
LINE = "The printer on the third floor prints blank pages again since the update, please help us.\n"


def say(text: str) -> None:
    print(text, flush=True)


def _die_with_parent() -> None:
    """In the helpgate child before exec: SIGTERM it when the bench dies, even by SIGKILL (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _stop_on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def message_id(tag: str, index: int) -> str:
    return f"bench-{tag}-{index}@bench.example.com"


def build_message(tag: str, index: int, size: int) -> tuple[str, bytes]:
    """One customer mail of about `size` bytes with a unique Message-ID; returns (envelope sender, bytes)."""
    sender = f"customer{index % SENDERS}@example.com"
    mail = EmailMessage(policy=SMTP_POLICY)
    mail["From"] = f"Customer {index % SENDERS} <{sender}>"
    mail["To"] = SUPPORT_ADDRESS
    mail["Subject"] = f"Bench {tag} message {index}: printer trouble"
    mail["Date"] = formatdate()
    mail["Message-ID"] = f"<{message_id(tag, index)}>"
    header_bytes = len(bytes(mail))
    body_bytes = max(len(LINE), size - header_bytes - 100)
    mail.set_content(LINE * (body_bytes // len(LINE)))
    return sender, mail.as_bytes()


# --- the client (separate process) -----------------------------------------------------------------


class ClientResult(TypedDict):
    start: float
    end: float
    accepted: list[tuple[int, float]]
    failed: list[tuple[int, str]]


def _send_share(
    port: int,
    share: list[tuple[int, str, bytes]],
    barrier: threading.Barrier,
    accepted: list[tuple[int, float]],
    failed: list[tuple[int, str]],
) -> None:
    smtp = smtplib.SMTP(HOST, port, timeout=300)
    smtp.ehlo("bench.example.com")
    barrier.wait()
    for index, sender, data in share:
        try:
            smtp.sendmail(sender, [SUPPORT_ADDRESS], data)
        except smtplib.SMTPServerDisconnected as error:
            failed.append((index, f"disconnected: {error}"))
            smtp = smtplib.SMTP(HOST, port, timeout=300)
            smtp.ehlo("bench.example.com")
            continue
        except smtplib.SMTPException as error:
            failed.append((index, f"{type(error).__name__}: {error}"))
            continue
        accepted.append((index, time.monotonic()))
    with contextlib.suppress(smtplib.SMTPException, OSError):
        smtp.quit()


def client_main(label: str, port: int, count: int, connections: int, size: int, tag: str, out: Connection) -> None:
    """Send `count` messages over `connections` persistent connections; send a ClientResult back."""
    messages = [(index, *build_message(tag, index, size)) for index in range(count)]
    shares = [messages[offset::connections] for offset in range(connections)]
    accepted: list[list[tuple[int, float]]] = [[] for _ in shares]
    failed: list[list[tuple[int, str]]] = [[] for _ in shares]
    barrier = threading.Barrier(connections + 1)
    threads = [
        threading.Thread(target=_send_share, args=(port, share, barrier, accepted[n], failed[n]), daemon=True)
        for n, share in enumerate(shares)
    ]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = last_report = time.monotonic()
    while any(thread.is_alive() for thread in threads):
        for thread in threads:
            thread.join(0.2)
        now = time.monotonic()
        if now - last_report >= PROGRESS_SECONDS:
            last_report = now
            done = sum(len(part) for part in accepted)
            errors = sum(len(part) for part in failed)
            say(f"  [{label}] {done}/{count} accepted, {errors} failed, {done / (now - start):.1f} msg/s")
    result: ClientResult = {
        "start": start,
        "end": time.monotonic(),
        "accepted": [item for part in accepted for item in part],
        "failed": [item for part in failed for item in part],
    }
    out.send(result)
    out.close()


def run_client(label: str, port: int, args: argparse.Namespace, tag: str) -> ClientResult:
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(
        target=client_main, args=(label, port, args.messages, args.connections, args.size, tag, sender), daemon=True
    )
    process.start()
    sender.close()
    try:
        result: ClientResult = receiver.recv()
    finally:
        process.join(30)
        if process.is_alive():
            process.kill()
            process.join()
    return result


# --- the bare sink (separate process) --------------------------------------------------------------


class CountingHandler:
    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.count += 1
        return "250 2.0.0 OK"


def sink_main(port: int, control: Connection) -> None:
    """Serve a counting aiosmtpd sink until told to stop, then report the count."""
    from aiosmtpd.controller import Controller

    handler = CountingHandler()
    controller = Controller(handler, hostname=HOST, port=port, data_size_limit=64 * 1024 * 1024)
    controller.start()
    control.send("ready")
    try:
        control.recv()
    finally:
        controller.stop()
        control.send(handler.count)
        control.close()


# --- measuring -------------------------------------------------------------------------------------


@dataclass
class Rates:
    label: str
    sent: int
    ok: int
    failed: int
    total: float
    first: float
    last: float
    window: int
    first_accept: float

    @property
    def sustain(self) -> float:
        return self.last / self.first if self.first else 0.0


def rates_of(label: str, result: ClientResult, sent: int, window: int) -> Rates:
    times = sorted(t for _, t in result["accepted"])
    ok = len(times)
    if not ok:
        return Rates(label, sent, 0, len(result["failed"]), 0.0, 0.0, 0.0, 0, result["start"])
    window = max(1, min(window, ok))
    start = result["start"]
    total = ok / (times[-1] - start)
    first = window / (times[window - 1] - start)
    before_last = times[-window - 1] if ok > window else start
    last = window / (times[-1] - before_last)
    return Rates(label, sent, ok, len(result["failed"]), total, first, last, window, times[0])


def bench_sink(args: argparse.Namespace, tag: str) -> tuple[Rates, int]:
    context = multiprocessing.get_context("spawn")
    port = free_port()
    control, child_end = context.Pipe()
    process = context.Process(target=sink_main, args=(port, child_end), daemon=True)
    process.start()
    child_end.close()
    try:
        if not control.poll(30) or control.recv() != "ready":
            raise RuntimeError("the sink did not start")
        say(f"[sink] aiosmtpd sink on {HOST}:{port}; sending {args.messages} messages")
        result = run_client("sink", port, args, tag)
        control.send("stop")
        counted = int(control.recv()) if control.poll(30) else -1
    finally:
        process.join(15)
        if process.is_alive():
            process.kill()
            process.join()
    rates = rates_of("aiosmtpd sink", result, args.messages, args.window)
    say(f"[sink] {rates.ok} accepted ({counted} counted by the sink) at {rates.total:.1f} msg/s")
    return rates, counted


class Helpgate:
    """`helpgate serve` as a child process on a temp data dir, with its log in a file."""

    def __init__(self, work_dir: Path, log_level: str) -> None:
        self.work_dir = work_dir
        self.data_dir = work_dir / "data"
        self.http_port = free_port()
        self.smtp_port = free_port()
        self.log_path = work_dir / "helpgate.log"
        self.log_level = log_level
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("HELPGATE_") and k != "MONGODB_URI"}
        self.env.update(
            HELPGATE_DATA_DIR=str(self.data_dir),
            HELPGATE_HTTP_HOST=HOST,
            HELPGATE_HTTP_PORT=str(self.http_port),
            HELPGATE_SMTP_HOST=HOST,
            HELPGATE_SMTP_PORT=str(self.smtp_port),
            HELPGATE_SUPPORT_ADDRESSES=SUPPORT_ADDRESS,
            JWT_SECRET=JWT_SECRET,
        )
        self.process: subprocess.Popen[bytes] | None = None

    def command(self, *words: str) -> list[str]:
        return [sys.executable, "-m", "helpgate", "--log-level", self.log_level, *words]

    def start(self, timeout: float = 90.0) -> None:
        with self.log_path.open("ab") as log:
            # A session of its own: Ctrl-C on the bench does not hit it; stop() ends it in order.
            self.process = subprocess.Popen(
                self.command("serve"),
                env=self.env,
                cwd=self.work_dir,  # no stray .env file
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # the bench runs no threads of its own at this point
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"helpgate serve exited with {self.process.returncode}:\n{self.log_tail()}")
            status, _ = self.get("/healthz")
            if status == 200:
                return
            time.sleep(0.2)
        raise RuntimeError(f"helpgate serve was not healthy within {timeout:.0f}s:\n{self.log_tail()}")

    def stop(self, timeout: float = 60.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            say(f"helpgate did not stop within {timeout:.0f}s: killed")
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def get(self, path: str, token: str | None = None) -> tuple[int, Any]:
        return self.request("GET", path, token=token)

    def request(self, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"http://{HOST}:{self.http_port}{path}", data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            with contextlib.suppress(ValueError):
                return error.code, json.loads(error.read() or b"null")
            return error.code, None
        except (urllib.error.URLError, OSError, TimeoutError):
            return 0, None

    def inbound(self) -> tuple[int, int]:
        """(processed, backlog) from /healthz; (-1, -1) when it does not answer."""
        _, report = self.get("/healthz")
        if not isinstance(report, dict) or "inbound" not in report:
            return -1, -1
        return int(report["inbound"]["processed"]), int(report["inbound"]["backlog"])


def wait_processed(helpgate: Helpgate, expected: int, timeout: float) -> float:
    """Poll until the worker has processed `expected` messages and its queue is empty; the time it took."""
    started = last_report = last_change = time.monotonic()
    last_processed = -1
    while True:
        processed, backlog = helpgate.inbound()
        now = time.monotonic()
        if processed != last_processed:
            last_processed, last_change = processed, now
        if processed >= expected and backlog == 0:
            say(f"  [helpgate] all {processed} processed")
            return now - started
        if now - last_change > STALL_SECONDS:
            say(f"  [helpgate] STALLED at {processed}/{expected} processed, backlog {backlog}: giving up")
            return now - started
        if now - started > timeout:
            say(f"  [helpgate] --process-timeout reached at {processed}/{expected} processed: checking what is there")
            return now - started
        if now - last_report >= PROGRESS_SECONDS:
            last_report = now
            say(f"  [helpgate] processing: {processed}/{expected} processed, backlog {backlog}")
        time.sleep(0.5)


@dataclass
class Outcome:
    api_total: int
    tickets: int
    lost: int
    pending: int
    duplicate: int
    foreign: int
    statuses: dict[str, int]
    processing_rate: float
    processing_span: float


def check_tickets(helpgate: Helpgate, tag: str, sent_ok: list[int]) -> Outcome:
    """Ticket total through the API (as an admin) and each sent Message-ID checked in the store."""
    from pymongo import MongoClient

    created = subprocess.run(
        helpgate.command("create-user", ADMIN_EMAIL, "--role", "admin", "--password", ADMIN_PASSWORD),
        env=helpgate.env,
        cwd=helpgate.work_dir,
        capture_output=True,
        timeout=120,
        check=False,
    )
    if created.returncode != 0:
        raise RuntimeError(f"create-user failed: {created.stderr.decode(errors='replace')[-2000:]}")
    status, tokens = helpgate.request("POST", "/api/auth/login", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    if status != 200:
        raise RuntimeError(f"login failed: {status} {tokens}")
    status, page = helpgate.get("/api/tickets?page=1&page_size=1", token=tokens["access_token"])
    api_total = int(page["total"]) if status == 200 else -1

    uri = (helpgate.data_dir / "store.uri").read_text().strip()
    client: MongoClient[dict[str, Any]] = MongoClient(uri, tz_aware=True, serverSelectionTimeoutMS=5000)
    try:
        database = client["helpgate"]
        # origin_key is "<Message-ID> <fingerprint>": the Message-ID names the mail sent.
        keys = [
            str(doc.get("origin_key", "")).split(" ", 1)[0] for doc in database["tickets"].find({}, {"origin_key": 1})
        ]
        raws = list(database["raw_messages"].find({}, {"status": 1, "received_at": 1, "processed_at": 1}))
    finally:
        client.close()
    expected = {message_id(tag, index) for index in sent_ok}
    found: dict[str, int] = {}
    for key in keys:
        found[key] = found.get(key, 0) + 1
    pending = sum(1 for raw in raws if raw["status"] == "received")
    lost = len(expected - found.keys()) - pending
    duplicate = sum(n - 1 for key, n in found.items() if key in expected)
    foreign = sum(n for key, n in found.items() if key not in expected)
    statuses: dict[str, int] = {}
    for raw in raws:
        statuses[raw["status"]] = statuses.get(raw["status"], 0) + 1
    received = [raw["received_at"] for raw in raws]
    done = [raw["processed_at"] for raw in raws if raw.get("processed_at")]
    span = (max(done) - min(received)).total_seconds() if received and done else 0.0
    rate = len(done) / span if span > 0 else 0.0
    return Outcome(api_total, len(keys), lost, pending, duplicate, foreign, statuses, rate, span)


def bench_helpgate(args: argparse.Namespace, tag: str, work_dir: Path) -> tuple[Rates, Outcome | None]:
    helpgate = Helpgate(work_dir, args.log_level)
    try:
        started = time.monotonic()
        helpgate.start()
        say(
            f"[helpgate] serve healthy in {time.monotonic() - started:.1f}s "
            f"(http {helpgate.http_port}, smtp {helpgate.smtp_port}); sending {args.messages} messages"
        )
        result = run_client("helpgate", helpgate.smtp_port, args, tag)
        rates = rates_of("helpgate", result, args.messages, args.window)
        say(f"[helpgate] {rates.ok} accepted, {rates.failed} failed, at {rates.total:.1f} msg/s; waiting for tickets")
        for index, reason in result["failed"][:5]:
            say(f"  failed #{index}: {reason}")
        waited = wait_processed(helpgate, rates.ok, args.process_timeout)
        say(f"[helpgate] processing finished {waited:.1f}s after the last message was accepted")
        outcome = check_tickets(helpgate, tag, [index for index, _ in result["accepted"]])
        return rates, outcome
    except Exception:
        say(f"helpgate log tail:\n{helpgate.log_tail()}")
        raise
    finally:
        helpgate.stop()


def report(sink: Rates, sink_counted: int, helpgate: Rates, outcome: Outcome | None, args: argparse.Namespace) -> None:
    say("")
    say(
        f"== SMTP ingest: {args.messages} messages of ~{args.size} B, {args.connections} connections, "
        f"client in its own process =="
    )
    say(
        f"{'target':<14} {'ok':>6} {'failed':>6} {'msg/s':>8} "
        f"{'first ' + str(helpgate.window):>11} {'last ' + str(helpgate.window):>10} {'last/first':>10}"
    )
    for r in (sink, helpgate):
        say(
            f"{r.label:<14} {r.ok:>6} {r.failed:>6} {r.total:>8.1f} {r.first:>11.1f} {r.last:>10.1f} {r.sustain:>10.2f}"
        )
    say(f"sink counted {sink_counted} messages")
    ratio = helpgate.total / sink.total if sink.total else 0.0
    say(f"helpgate / sink msg/s: {ratio:.3f}")
    verdict = "OK" if helpgate.sustain >= SUSTAIN_TARGET else "BELOW TARGET"
    say(f"helpgate last/first: {helpgate.sustain:.2f} (target >= {SUSTAIN_TARGET}) {verdict}")
    sustained = min(helpgate.total, helpgate.last)
    verdict = "OK" if sustained >= RATE_TARGET else "BELOW TARGET"
    say(
        f"helpgate sustained: {sustained:.1f} msg/s, min of overall and last window "
        f"(target >= {RATE_TARGET:.0f}) {verdict}"
    )
    if outcome is None:
        return
    say(
        f"processing: {outcome.processing_rate:.1f} tickets/s "
        f"(first message stored -> last processed: {outcome.processing_span:.1f}s)"
    )
    say(f"raw messages by status: {outcome.statuses}")
    say(f"tickets: API total {outcome.api_total}, in store {outcome.tickets}, expected {helpgate.ok}")
    verdict = "OK" if outcome.lost == outcome.pending == outcome.duplicate == outcome.foreign == 0 else "MISMATCH"
    say(
        f"LOST {outcome.lost}  DUPLICATE {outcome.duplicate}  UNEXPECTED {outcome.foreign}  "
        f"(still unprocessed {outcome.pending})  {verdict}"
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=5000, help="messages sent to each target")
    parser.add_argument("--connections", type=int, default=4, help="concurrent persistent SMTP connections")
    parser.add_argument("--size", type=int, default=5000, help="approximate message size in bytes")
    parser.add_argument("--window", type=int, default=1000, help="messages in the first/last rate windows")
    parser.add_argument(
        "--process-timeout", type=float, default=3600.0, help="seconds to wait for helpgate to process the mail"
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    args = parser.parse_args(argv)
    if args.messages < 1 or args.connections < 1 or args.size < 1 or args.window < 1:
        parser.error("--messages, --connections, --size and --window must be >= 1")
    args.window = min(args.window, max(1, args.messages // 5))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)  # clean up (temp dir, children) on SIGTERM too
    tag = f"{os.getpid()}-{int(time.time())}"
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="helpgate-bench-ingest-") as directory:
            sink, counted = bench_sink(args, tag)
            helpgate, outcome = bench_helpgate(args, tag, Path(directory))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    report(sink, counted, helpgate, outcome, args)
    say(f"total time {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
