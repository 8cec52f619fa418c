"""Fixtures that run real things on 127.0.0.1: the store, a whole gateway, SMTP and HTTP clients.

The store is the embedded one (mongoeco's wire server in a child process, started once per session), or
real MongoDB when TEST_MONGODB_URI is set. Each test gets a database of its own.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from pymongo import AsyncMongoClient, monitoring

from helpgate.accounts import users
from helpgate.core import db, security
from helpgate.core.settings import Settings
from helpgate.gateway import Gateway
from helpgate.models import ALL_MODELS, Role, User
from tests.dovecot import Dovecot
from tests.mail_capture import CaptureServer, Certificate, make_certificate
from tests.store_commands import Commands

PASSWORD = "correct-horse-battery"
# Argon2 at the lowest cost for the accounts tests make in this process (~1 ms instead of ~100 ms a hash);
# tests/core/test_security.py checks the production parameters, and `helpgate` subprocesses use them.
security.use_password_hasher(PasswordHash((Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1),)))
JWT_SECRET = "test-secret-of-at-least-thirty-two-bytes"


def start_embedded_store(
    data_dir: Path, *, synced: bool = False, options: tuple[str, ...] = ()
) -> tuple[subprocess.Popen[bytes], str]:
    """The embedded store as `helpgate serve` runs it: a child process announcing its URI on stdout. Unless
    `synced`, without syncing commits to disk: tests outlive no machine crash (tests/inbound/test_durability.py
    kills a store that syncs, as `serve` runs it). `options`: more of `python -m helpgate.core.db`'s (benchmarks)."""
    command = [sys.executable, "-m", "helpgate.core.db", str(data_dir), *([] if synced else ["--unsynced"]), *options]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert process.stdout is not None
    line = process.stdout.readline().decode().strip()
    if not line.startswith(db.READY_PREFIX):
        process.kill()
        raise RuntimeError(f"embedded store did not start: {line!r}")
    return process, line.removeprefix(db.READY_PREFIX)


def stop_embedded_store(process: subprocess.Popen[bytes]) -> None:
    assert process.stdin is not None
    process.stdin.close()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def store_uri() -> Iterator[str]:
    configured = os.environ.get("TEST_MONGODB_URI")
    if configured:
        yield configured
        return
    with tempfile.TemporaryDirectory(prefix="helpgate-test-store-") as directory:
        process, uri = start_embedded_store(Path(directory))
        try:
            yield uri
        finally:
            stop_embedded_store(process)


@pytest.fixture
def database_name() -> str:
    return f"test_{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def store(store_uri: str, database_name: str) -> AsyncIterator[AsyncMongoClient[dict[str, Any]]]:
    """Beanie initialised on a fresh database; dropped afterwards."""
    client = db.make_client(store_uri)
    await db.init_models(client, database_name, ALL_MODELS)
    yield client
    await client.drop_database(database_name)
    await client.close()


def make_settings(tmp_path: Path, store_uri: str, database_name: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "http_port": 0,
        "smtp_port": 0,
        "mongodb_uri": store_uri,
        "mongodb_database": database_name,
        "jwt_secret": JWT_SECRET,
        "support_addresses": ["support@localhost", "billing@localhost"],
        "shutdown_grace_seconds": 5.0,
        # Workflows mail acknowledgements and notifications; tests of other parts count mail, so they opt in.
        "run_workflows": False,
        # The learned triage's retraining chain adds a run and an event at start; its tests opt in.
        "triage_retrain_hours": 0,
        **overrides,
    }
    return Settings(_env_file=None, **values)


@pytest.fixture
async def frozen_store(database_name: str) -> AsyncIterator[Callable[[bool], None]]:
    """A private embedded store this test can freeze (SIGSTOP), as a store that stops answering; Beanie on it."""
    with tempfile.TemporaryDirectory(prefix="helpgate-lease-store-") as directory:
        process, uri = start_embedded_store(Path(directory))
        client = db.make_client(uri)
        await db.init_models(client, database_name, ALL_MODELS)

        def freeze(frozen: bool) -> None:
            os.kill(process.pid, signal.SIGSTOP if frozen else signal.SIGCONT)

        try:
            yield freeze
        finally:
            freeze(False)
            await client.close()
            stop_embedded_store(process)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Parametrize this to change a test gateway's settings."""
    return {}


@pytest.fixture
def settings(tmp_path: Path, store_uri: str, database_name: str, settings_overrides: dict[str, Any]) -> Settings:
    return make_settings(tmp_path, store_uri, database_name, **settings_overrides)


@pytest.fixture
async def gateway(settings: Settings) -> AsyncIterator[Gateway]:
    gateway = Gateway(settings)
    await gateway.start()
    yield gateway
    await gateway.stop()
    client = db.make_client(settings.mongodb_uri or "")
    await client.drop_database(settings.mongodb_database)
    await client.close()


@pytest.fixture
async def api(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the gateway's API. Some routes answer before their work is done (sign-up and password reset:
    api/deferred.py); this client hands over each answer once that work is done too, so a test reads the
    store as the request left it. tests/api/test_account_enumeration.py looks at the answers without waiting."""

    async def settled(_response: httpx.Response) -> None:
        await gateway.deferred.idle()

    base_url = f"http://127.0.0.1:{gateway.http_port}"
    async with httpx.AsyncClient(base_url=base_url, timeout=30, event_hooks={"response": [settled]}) as client:
        yield client


async def login(api: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict[str, str]:
    response = await api.post("/api/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def make_user(email: str, role: Role, password: str | None = PASSWORD) -> User:
    return await users.create(actor=None, email=email, role=role, password=password)


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    """A real Dovecot (IMAP and IMAPS) on free ports, with a test user."""
    server = Dovecot()
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def sink_certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return make_certificate(tmp_path_factory.mktemp("sink-tls"))


@pytest.fixture
def sink(sink_certificate: Certificate) -> Iterator[CaptureServer]:
    """An SMTP sink like Mailtrap's sandbox (STARTTLS + AUTH); `sink.settings()` points a gateway at it."""
    server = CaptureServer(sink_certificate).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def listener() -> Commands:
    """One listener for the session: pymongo keeps registered listeners for the clients made afterwards (the
    `store` fixture and the gateway make theirs per test, after this)."""
    commands = Commands()
    monitoring.register(commands)
    return commands


@pytest.fixture
def commands(listener: Commands) -> Iterator[Commands]:
    """The store commands sent while `commands.recording` is set, in this test."""
    listener.seen.clear()
    yield listener
    listener.recording = False
