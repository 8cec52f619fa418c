"""The store: Beanie on pymongo's async client, and the embedded server used when MONGODB_URI is unset.

The embedded store is mongoeco's MongoDB wire server on a SQLite file in the data dir. It runs in a child
process (``python -m helpgate.core.db``) so its CPU-heavy document decoding uses the second core and can
never stall the SMTP and HTTP event loop; helpgate reaches it through a plain ``mongodb://`` URI, exactly
as it reaches real MongoDB. Only this module imports mongoeco.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from beanie import Document, init_beanie
from bson import ObjectId
from pymongo import AsyncMongoClient

from helpgate.core.errors import ConfigurationError

log = logging.getLogger(__name__)

#: The mongoeco release the insert fix below was read against and measured on (bench/store.py).
PATCHED_MONGOECO_VERSION = "4.11.0"
READY_PREFIX = "HELPGATE-STORE-READY "
BUSY_PREFIX = "HELPGATE-STORE-BUSY"
STORE_FILE = "store.sqlite3"
URI_FILE = "store.uri"
LOCK_FILE = "store.lock"


def make_client(uri: str) -> AsyncMongoClient[dict[str, Any]]:
    """A client that returns aware datetimes and acknowledges writes only once they are journaled."""
    return AsyncMongoClient(uri, tz_aware=True, w="majority", journal=True, serverSelectionTimeoutMS=5000)


async def init_models(
    client: AsyncMongoClient[dict[str, Any]], database: str, models: Sequence[type[Document]]
) -> None:
    await init_beanie(database=client[database], document_models=list(models))


# --- the embedded server (child process side) -------------------------------------------------------


def flat_insert_engine_class() -> type[Any]:
    """mongoeco's SQLite engine with the fixes helpgate depends on, or the stock engine on other versions.

    mongoeco 4.11 validates every single ``insert_one`` by decoding the whole collection to look for a
    *numerically* equal ``_id`` (``scan_payload_id=True``): 1, 1.0 and Int64(1) are the same key in MongoDB
    but not the same storage key. The storage-key lookup it does first is exact for every other ``_id``
    type, so for an ``_id`` with no numeric part (our ObjectIds) the scan can never find anything the
    lookup missed. Skipping it keeps the insert rate flat instead of falling linearly with collection size.
    Second, it remembers which fields hold no arrays (see FlatInsertSQLiteEngine.__init__), which keeps
    updates and indexed reads from scanning the collection after every write.
    ``tests/core/test_db.py`` fails when these stop applying.
    """
    import mongoeco
    from mongoeco.core.identity import id_contains_numeric_value
    from mongoeco.engines.sqlite import SQLiteEngine

    if mongoeco.__version__ != PATCHED_MONGOECO_VERSION:
        log.warning(
            "store.patch_skipped mongoeco=%s checked=%s: inserts slow down as collections grow",
            mongoeco.__version__,
            PATCHED_MONGOECO_VERSION,
        )
        return SQLiteEngine

    class FlatInsertSQLiteEngine(SQLiteEngine):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            # (db, collection, probe, field) known to hold no array (or no tagged value of a type) along the
            # field's path. mongoeco caches these facts too, but drops its cache on every write and then
            # answers with full-collection json_type()/json_extract() scans, once per unique index per write
            # and again when planning each query.
            self._array_free: set[tuple[str, str, str, str]] = set()

        def _validate_document_against_unique_indexes(
            self, db_name: str, coll_name: str, document: Any, **kwargs: Any
        ) -> None:
            # Every written document passes here (inserts, updates, replacements, bulk writes): the one
            # place where an array can enter a collection, so the place to forget what it disproves.
            if self._array_free:
                for known in [k for k in self._array_free if k[:2] == (db_name, coll_name)]:
                    probe, field = known[2], known[3]
                    if _path_has_array(document, field) or (
                        probe.startswith("tagged:") and _path_is_exotic(document, field)
                    ):
                        self._array_free.discard(known)
            if kwargs.get("scan_payload_id") and not id_contains_numeric_value(document.get("_id")):
                kwargs["scan_payload_id"] = False
            super()._validate_document_against_unique_indexes(db_name, coll_name, document, **kwargs)

        def _field_is_top_level_array_in_collection(self, db_name: str, coll_name: str, field: str) -> bool:
            return self._remembered(db_name, coll_name, "top", field, super()._field_is_top_level_array_in_collection)

        def _field_traverses_array_in_collection(self, db_name: str, coll_name: str, field: str) -> bool:
            return self._remembered(
                db_name, coll_name, "traverses", field, super()._field_traverses_array_in_collection
            )

        def _field_contains_tagged_value_type_in_collection(
            self, db_name: str, coll_name: str, field: str, value_type: str
        ) -> bool:
            scan = super()._field_contains_tagged_value_type_in_collection
            return self._remembered(
                db_name, coll_name, f"tagged:{value_type}", field, lambda d, c, f: scan(d, c, f, value_type)
            )

        def _remembered(self, db_name: str, coll_name: str, probe: str, field: str, scan: Any) -> bool:
            key = (db_name, coll_name, probe, field)
            if key in self._array_free:
                return False
            found = bool(scan(db_name, coll_name, field))
            if not found:
                self._array_free.add(key)
            return found

        def _create_sqlite_connection(self) -> Any:
            connection = super()._create_sqlite_connection()
            # mongoeco runs WAL with synchronous=NORMAL, which may lose the last commits on power loss.
            # Mail is acknowledged only after a durable write, so sync every commit.
            connection.execute("PRAGMA synchronous=FULL")
            return connection

        def _connect_sync(self) -> None:
            super()._connect_sync()
            # The change-stream bookkeeping connection commits a lease three times per write; losing its
            # last commits on power loss costs nothing (helpgate reads no change streams), syncing them
            # cost two thirds of every insert. Documents stay on the FULL connection above.
            delivery = self._change_delivery_connection
            if delivery is not None:
                delivery.execute("PRAGMA synchronous=NORMAL")

    return FlatInsertSQLiteEngine


_PLAIN_SCALARS = (str, bool, float, datetime, ObjectId, type(None))


def _path_is_exotic(document: Any, field: str) -> bool:
    """Whether the value at the path may be stored tagged (bytes, Decimal128, big integers, sub-documents...).

    Conservative: anything but a plain JSON-like scalar counts, and so does a missing intermediate document.
    """
    value = document
    for part in field.split("."):
        if not isinstance(value, dict):
            return value is not None and not isinstance(value, _PLAIN_SCALARS)
        if part not in value:
            return False
        value = value[part]
    if isinstance(value, int) and not isinstance(value, bool):
        return abs(value) >= 2**53
    return not isinstance(value, _PLAIN_SCALARS)


def _path_has_array(document: Any, field: str) -> bool:
    """Whether an array appears anywhere along the dotted path (conservative: any list counts)."""
    value = document
    for part in field.split("."):
        if isinstance(value, list):
            return True
        if not isinstance(value, dict) or part not in value:
            return False
        value = value[part]
    return isinstance(value, list)


async def _serve_embedded(data_dir: Path, host: str, port: int) -> int:
    from mongoeco.wire import AsyncMongoEcoProxyServer

    lock = (data_dir / LOCK_FILE).open("a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(BUSY_PREFIX, flush=True)
        return 0
    engine = flat_insert_engine_class()(str(data_dir / STORE_FILE))
    server = AsyncMongoEcoProxyServer(engine=engine, host=host, port=port)
    address = await server.start()
    uri = f"mongodb://{address.host}:{address.port}/?directConnection=true"
    uri_file = data_dir / URI_FILE
    uri_file.write_text(uri + "\n")
    print(READY_PREFIX + uri, flush=True)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    # The parent holds our stdin open for as long as it lives: EOF means it is gone, so stop too.
    loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not os.read(sys.stdin.fileno(), 1024) else None)
    await stop.wait()
    with contextlib.suppress(FileNotFoundError):
        uri_file.unlink()
    await server.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="helpgate's embedded MongoDB-compatible store")
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="store: %(levelname)s %(name)s %(message)s")
    args.data_dir.mkdir(parents=True, exist_ok=True)
    return asyncio.run(_serve_embedded(args.data_dir, args.host, args.port))


# --- the embedded server (parent side) --------------------------------------------------------------


@dataclass
class EmbeddedStore:
    """Starts the embedded server for a data dir, or joins the one another helpgate process runs there."""

    data_dir: Path
    start_timeout: float = 60.0
    uri: str = ""
    _process: asyncio.subprocess.Process | None = field(default=None, repr=False)

    @property
    def owned(self) -> bool:
        return self._process is not None

    async def start(self) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "helpgate.core.db",
            str(self.data_dir),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,  # Ctrl-C reaches helpgate, which then stops the store in order
        )
        assert process.stdout is not None
        try:
            line = await asyncio.wait_for(process.stdout.readline(), self.start_timeout)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise ConfigurationError(f"the embedded store in {self.data_dir} did not start in time") from None
        text = line.decode().strip()
        if text.startswith(READY_PREFIX):
            self._process = process
            self.uri = text.removeprefix(READY_PREFIX)
            log.info("store.embedded_started path=%s uri=%s", self.data_dir / STORE_FILE, self.uri)
            return self.uri
        await process.wait()
        if text == BUSY_PREFIX:
            uri_file = self.data_dir / URI_FILE
            if uri_file.exists():
                self.uri = uri_file.read_text().strip()
                log.info("store.embedded_joined uri=%s", self.uri)
                return self.uri
        raise ConfigurationError(
            f"the embedded store in {self.data_dir} could not start (exit {process.returncode}); "
            "its error is printed above"
        )

    async def stop(self, timeout: float = 15.0) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        assert process.stdin is not None
        process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            log.warning("store.embedded_kill reason=did not stop in %.0fs", timeout)
            process.kill()
            await process.wait()


if __name__ == "__main__":
    raise SystemExit(main())
