"""`helpgate export` / `helpgate import`: a whole store moved, document for document, to another one.

The source is filled the way production fills it: a gateway takes mail over SMTP (one mail with an
attachment, one over 512 KiB so its raw bytes go to GridFS, a reply), runs its workflows, and holds
users, a mailbox and skills. Targets are other databases on the same wire server, and (through the CLI)
a fresh embedded store.
"""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import sys
import tarfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from bson import ObjectId
from pymongo import AsyncMongoClient

from helpgate.accounts import skills
from helpgate.accounts.skills import SkillEntry
from helpgate.core import db
from helpgate.core.clock import utcnow
from helpgate.core.settings import Settings
from helpgate.gateway import Gateway
from helpgate.mailboxes import mailboxes
from helpgate.maintenance import archive
from helpgate.maintenance.archive_format import ArchiveError, check
from helpgate.models import ALL_MODELS, Role, Ticket
from tests.conftest import PASSWORD, login, make_settings, make_user, start_embedded_store, stop_embedded_store
from tests.mail import make_mail, send

SECRET_KEY = "archive-test-secret-key-of-32-bytes-or-more"
BIG_PAYLOAD = os.urandom(600 * 1024)  # the mail carrying it is over 512 KiB: its raw bytes go to GridFS
SMALL_PAYLOAD = b"%PDF-1.4 a small invoice\n" * 40

Client = AsyncMongoClient[dict[str, Any]]


@dataclass
class Source:
    settings: Settings
    client: Client
    database: str


def _with_file(message: EmailMessage, payload: bytes, filename: str) -> EmailMessage:
    message.add_attachment(payload, maintype="application", subtype="octet-stream", filename=filename)
    return message


async def _fill(gateway: Gateway) -> None:
    assert gateway.smtp is not None and gateway.workflows is not None
    await skills.replace([SkillEntry("printers", "printer toner"), SkillEntry("billing", "invoice refund")], actor=None)
    await make_user("admin@example.com", Role.ADMIN)
    await make_user("ann@example.com", Role.AGENT)
    await mailboxes.create(
        actor=None,
        box=gateway.box,
        address="support@localhost",
        imap_host="127.0.0.1",
        username="u",
        password="imap-pw",
        enabled=False,
    )
    first = _with_file(make_mail(message_id="<first@example.org>"), SMALL_PAYLOAD, "invoice.pdf")
    await send(gateway.smtp.port, first)
    big = make_mail(sender="bob@example.org", subject="The disk image", message_id="<big@example.org>")
    await send(gateway.smtp.port, _with_file(big, BIG_PAYLOAD, "disk.img"), sender="bob@example.org")
    reply = make_mail(subject="Re: Printer on fire", body="Still burning.", in_reply_to="<first@example.org>")
    await send(gateway.smtp.port, reply)
    await gateway.worker.idle()
    await gateway.workflows.wait_idle(60)


pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def source(tmp_path_factory: pytest.TempPathFactory, store_uri: str) -> AsyncIterator[Source]:
    """A store filled by a real gateway, stopped before the tests export it; filled once, as it takes a while.

    Tests only read it (export), or import into it to be refused."""
    database_name = f"test_{uuid.uuid4().hex[:12]}"
    directory = tmp_path_factory.mktemp("source")
    settings = make_settings(directory, store_uri, database_name, run_workflows=True, secret_key=SECRET_KEY)
    gateway = Gateway(settings)
    await gateway.start()
    try:
        await _fill(gateway)
    finally:
        await gateway.stop()
    client = db.make_client(store_uri)
    yield Source(settings, client, database_name)
    await client.drop_database(database_name)
    await client.close()


