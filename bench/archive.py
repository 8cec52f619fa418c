"""`helpgate export` and `helpgate import` on the embedded store, each next to a bare baseline in the same run.

The source is an embedded store (``EmbeddedStore``, Beanie initialised with ``ALL_MODELS``, as ``helpgate
serve`` starts it) filled with ``--tickets`` tickets by ``bench/store.py``'s ``fill``, driving real mail
through the inbound pipeline (``raw_messages.store``, then ``pipeline.process``): each mail comes from its own
customer, with a ~2 KB text body and one attachment (a 6 KB PDF; every third mail also a 20 KB PNG), and
every fourth ticket gets the customer's follow-up as a second message. So the store holds tickets, messages,
raw mail, bodies, attachments (GridFS), users, counters and outbox events, as a live installation does.

Then, with the service functions ``helpgate export`` / ``import`` call (``maintenance/archive.py``):

* export: ``archive.export`` to ``<work dir>/helpgate-export.tar.gz`` (``--plain`` for a ``.tar``), between two
  runs of the baseline (their mean is reported): a bare cursor reading the same documents (every exported
  collection, and the GridFS files and chunks the export reads too) and doing nothing with them;
* import: ``archive.import_archive`` into a fresh embedded store (its models initialised first, as
  ``helpgate import`` does), and as the baseline bare ``insert_many`` of the same documents (read from the
  source into memory beforehand; batches of at most 500 documents or 8 MiB, as the import writes them) into
  another fresh embedded store initialised the same way.

Rates are documents per second, counting the documents of the collections as the archive's manifest does
(GridFS bytes come along but are not counted); a ratio is the export's (import's) rate over its baseline's.
Progress goes to stderr, the report to stdout, each with the load average (2 cores shared).

    uv run python -m bench.archive [--tickets 2000] [--concurrency 4] [--plain] [--keep DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

import bson

from bench.store import fill, filler_text
from helpgate import __version__
from helpgate.core import db
from helpgate.core.clock import utcnow
from helpgate.inbound import pipeline, raw_messages
from helpgate.maintenance import archive
from helpgate.models import ALL_MODELS, RawStatus

DATABASE = "helpgate"
SUPPORT = "support@localhost"
SECRET_KEY = "bench-archive-secret-key-of-at-least-32-bytes"  # noqa: S105 - a throwaway store
TEXT_BYTES = 2048
PDF_BYTES = 6 * 1024
PNG_BYTES = 20 * 1024
FOLLOW_UP_EVERY = 4
PNG_EVERY = 3
INSERT_BATCH_DOCUMENTS = archive.INSERT_BATCH_DOCUMENTS
INSERT_BATCH_BYTES = archive.INSERT_BATCH_BYTES
PROGRESS_SECONDS = 5.0


def progress_line(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def load() -> str:
    return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


class MailOpener:
    """Opens each ticket from a real mail through the inbound pipeline (`fill` drives it)."""

    def __init__(self, seed: int = 8) -> None:
        self.rng = random.Random(seed)
        self.opened = 0

    def _mail(self, n: int, *, reply_to: str | None = None) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = f"Customer {n} <customer{n}@example.com>"
        mail["To"] = SUPPORT
        mail["Subject"] = f"{'Re: ' if reply_to else ''}Archive bench question {n}"
        mail["Date"] = format_datetime(utcnow())
        mail["Message-ID"] = make_msgid(f"c{n}", domain="bench.example.com")
        if reply_to:
            mail["In-Reply-To"] = mail["References"] = reply_to
        mail.set_content(filler_text(self.rng, TEXT_BYTES))
        if reply_to is None:
            mail.add_attachment(self.rng.randbytes(PDF_BYTES), "application", "pdf", filename=f"invoice-{n}.pdf")
            if n % PNG_EVERY == 0:
                mail.add_attachment(self.rng.randbytes(PNG_BYTES), "image", "png", filename=f"screen-{n}.png")
        return mail

    async def _deliver(self, mail: EmailMessage, n: int) -> None:
        raw = await raw_messages.store(
            data=bytes(mail), source="smtp", mailbox=SUPPORT, envelope_from=f"customer{n}@example.com"
        )
        status = await pipeline.process(raw)
        if status is not RawStatus.PROCESSED:
            raise RuntimeError(f"mail {n} was {status}, not processed: {raw.reason}")

    async def open_one(self) -> None:
        n = self.opened
        self.opened += 1
        first = self._mail(n)
        await self._deliver(first, n)
        if n % FOLLOW_UP_EVERY == 0:
            await self._deliver(self._mail(n, reply_to=str(first["Message-ID"])), n)


@contextlib.asynccontextmanager
async def embedded(data_dir: Path) -> AsyncIterator[archive.Database]:
    """An embedded store in `data_dir` with helpgate's models (and indexes) on its database."""
    store = db.EmbeddedStore(data_dir)
    client = db.make_client(await store.start())
    try:
        await db.init_models(client, DATABASE, ALL_MODELS)
        yield client[DATABASE]
    finally:
        await client.close()
        await store.stop()


async def exported_collections(database: archive.Database) -> list[str]:
    """What an export reads: every collection it keeps, and each GridFS bucket's files and chunks."""
    names = await database.list_collection_names()
    return sorted(name for name in names if name not in archive.LEFT_OUT and not name.startswith("system."))


async def bare_read(database: archive.Database, names: Sequence[str]) -> float:
    """Seconds a bare cursor takes to read every document of `names`."""
    started = time.perf_counter()
    for name in names:
        async for _document in database[name].find({}, batch_size=200):
            pass
    return time.perf_counter() - started


