"""`helpgate` as a user runs it: serve in a subprocess, create-user, mail in, read it back over HTTP."""

from __future__ import annotations

import json
import os
import signal
import smtplib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.dovecot import PASSWORD, Dovecot
from tests.mail import make_mail


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(data_dir: Path, http_port: int, smtp_port: int) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("HELPGATE_") and k not in {"MONGODB_URI", "JWT_SECRET"}
    }
    env.update(HELPGATE_DATA_DIR=str(data_dir), HELPGATE_HTTP_PORT=str(http_port), HELPGATE_SMTP_PORT=str(smtp_port))
    return env


def _helpgate(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "helpgate", *args]
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=60)


class Served:
    def __init__(self, tmp_path: Path, **env: str) -> None:
        self.cwd = tmp_path
        self.http_port = _free_port()
        self.smtp_port = _free_port()
        self.env = _env(tmp_path / "data", self.http_port, self.smtp_port) | env
        self.log = (tmp_path / "serve.log").open("w+")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "helpgate", "serve"], env=self.env, cwd=tmp_path, stdout=self.log, stderr=self.log
        )
        self.base = f"http://127.0.0.1:{self.http_port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.output()
            try:
                if httpx.get(f"{self.base}/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError(f"helpgate serve did not become healthy:\n{self.output()}")

    def output(self) -> str:
        self.log.flush()
        return (self.cwd / "serve.log").read_text()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(30)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    served = Served(tmp_path)
    yield served
    served.stop()


@pytest.mark.parametrize(("env", "smtp_lines"), [({}, False), ({"HELPGATE_LOG_LEVEL": "DEBUG"}, True)])
def test_smtp_library_logs_each_command_only_at_debug(tmp_path: Path, env: dict[str, str], smtp_lines: bool) -> None:
    served = Served(tmp_path, **env)
    try:
        with smtplib.SMTP("127.0.0.1", served.smtp_port) as client:
            client.send_message(make_mail(message_id="<quiet@example.org>"))
    finally:
        assert served.stop() == 0
    output = served.output()
    assert " INFO helpgate.inbound.smtp smtp.listening" in output, output[-4000:]
    assert (" INFO mail.log " in output) is smtp_lines, output[-4000:]  # e.g. "('127.0.0.1', 5) >> b'ehlo'"


def test_walk_through_quickstart(served: Served) -> None:
    created = _helpgate(
        "create-user",
        "admin@example.com",
        "--role",
        "admin",
        "--password",
        "S3cret-pass",
        env=served.env,
        cwd=served.cwd,
    )
    assert created.returncode == 0, created.stderr
    assert "created admin admin@example.com" in created.stdout

    with smtplib.SMTP("127.0.0.1", served.smtp_port) as client:
        client.send_message(make_mail(message_id="<q1@example.org>"))
        client.send_message(make_mail(subject="Re: Printer on fire", body="Update", in_reply_to="<q1@example.org>"))

    login = httpx.post(
        f"{served.base}/api/auth/login", json={"email": "admin@example.com", "password": "S3cret-pass"}
    ).json()
    assert login["token_type"] == "bearer" and login["refresh_token"]
    headers = {"Authorization": f"Bearer {login['access_token']}"}
    deadline = time.monotonic() + 30
    while True:
        detail = httpx.get(f"{served.base}/api/tickets/1", headers=headers)
        if (detail.status_code == 200 and len(detail.json()["messages"]) == 2) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    listing = httpx.get(f"{served.base}/api/tickets", headers=headers).json()
    assert listing["total"] == 1 and listing["items"][0]["number"] == 1
    ticket = detail.json()
    assert ticket["subject"] == "Printer on fire" and ticket["requester"]["email"] == "jane@example.org"
    assert [m["text"] for m in ticket["messages"]] == ["Help, the printer is on fire.", "Update"]

    health = httpx.get(f"{served.base}/healthz").json()
    assert health["status"] == "ok" and health["store"] == {"ok": True, "kind": "embedded"}
    assert health["smtp"]["ok"] is True

    assert served.stop() == 0
    assert "gateway.stopped" in served.output()
    assert "Traceback" not in served.output()


def test_create_user_refuses_duplicates_and_weak_passwords(served: Served) -> None:
    args = ("create-user", "agent@example.com", "--role", "agent")
    assert _helpgate(*args, "--password", "long-enough-1", env=served.env, cwd=served.cwd).returncode == 0
    again = _helpgate(*args, "--password", "long-enough-1", env=served.env, cwd=served.cwd)
    assert again.returncode == 1 and "exists" in again.stderr
    weak = _helpgate("create-user", "b@example.com", "--password", "short", env=served.env, cwd=served.cwd)
    assert weak.returncode == 1 and "at least 10 characters" in weak.stderr


def test_port_in_use_is_one_clear_line(served: Served, tmp_path: Path) -> None:
    env = _env(tmp_path / "other", served.http_port, _free_port())
    result = _helpgate("serve", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert f"cannot listen for http on 127.0.0.1:{served.http_port} (address already in use)" in result.stderr
    assert "Traceback" not in result.stderr

    env = _env(tmp_path / "other", _free_port(), served.smtp_port)
    result = _helpgate("serve", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert f"cannot listen for smtp on 127.0.0.1:{served.smtp_port} (address already in use)" in result.stderr


def test_sigterm_stops_store_child_too(served: Served) -> None:
    store_pids = subprocess.run(
        ["pgrep", "-f", f"helpgate.core.db {served.env['HELPGATE_DATA_DIR']}"], capture_output=True, text=True
    ).stdout.split()
    assert len(store_pids) == 1
    assert served.stop() == 0
    time.sleep(0.5)
    with pytest.raises(ProcessLookupError):
        os.kill(int(store_pids[0]), 0)


def test_mail_ends_triaged_assigned_and_acknowledged_with_no_further_action(served: Served) -> None:
    def run(*args: str) -> str:
        result = _helpgate(*args, env=served.env, cwd=served.cwd)
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert "printers\tprinter toner paper jam" in run("skills", "set", "printers=printer toner paper jam", "billing")
    run("create-user", "ann@example.com", "--role", "agent", "--password", "long-enough-1")
    assert "skills printers; available" in run("staff", "ann@example.com", "--skills", "printers")
    unknown = _helpgate("staff", "ann@example.com", "--skills", "knitting", env=served.env, cwd=served.cwd)
    assert unknown.returncode == 1 and "unknown skills: knitting" in unknown.stderr

    with smtplib.SMTP("127.0.0.1", served.smtp_port) as client:
        client.send_message(make_mail(subject="Paper jam", body="The printer has a paper jam again."))

    token = httpx.post(
        f"{served.base}/api/auth/login", json={"email": "ann@example.com", "password": "long-enough-1"}
    ).json()["access_token"]
    outbox = served.cwd / "data" / "outbox"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ticket = httpx.get(f"{served.base}/api/tickets/1", headers={"Authorization": f"Bearer {token}"}).json()
        mails = [path.read_text() for path in outbox.glob("*.eml")] if outbox.exists() else []
        if ticket.get("assignee") and len(mails) >= 3:  # welcome, acknowledgement, notification
            break
        time.sleep(0.2)
    assert ticket["assignee"] == {"email": "ann@example.com", "name": ""}, served.output()
    assert ticket["skills"] == ["printers"] and ticket["priority"] in ("low", "medium", "high")
    assert ticket["triage"]["source"] == "heuristic"
    subjects = sorted(line for mail in mails for line in mail.splitlines() if line.startswith("Subject:"))
    assert subjects == [
        "Subject: Assigned to you: Paper jam [#1]",
        "Subject: Re: Paper jam [#1]",
        "Subject: Welcome to support@localhost",
    ], served.output()
    health = httpx.get(f"{served.base}/healthz").json()
    assert health["workflows"]["back_end"] == "local" and health["workflows"]["ok"] is True


@pytest.mark.parametrize("command", [[], ["serve"], ["create-user"], ["skills"], ["staff"], ["suppressions"]])
def test_help(command: list[str], tmp_path: Path) -> None:
    result = _helpgate(*command, "--help", env=dict(os.environ), cwd=tmp_path)
    assert result.returncode == 0 and "usage: helpgate" in result.stdout


HEAVY = ("fastapi", "starlette", "uvicorn", "google.genai", "inngest")


def test_help_and_store_commands_load_no_web_or_ai_code(tmp_path: Path) -> None:
    """`--help` answers at once, and a command that works on the store starts without the HTTP API, the AI
    client and the workflow SDK: the CLI imports what a command needs when it runs."""
    probe = (
        "import sys, contextlib, io\n"
        "from helpgate import cli\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    cli._parser().parse_args(['--help'])\n"
        "import helpgate.installation, helpgate.cli.data, helpgate.cli.raw, helpgate.cli.mailboxes\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules if m.startswith({HEAVY!r})}}))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", result.stdout


def test_mailbox_added_from_cli_is_imported_by_running_serve(served: Served) -> None:
    dovecot = Dovecot()
    dovecot.start()
    try:
        imap = ("--host", "127.0.0.1", "--port", str(dovecot.imap_port), "--security", "none", "--username", "test")
        added = _helpgate(
            "mailbox", "add", "help@localhost", *imap, "--password", PASSWORD, env=served.env, cwd=served.cwd
        )
        assert added.returncode == 0, added.stderr
        tested = _helpgate("mailbox", "test", "help@localhost", env=served.env, cwd=served.cwd)
        assert tested.returncode == 0 and "ok: logged in" in tested.stdout and "IDLE supported" in tested.stdout
        dovecot.append([bytes(make_mail(to="help@localhost", subject="Via IMAP"))])
        assert _helpgate("create-user", "a@example.com", "--password", "long-enough-1", env=served.env,
                         cwd=served.cwd).returncode == 0  # fmt: skip
        token = httpx.post(
            f"{served.base}/api/auth/login", json={"email": "a@example.com", "password": "long-enough-1"}
        ).json()["access_token"]
        deadline = time.monotonic() + 30
        listing: dict[str, Any] = {}
        while time.monotonic() < deadline:
            listing = httpx.get(f"{served.base}/api/tickets", headers={"Authorization": f"Bearer {token}"}).json()
            if listing["total"]:
                break
            time.sleep(0.2)
        assert [item["subject"] for item in listing["items"]] == ["Via IMAP"]

        status = json.loads(_helpgate("mailbox", "list", env=served.env, cwd=served.cwd).stdout)
        assert status[0]["address"] == "help@localhost" and status[0]["state"]["imported"] == 1
        assert "password" not in json.dumps(status) and PASSWORD not in json.dumps(status)
        assert _helpgate("mailbox", "disable", "help@localhost", env=served.env, cwd=served.cwd).returncode == 0
        assert _helpgate("mailbox", "remove", "help@localhost", env=served.env, cwd=served.cwd).returncode == 0
        assert json.loads(_helpgate("mailbox", "list", env=served.env, cwd=served.cwd).stdout) == []
    finally:
        dovecot.close()


def test_mailbox_test_reports_the_server_error(served: Served) -> None:
    dovecot = Dovecot()
    dovecot.start()
    try:
        imap = ("--host", "127.0.0.1", "--port", str(dovecot.imap_port), "--security", "none", "--username", "test")
        assert _helpgate("mailbox", "add", "x@localhost", *imap, "--password", "wrong", env=served.env,
                         cwd=served.cwd).returncode == 0  # fmt: skip
        tested = _helpgate("mailbox", "test", "x@localhost", env=served.env, cwd=served.cwd)
        assert tested.returncode == 1
        assert "failed: ImapError: LOGIN refused: NO" in tested.stdout and "Authentication failed" in tested.stdout
    finally:
        dovecot.close()