@pytest_asyncio.fixture(loop_scope="module")
async def target(source: Source) -> AsyncIterator[str]:
    """A fresh database on the same server, with its indexes, as `helpgate import` finds it."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    await db.init_models(source.client, name, ALL_MODELS)
    yield name
    await source.client.drop_database(name)


async def _documents(client: Client, database: str, name: str) -> dict[Any, dict[str, Any]]:
    if name.endswith(".chunks"):  # chunks are cut again on import: compare what they hold, not their _ids
        return {(d["files_id"], d["n"]): d["data"] async for d in client[database][name].find({})}
    return {document["_id"]: document async for document in client[database][name].find({})}


async def _compare(client: Client, source: str, target: str, *, password_hashes: bool) -> dict[str, int]:
    """Every exported collection, document for document; returns the number of documents per collection."""
    names = set(await client[source].list_collection_names()) - set(archive.LEFT_OUT)
    sizes = {}
    for name in sorted(names):
        expected = await _documents(client, source, name)
        if name == "users" and not password_hashes:
            for user in expected.values():
                user.pop("password_hash", None)
        assert await _documents(client, target, name) == expected, name
        sizes[name] = len(expected)
    return sizes


async def test_round_trip_copies_every_document_and_file(source: Source, target: str, tmp_path: Path) -> None:
    path = tmp_path / "helpgate.tar.gz"
    manifest = await archive.export(
        source.client[source.database], path, secret_key=SECRET_KEY, helpgate_version="test"
    )
    assert manifest.collections["tickets"].count == 2 and manifest.collections["messages"].count >= 3
    assert manifest.gridfs["raw_mail"].files == 1 and manifest.gridfs["raw_mail"].bytes > 600 * 1024
    assert manifest.gridfs["attachments"].files == 2
    assert "refresh_tokens" not in manifest.collections and not manifest.password_hashes

    report = await archive.import_archive(source.client[target], path, secret_key=SECRET_KEY)

    assert report.secret_key_matches
    sizes = await _compare(source.client, source.database, target, password_hashes=False)
    for name in ("tickets", "messages", "raw_messages", "attachments", "users", "mailboxes", "skills", "counters",
                 "outbox_events", "workflow_runs", "outbound_mail", "raw_mail.files", "raw_mail.chunks",
                 "attachments.chunks"):  # fmt: skip
        assert sizes[name] > 0, f"the seed left {name} empty: the comparison proves nothing there"
    users = await source.client[target]["users"].find({}).to_list()
    assert users and all("password_hash" not in user for user in users)
    mailbox = await source.client[target]["mailboxes"].find_one({})
    assert mailbox is not None and mailbox["password_encrypted"]  # still encrypted, with the same key


async def test_imported_store_serves_tickets_and_threads_replies(source: Source, target: str, tmp_path: Path) -> None:
    path = tmp_path / "helpgate.tar"
    await archive.export(
        source.client[source.database], path, secret_key=SECRET_KEY, helpgate_version="test", with_password_hashes=True
    )
    await archive.import_archive(source.client[target], path, secret_key=SECRET_KEY)
    await _compare(source.client, source.database, target, password_hashes=True)

    settings = source.settings.model_copy(update={"mongodb_database": target, "run_workflows": False})
    gateway = Gateway(settings)
    await gateway.start()
    try:
        assert gateway.smtp is not None
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.http_port}", timeout=30) as api:
            headers = await login(api, "admin@example.com", PASSWORD)
            ticket = (await api.get("/api/tickets/1", headers=headers)).json()
            assert ticket["subject"] == "Printer on fire" and len(ticket["messages"]) == 2
            assert ticket["messages"][0]["attachments"][0]["filename"] == "invoice.pdf"

            answer = make_mail(subject="Re: Printer on fire", body="Fixed now.", in_reply_to="<first@example.org>")
            await send(gateway.smtp.port, answer)
            await send(gateway.smtp.port, make_mail(subject="A new problem", message_id="<new@example.org>"))
            await gateway.worker.idle()

            ticket = (await api.get("/api/tickets/1", headers=headers)).json()
            assert [m["text"] for m in ticket["messages"]][-1] == "Fixed now."
            new = await Ticket.find_one({"subject": "A new problem"})
            assert new is not None and new.number == 3  # the ticket counter came along
    finally:
        await gateway.stop()


async def test_a_non_empty_target_is_refused(source: Source, tmp_path: Path) -> None:
    path = tmp_path / "helpgate.tar"
    database = source.client[source.database]
    await archive.export(database, path, secret_key=SECRET_KEY, helpgate_version="test")
    before = await database["tickets"].count_documents({})
    with pytest.raises(archive.TargetNotEmpty, match=r"is not empty .*tickets.*HELPGATE_MONGODB_DATABASE"):
        await archive.import_archive(database, path, secret_key=SECRET_KEY)
    assert await database["tickets"].count_documents({}) == before


async def _nothing_written(client: Client, database: str) -> None:
    for name in await client[database].list_collection_names():
        assert await client[database][name].find_one({}) is None, name


def _rewrite(path: Path, target: Path, change: Any) -> None:
    """Copy the archive entry by entry, letting `change(name, data)` alter an entry's bytes."""
    with tarfile.open(path) as source, tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as out:
        for member in source:
            reader = source.extractfile(member)
            assert reader is not None
            data = change(member.name, reader.read())
            member.size = len(data)
            out.addfile(member, io.BytesIO(data))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("truncated", "damaged or truncated|incomplete"),
        ("not_a_tar", "is not a tar archive"),
        ("edited_line", "changed or damaged after export"),
        ("edited_blob", "does not match its sha256"),
        ("missing_entry", "is incomplete: collections/users.jsonl is missing"),
        ("bad_json", "not a document"),
    ],
)
async def test_a_damaged_archive_is_refused_and_nothing_is_written(
    source: Source, target: str, tmp_path: Path, damage: str, message: str
) -> None:
    good = tmp_path / "good.tar.gz"
    manifest = await archive.export(
        source.client[source.database], good, secret_key=SECRET_KEY, helpgate_version="test"
    )
    plain = tmp_path / "good.tar"
    plain.write_bytes(gzip.decompress(good.read_bytes()))
    bad = tmp_path / "bad.tar"
    if damage == "truncated":
        data = good.read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    elif damage == "not_a_tar":
        bad.write_bytes(b"this is not an archive\n" * 100)
    elif damage == "edited_line":
        _rewrite(plain, bad, lambda name, data: data.replace(b"Printer on fire", b"Printer on FIRE"))
    elif damage == "edited_blob":
        _rewrite(
            plain,
            bad,
            lambda name, data: data[:-1] + b"!" if name.startswith("gridfs/raw_mail/") and name[-1] != "l" else data,
        )
    elif damage == "missing_entry":
        with tarfile.open(plain) as whole, tarfile.open(bad, "w") as out:
            for member in whole:
                if member.name != "collections/users.jsonl":
                    out.addfile(member, whole.extractfile(member))
    else:
        _rewrite(plain, bad, lambda name, data: b"{not json\n" + data if name == "collections/skills.jsonl" else data)

    with pytest.raises(ArchiveError, match=message):
        await archive.import_archive(source.client[target], bad, secret_key=SECRET_KEY)
    await _nothing_written(source.client, target)
    assert check(plain) == manifest  # the undamaged copy passes