async def read_all(database: archive.Database, names: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    return {name: [document async for document in database[name].find({})] for name in names}


def batches(documents: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Cut as the import cuts: at most INSERT_BATCH_DOCUMENTS documents or INSERT_BATCH_BYTES of BSON."""
    cut: list[list[dict[str, Any]]] = []
    batch: list[dict[str, Any]] = []
    size = 0
    for document in documents:
        batch.append(document)
        size += len(bson.encode(document))
        if len(batch) >= INSERT_BATCH_DOCUMENTS or size >= INSERT_BATCH_BYTES:
            cut.append(batch)
            batch, size = [], 0
    return [*cut, batch] if batch else cut


async def bare_insert(database: archive.Database, documents: dict[str, list[dict[str, Any]]]) -> float:
    """Seconds `insert_many` takes to write `documents`, cut in batches beforehand."""
    prepared = {name: batches(docs) for name, docs in documents.items()}
    started = last = time.perf_counter()
    written = 0
    for name, cut in prepared.items():
        for batch in cut:
            await database[name].insert_many(batch, ordered=True)
            written += len(batch)
            if time.perf_counter() - last >= PROGRESS_SECONDS:
                last = time.perf_counter()
                progress_line(f"  [bare insert] {written} documents, now {name}")
    return time.perf_counter() - started


@dataclass
class Figures:
    documents: int = 0
    archive_bytes: int = 0
    export_seconds: float = 0.0
    bare_read_seconds: tuple[float, float] = (0.0, 0.0)
    import_seconds: float = 0.0
    bare_insert_seconds: float = 0.0
    loads: dict[str, str] = field(default_factory=dict)


def archive_progress(what: str, count: int, finished: bool) -> None:
    if finished:
        progress_line(f"  {what}: {count}")


async def run(args: argparse.Namespace, work: Path) -> Figures:
    figures = Figures(loads={"start": load()})
    path = work / ("helpgate-export.tar" if args.plain else "helpgate-export.tar.gz")
    async with embedded(work / "source") as source:
        progress_line(f"[fill] {args.tickets} tickets through the inbound pipeline; {load()}")
        with contextlib.redirect_stdout(sys.stderr):  # fill's progress lines
            await fill(MailOpener(), args.tickets, args.concurrency, deadline=float("inf"))
        progress_line(f"[export] to {path}; {load()}")
        names = await exported_collections(source)
        before = await bare_read(source, names)  # the baseline runs just before and just after the export
        started = time.perf_counter()
        manifest = await archive.export(
            source, path, secret_key=SECRET_KEY, helpgate_version=__version__, progress=archive_progress
        )
        figures.export_seconds = time.perf_counter() - started
        figures.bare_read_seconds = (before, await bare_read(source, names))
        figures.documents, figures.archive_bytes = manifest.documents(), path.stat().st_size
        figures.loads["after export"] = load()
        documents = await read_all(source, names)
    progress_line(f"[bare insert] {sum(map(len, documents.values()))} documents into a new store; {load()}")
    async with embedded(work / "bare") as bare:
        figures.bare_insert_seconds = await bare_insert(bare, documents)
    del documents
    figures.loads["after bare insert"] = load()
    progress_line(f"[import] {path} into a new store; {load()}")
    async with embedded(work / "imported") as target:
        started = time.perf_counter()
        await archive.import_archive(target, path, secret_key=SECRET_KEY, progress=archive_progress)
        figures.import_seconds = time.perf_counter() - started
    figures.loads["after import"] = load()
    return figures


def report(args: argparse.Namespace, figures: Figures) -> None:
    docs = figures.documents
    bare_read_seconds = sum(figures.bare_read_seconds) / 2
    export_rate, read_rate = docs / figures.export_seconds, docs / bare_read_seconds
    import_rate, insert_rate = docs / figures.import_seconds, docs / figures.bare_insert_seconds
    print(f"archive bench: {args.tickets} tickets, {docs:,} documents, archive {figures.archive_bytes / 1e6:.1f} MB")
    print(
        f"export  {figures.export_seconds:7.1f} s  {export_rate:8,.0f} documents/s;  bare cursor "
        f"{bare_read_seconds:6.2f} s ({figures.bare_read_seconds[0]:.2f}, {figures.bare_read_seconds[1]:.2f})"
        f"  {read_rate:8,.0f}/s;  ratio {export_rate / read_rate:.2f}"
    )
    print(
        f"import  {figures.import_seconds:7.1f} s  {import_rate:8,.0f} documents/s;  bare insert_many "
        f"{figures.bare_insert_seconds:6.1f} s  {insert_rate:8,.0f}/s;  ratio {import_rate / insert_rate:.2f}"
    )
    for when, value in figures.loads.items():
        print(f"{when}: {value} (2 cores shared)")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=2000, help="tickets to fill the source store with")
    parser.add_argument("--concurrency", type=int, default=4, help="mails processed at once while filling")
    parser.add_argument("--plain", action="store_true", help="an uncompressed .tar instead of .tar.gz")
    parser.add_argument("--keep", type=Path, help="work in this (new) directory and keep it")
    args = parser.parse_args(argv)
    if args.tickets < 1 or args.concurrency < 1:
        parser.error("--tickets and --concurrency must be at least 1")
    if args.keep is not None and args.keep.exists():
        parser.error(f"--keep {args.keep} exists: name a new directory")
    return args


async def main_async(args: argparse.Namespace) -> Figures:
    task = asyncio.current_task()
    assert task is not None
    # SIGTERM unwinds like Ctrl-C does: the store children are stopped and the temp dir removed.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    if args.keep is not None:
        args.keep.mkdir(parents=True)
        return await run(args, args.keep)
    work = Path(tempfile.mkdtemp(prefix="helpgate-bench-archive-"))
    try:
        return await run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    try:
        figures = asyncio.run(main_async(args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted", file=sys.stderr)
        return 130
    report(args, figures)
    print(f"total time {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