async def test_export_refuses_to_overwrite(source: Source, tmp_path: Path) -> None:
    path = tmp_path / "exists.tar"
    path.write_bytes(b"keep me")
    with pytest.raises(ArchiveError, match="exists"):
        await archive.export(source.client[source.database], path, secret_key=SECRET_KEY, helpgate_version="test")
    assert path.read_bytes() == b"keep me"


async def _gridfs_file(database: Any, file_id: ObjectId, length: int, chunk_size: int) -> None:
    await database["attachments.files"].insert_one(
        {"_id": file_id, "length": length, "chunkSize": chunk_size, "uploadDate": utcnow(), "filename": "f"}
    )


async def test_export_reads_chunks_in_one_pass_whatever_their_order(source: Source, tmp_path: Path) -> None:
    """Files whose chunks interleave, arrive out of order, or are missing, and an empty file: each is exported
    whole or the export fails saying which file cannot be read."""
    database = source.client[f"test_{uuid.uuid4().hex[:12]}"]
    a, b, c, empty = ObjectId(), ObjectId(), ObjectId(), ObjectId()
    content = {a: os.urandom(10), b: os.urandom(8), c: os.urandom(9), empty: b""}
    for file_id, data in content.items():
        await _gridfs_file(database, file_id, len(data), 4)
    # stored order: a and b interleave, c's chunks come backwards
    order = [(a, 0), (b, 0), (c, 2), (a, 1), (b, 1), (c, 1), (a, 2), (c, 0)]
    for file_id, n in order:
        piece = content[file_id][n * 4 : n * 4 + 4]
        await database["attachments.chunks"].insert_one({"files_id": file_id, "n": n, "data": piece})
    try:
        path = tmp_path / "order.tar"
        await archive.export(database, path, secret_key=SECRET_KEY, helpgate_version="test")
        check(path)
        with tarfile.open(path) as tar:
            for file_id, data in content.items():
                member = tar.extractfile(f"gridfs/attachments/{file_id}")
                assert member is not None and member.read() == data, file_id

        await database["attachments.chunks"].delete_one({"files_id": c, "n": 1})
        broken = tmp_path / "broken.tar"
        with pytest.raises(ArchiveError, match=f"GridFS file {c} of bucket attachments"):
            await archive.export(database, broken, secret_key=SECRET_KEY, helpgate_version="test")
        assert sorted(os.listdir(tmp_path)) == ["order.tar"]  # neither the archive nor its partial file
    finally:
        await source.client.drop_database(database.name)


def _cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "helpgate", *args]
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def _env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELPGATE_") and k not in {"MONGODB_URI"}}
    return {**env, "HELPGATE_SECRET_KEY": SECRET_KEY, **values}


async def test_cli_moves_a_store_into_a_fresh_embedded_one(source: Source, store_uri: str, tmp_path: Path) -> None:
    archive_path = tmp_path / "moved.tgz"
    exporting = _env(MONGODB_URI=store_uri, HELPGATE_MONGODB_DATABASE=source.database)
    exported = _cli("export", str(archive_path), "--with-password-hashes", env=exporting, cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    assert "  tickets: 2" in exported.stderr and "exported " in exported.stdout

    fresh = tmp_path / "fresh"
    importing = _env(HELPGATE_DATA_DIR=str(fresh))  # no MONGODB_URI: the embedded store in a new data dir
    imported = _cli("import", str(archive_path), env=importing, cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    assert "imported " in imported.stdout and "warning" not in imported.stderr

    again = _cli("import", str(archive_path), env=importing, cwd=tmp_path)
    assert again.returncode == 4 and "is not empty" in again.stderr and "Traceback" not in again.stderr
    bad = tmp_path / "bad.tgz"
    bad.write_bytes(archive_path.read_bytes()[:2000])
    empty = f"test_{uuid.uuid4().hex[:12]}"
    elsewhere = _env(MONGODB_URI=store_uri, HELPGATE_MONGODB_DATABASE=empty)
    damaged = _cli("import", str(bad), env=elsewhere, cwd=tmp_path)
    assert damaged.returncode == 3 and "truncated" in damaged.stderr and "Traceback" not in damaged.stderr
    await _nothing_written(source.client, empty)
    await source.client.drop_database(empty)

    process, uri = start_embedded_store(fresh)
    client = db.make_client(uri)
    try:
        await _compare_across(source.client, source.database, client, "helpgate")
    finally:
        await client.close()
        stop_embedded_store(process)


async def _compare_across(left: Client, left_name: str, right: Client, right_name: str) -> None:
    for name in sorted(set(await left[left_name].list_collection_names()) - set(archive.LEFT_OUT)):
        expected = await _documents(left, left_name, name)
        assert await _documents(right, right_name, name) == expected, name
