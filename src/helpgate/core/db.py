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
import itertools
import logging
import math
import os
import signal
import sqlite3
import subprocess
import sys
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from beanie import Document, init_beanie
from bson import ObjectId
from pymongo import AsyncMongoClient, monitoring

from helpgate.core import metrics
from helpgate.core.errors import ConfigurationError

log = logging.getLogger(__name__)

#: The mongoeco release the fixes below were read against and measured on (bench/store.py).
PATCHED_MONGOECO_VERSION = "4.11.0"
READY_PREFIX = "HELPGATE-STORE-READY "
BUSY_PREFIX = "HELPGATE-STORE-BUSY"
STORE_FILE = "store.sqlite3"
URI_FILE = "store.uri"
IDLE_READERS = 8  # reader connections the embedded store keeps open for the next cursors
LOCK_FILE = "store.lock"


class CommandCounter(monitoring.CommandListener):
    """Counts each command a client sends (`helpgate_store_commands_total`): what every use case costs the store,
    seen by operators the way bench/events.py sees it."""

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        metrics.STORE_COMMANDS.labels(command=event.command_name).inc()

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


_COMMANDS = CommandCounter()


def make_client(uri: str) -> AsyncMongoClient[dict[str, Any]]:
    """A client that returns aware datetimes, acknowledges writes only once they are journaled, and counts its
    commands."""
    return AsyncMongoClient(
        uri, tz_aware=True, w="majority", journal=True, serverSelectionTimeoutMS=5000, event_listeners=[_COMMANDS]
    )


async def init_models(
    client: AsyncMongoClient[dict[str, Any]], database: str, models: Sequence[type[Document]]
) -> None:
    await init_beanie(database=client[database], document_models=list(models))


# --- the embedded server (child process side) -------------------------------------------------------


def flat_insert_engine_class(*, synchronous: str = "FULL", change_records: bool = False) -> type[Any]:
    """mongoeco's SQLite engine with the fixes helpgate depends on, or the stock engine on other versions.

    mongoeco 4.11 validates every single ``insert_one`` by decoding the whole collection to look for a
    *numerically* equal ``_id`` (``scan_payload_id=True``): 1, 1.0 and Int64(1) are the same key in MongoDB
    but not the same storage key. The storage-key lookup it does first is exact for every other ``_id``
    type, so for an ``_id`` with no numeric part (our ObjectIds) the scan can never find anything the
    lookup missed. Skipping it keeps the insert rate flat instead of falling linearly with collection size.
    Second, it remembers which fields hold no arrays, which sort fields SQL can order and which hold a
    single type (see FlatInsertSQLiteEngine.__init__), which keeps updates, indexed reads and sorted pages
    from scanning the collection after every write; and a page sorted on an indexed field walks that index
    (_build_scalar_sort_select_sql) instead of sorting the whole collection.
    Third, an equality on a string that the field's index has no entry for answers "no match" from the index
    (see FlatInsertSQLiteEngine._no_index_entry): stock mongoeco trusts the index only when it finds a
    document, so every miss (each new ticket's ``find_one({"origin_key": ...})``) decoded the whole
    collection's JSON, twice. Fourth, index entries are deleted per document through an index (see
    _connect_sync), not by scanning the collection's entries. Fifth, unless `change_records`, nothing is
    recorded for change streams, which helpgate never opens (_install_unrecorded_append_change). Sixth, a
    conditional write by `_id` (a claim) reads its one document by `_id` instead of scanning the collection for
    the other conditions (_select_first_document_for_plan). Seventh, the connections that cursors read on are
    kept when closed and handed out again (_create_sqlite_connection).
    ``tests/core/test_db.py`` fails when these stop applying, and checks the sixth against stock.
    """
    import mongoeco
    from mongoeco.core.filtering import QueryEngine
    from mongoeco.core.identity import id_contains_numeric_value
    from mongoeco.core.query_plan import AndCondition, EqualsCondition, MatchAll

    def _id_clause(plan: Any) -> Any:
        """The `_id` equality of an AND of conditions (the others must still match), or None."""
        if not isinstance(plan, AndCondition):
            return None
        for clause in plan.clauses:
            if isinstance(clause, EqualsCondition) and clause.field == "_id" and isinstance(clause.value, ObjectId):
                return clause
        return None

    from mongoeco.engines._sqlite_connection import SQLiteConnection, sqlite_read_scope
    from mongoeco.engines.sqlite import SQLiteEngine

    class ReusedConnection(SQLiteConnection):
        """A connection that its engine may take back when closed, instead of closing it."""

        engine: weakref.ref[Any] | None = None

        def close(self) -> None:
            owner = self.engine() if self.engine is not None else None
            if owner is None or not owner.take_back(self):
                super().close()

    if mongoeco.__version__ != PATCHED_MONGOECO_VERSION:
        log.warning(
            "store.patch_skipped mongoeco=%s checked=%s: inserts slow down as collections grow",
            mongoeco.__version__,
            PATCHED_MONGOECO_VERSION,
        )
        return SQLiteEngine

    if not change_records:
        _install_unrecorded_append_change()

    class FlatInsertSQLiteEngine(SQLiteEngine):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            # (db, collection, probe, field) known to hold no array (or no tagged value of a type, or for
            # "sort" nothing that SQL cannot order) along the field's path. mongoeco caches these facts too,
            # but drops its cache on every write and then answers with full-collection json_type() and
            # json_extract() scans, once per unique index per write and again when planning each query.
            # Kept per collection, so a write checks only its own collection's facts.
            self._array_free: dict[tuple[str, str], set[tuple[str, str]]] = {}  # (db, coll) -> {(probe, field)}
            self._entries_indexed_on: object | None = None
            # (db, collection, field) -> "number", "string" or "bool": every document holds one of that
            # type there. Stock counts the whole collection's types again after each write.
            self._uniform_types: dict[tuple[str, str], dict[str, str]] = {}  # (db, coll) -> {field: kind}
            # Counts written documents: a fact scanned while a write went by is not kept (readers on their
            # own connections scan without the engine lock).
            self._writes = 0
            self._idle_readers: list[Any] = []  # reader connections closed, kept to be handed out again

        def _validate_document_against_unique_indexes(
            self, db_name: str, coll_name: str, document: Any, **kwargs: Any
        ) -> None:
            # Every written document passes here (inserts, updates, replacements, bulk writes): the one
            # place where an array can enter a collection, so the place to forget what it disproves.
            self._writes += 1
            facts = self._array_free.get((db_name, coll_name), set())
            for known in tuple(facts):  # a copy: readers add facts from other threads
                probe, field = known
                if _path_has_array(document, field) or (
                    probe.startswith(("tagged:", "sort")) and _path_is_exotic(document, field)
                ):
                    facts.discard(known)
            types = self._uniform_types.get((db_name, coll_name), {})
            for field, kind in tuple(types.items()):
                if not _path_holds_type(document, field, kind):
                    types.pop(field, None)
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
            facts = self._array_free.setdefault((db_name, coll_name), set())
            if (probe, field) in facts:
                return False
            writes = self._writes
            found = bool(scan(db_name, coll_name, field))
            if not found and writes == self._writes:
                facts.add((probe, field))
            return found

        def _field_has_uniform_scalar_sort_type_in_collection(
            self, db_name: str, coll_name: str, field: str
        ) -> str | None:
            types = self._uniform_types.setdefault((db_name, coll_name), {})
            if field in types:
                return types[field]
            writes = self._writes
            found = super()._field_has_uniform_scalar_sort_type_in_collection(db_name, coll_name, field)
            if isinstance(found, str) and writes == self._writes:
                types[field] = found
            return found if isinstance(found, str) else None

        def _sort_requires_python(self, db_name: str, coll_name: str, plan: Any, sort: Any) -> bool:
            # Stock asks, for every sorted find, whether a matching document holds an array or an embedded
            # or tagged-number document at a sort field: a query that decodes every matching document, i.e.
            # the whole collection for the ticket list, and again after every write. Asked once for the
            # whole collection, a "no" holds for every filter until a write brings such a value.
            learn = super()._sort_requires_python
            if (
                sort
                and not self._plan_has_array_traversing_paths(db_name, coll_name, plan)
                and not any(
                    self._remembered(
                        db_name, coll_name, "sort", field, lambda d, c, f: learn(d, c, MatchAll(), [(f, 1)])
                    )
                    for field, _direction in sort
                )
            ):
                return False
            return bool(learn(db_name, coll_name, plan, sort))

        def _build_scalar_sort_select_sql(self, db_name: str, coll_name: str, plan: Any, **kwargs: Any) -> Any:
            # A sort on a single-field index orders its entries by (element_key, storage_key) after joining
            # every document, so SQLite sorts the whole collection before the LIMIT. mongoeco takes this path
            # only when every document holds one type there, so all the entries share one type_score:
            # leading with it changes no order and lets SQLite walk its index and stop at the LIMIT.
            built = super()._build_scalar_sort_select_sql(db_name, coll_name, plan, **kwargs)
            if built is None:
                return None
            sql, params = built
            for order in ("ASC", "DESC"):
                stock = f" ORDER BY scalar_index_entries.element_key {order}, documents.storage_key ASC"
                at = sql.rfind(stock)
                if at >= 0:
                    sql = (
                        f"{sql[:at]} ORDER BY scalar_index_entries.type_score {order}, "
                        f"scalar_index_entries.element_key {order}, scalar_index_entries.storage_key ASC"
                        f"{sql[at + len(stock) :]}"
                    )
            return sql, params

        def _select_first_document_for_plan(
            self, db_name: str, coll_name: str, plan: Any, *, hint: Any = None, context: Any = None
        ) -> Any:
            # Used by find_one, update_one, delete_one and find_one_and_*: stock falls back to a full scan
            # (json_extract over every document) whenever the index lookup finds nothing.
            if hint is None and self._no_index_entry(db_name, coll_name, plan, context):
                return None
            # Sixth: a filter naming one `_id` and more (a conditional write: a claim, a compare-and-set) is
            # planned by its other fields, and stock scans the collection for them (21-50 ms at 5,000 documents,
            # against 1.7 ms by `_id` alone). At most one document can match: read it by `_id`, match the rest.
            by_id = _id_clause(plan) if hint is None else None
            if by_id is not None:
                found = super()._select_first_document_for_plan(db_name, coll_name, by_id, context=context)
                if found is None or QueryEngine.match_plan(found[1], plan):
                    return found
                return None
            return super()._select_first_document_for_plan(db_name, coll_name, plan, hint=hint, context=context)

        def _open_scan_documents_sync(self, reader: Any) -> Any:
            # A find cursor: after the lookup above returns None, stock compiles the same filter to SQL
            # and scans again. With no document matching, sort, skip, limit and projection change nothing.
            semantics = reader.semantics
            if (
                semantics.hint is None
                and semantics.text_query is None
                and semantics.collation is None
                and not self._is_profile_namespace(reader.coll_name)
                and self._no_index_entry(reader.db_name, reader.coll_name, semantics.query_plan, reader.context)
            ):
                return iter(())
            return super()._open_scan_documents_sync(reader)

        def _no_index_entry(self, db_name: str, coll_name: str, plan: Any, context: Any) -> bool:
            """True only when no document can equal the plan: `{field: "text"}` on a top-level field whose
            single-field index (not partial) has no entry for "text", and no document holds an array there.

            mongoeco writes one entry per document whose value is a scalar (insert, update, bulk writes,
            create_index backfill), and its own unique check already treats a missing string entry as
            "no such value". Anything else (numbers, other types, arrays, dotted paths) takes the stock path.
            """
            if not (
                isinstance(plan, EqualsCondition)
                and type(plan.value) is str
                and "." not in plan.field
                and plan.field != "_id"
            ):
                return False
            conn = self._require_connection(context)
            with self._bind_connection(conn), sqlite_read_scope(conn):
                index = self._find_scalar_index(db_name, coll_name, plan.field)
                if index is None or not index.get("scalar_physical_name") or index.partial_filter_expression:
                    return False
                collection_id = self._lookup_collection_id(conn, db_name, coll_name)
                if collection_id is None or self._field_is_top_level_array_in_collection(
                    db_name, coll_name, plan.field
                ):
                    return False
                row = conn.execute(
                    "SELECT 1 FROM scalar_index_entries "
                    "WHERE collection_id = ? AND index_name = ? AND type_score = ? AND element_key = ? LIMIT 1",
                    (collection_id, index.name, self._multikey_type_score("string"), plan.value),
                ).fetchone()
            return row is None

        def _create_sqlite_connection(self) -> Any:
            # Seventh: a cursor of more than one document reads on a connection of its own, which stock opens
            # (and parses the schema on) for every such find and closes after it: the ones closed go to
            # `_idle_readers`, rolled back, and are handed out again.
            with contextlib.suppress(IndexError):
                return self._idle_readers.pop()
            connection = sqlite3.connect(self._path, check_same_thread=False, factory=ReusedConnection)
            connection.engine = weakref.ref(self)
            if self._path != ":memory:":
                connection.execute("PRAGMA journal_mode=WAL")
            # mongoeco runs WAL with synchronous=NORMAL, which may lose the last commits on power loss.
            # Mail is acknowledged only after a durable write, so sync every commit (tests may turn it off).
            connection.execute(f"PRAGMA synchronous={synchronous}")
            if not change_records:
                _UNRECORDED[id(connection)] = weakref.ref(self)
            return connection

        def take_back(self, connection: Any) -> bool:
            """Keep a closed reader connection for the next cursor; False: close it after all."""
            if (
                connection is self._connection
                or connection is self._change_delivery_connection
                or self._connection is None
                or len(self._idle_readers) >= IDLE_READERS
            ):
                return False
            try:
                if connection.in_transaction:
                    connection.rollback()
            except sqlite3.Error:
                return False
            self._idle_readers.append(connection)
            return True

        def _disconnect_sync(self) -> None:
            super()._disconnect_sync()
            if self._connection is None:
                while self._idle_readers:
                    with contextlib.suppress(sqlite3.Error):
                        sqlite3.Connection.close(self._idle_readers.pop())

        def dispatch_committed_changes(self, consumer_id: str, consumer: Any) -> None:
            # Fifth: helpgate opens no change streams, so nothing is recorded for them (_unrecorded_append_change)
            # and there is nothing to deliver: stock takes a lease, three commits, per write to look.
            if change_records:
                super().dispatch_committed_changes(consumer_id, consumer)

        def _connect_sync(self) -> None:
            super()._connect_sync()
            # The change-stream bookkeeping connection commits a lease three times per write; losing its
            # last commits on power loss costs nothing (helpgate reads no change streams), syncing them
            # cost two thirds of every insert. Documents stay on the FULL connection above.
            delivery = self._change_delivery_connection
            if delivery is not None:
                delivery.execute("PRAGMA synchronous=NORMAL")
            # Every write of a document first deletes its index entries by (collection_id, storage_key).
            # mongoeco indexes scalar entries that way, but its multikey and TTL entries only by
            # collection_id first, so each write scanned all entries of its collection (every Outlook
            # thread root of every ticket, for each write to any ticket). Stock mongoeco maintains these extra
            # SQLite indexes like any other; they are ensured again on each connect, should a mongoeco
            # migration ever rebuild those tables.
            connection = self._connection
            if connection is not None and connection is not self._entries_indexed_on:
                with self._lock:
                    had_transaction = connection.in_transaction
                    for statement in _ENTRIES_BY_DOCUMENT_INDEXES:
                        connection.execute(statement)
                    if connection.in_transaction and not had_transaction:
                        connection.commit()
                self._entries_indexed_on = connection

    return FlatInsertSQLiteEngine


#: id of a SQLite connection -> its engine, for engines that record no changes. sqlite3 connections take no weak
#: references, so an id is trusted only while its engine still holds that very connection (ids are reused).
_UNRECORDED: dict[int, weakref.ref[Any]] = {}


def _unrecorded(conn: Any) -> bool:
    engine = _UNRECORDED.get(id(conn))
    owner = engine() if engine is not None else None
    return owner is not None and getattr(owner, "_connection", None) is conn


def _install_unrecorded_append_change() -> None:
    """Skip mongoeco's change-stream outbox for the connections in _UNRECORDED.

    Every write appends to a change outbox (serialised, hashed and inserted with its identity row) that only change
    streams read, and helpgate opens none: measured, the bookkeeping was a third of the store's CPU per ticket. The
    function is a module global of mongoeco's SQLite engine, so it is wrapped once; engines that keep the records
    (`change_records=True`, and stock mongoeco) go on calling the original.
    """
    import mongoeco.engines.sqlite as sqlite_engine

    original = getattr(sqlite_engine, "_sqlite_append_change")  # noqa: B009 - a private name of the module
    if getattr(original, "helpgate_unrecorded", False):
        return

    sequence = itertools.count(1)

    def append_change(conn: Any, **kwargs: Any) -> Any:
        if _unrecorded(conn):
            # What the record would have been numbered: mongoeco requires a rising number for each applied write
            # it would have published, whether or not anything reads it.
            return next(sequence)
        return original(conn, **kwargs)

    append_change.helpgate_unrecorded = True  # type: ignore[attr-defined]
    setattr(sqlite_engine, "_sqlite_append_change", append_change)  # noqa: B010 - a private name of the module


_ENTRIES_BY_DOCUMENT_INDEXES = (
    "CREATE INDEX IF NOT EXISTS helpgate_multikey_by_document ON multikey_entries (collection_id, storage_key)",
    "CREATE INDEX IF NOT EXISTS helpgate_ttl_by_document ON ttl_index_entries (collection_id, storage_key)",
)
_PLAIN_SCALARS = (str, bool, float, datetime, ObjectId, type(None))


def _path_is_exotic(document: Any, field: str) -> bool:
    """Whether the value at the path may be stored tagged (bytes, Decimal128, Int64, big integers, sub-documents...).

    Conservative: anything but a plain JSON-like scalar counts, and so does a missing intermediate document.
    """
    value = document
    for part in field.split("."):
        if not isinstance(value, dict):
            return value is not None and not isinstance(value, _PLAIN_SCALARS)
        if part not in value:
            return False
        value = value[part]
    if type(value) is int:  # bson.Int64, a subclass, is stored tagged whatever its size
        return abs(value) >= 2**53
    return not isinstance(value, _PLAIN_SCALARS)


def _path_holds_type(document: Any, field: str, kind: str) -> bool:
    """Whether the path holds a plain JSON value of `kind` ("number", "string", "bool"), as mongoeco counts them."""
    value = document
    for part in field.split("."):
        if not isinstance(value, dict) or part not in value:
            return False
        value = value[part]
    if kind == "number":
        return (type(value) is float and math.isfinite(value)) or (type(value) is int and abs(value) < 2**53)
    return type(value) is {"string": str, "bool": bool}.get(kind)


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


async def _serve_embedded(
    data_dir: Path, host: str, port: int, *, synchronous: str = "FULL", change_records: bool = False
) -> int:
    from mongoeco.wire import AsyncMongoEcoProxyServer

    lock = (data_dir / LOCK_FILE).open("a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(BUSY_PREFIX, flush=True)
        return 0
    engine = flat_insert_engine_class(synchronous=synchronous, change_records=change_records)(
        str(data_dir / STORE_FILE)
    )
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
    parser.add_argument(
        "--unsynced",
        action="store_true",
        help="for tests only: commits are not synced to disk, so a crash of the machine may lose the last ones",
    )
    parser.add_argument(
        "--change-records",
        action="store_true",
        help="for benchmarks: keep mongoeco's change-stream bookkeeping, as stock mongoeco does",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="store: %(levelname)s %(name)s %(message)s")
    args.data_dir.mkdir(parents=True, exist_ok=True)
    synchronous = "OFF" if args.unsynced else "FULL"
    serving = _serve_embedded(
        args.data_dir, args.host, args.port, synchronous=synchronous, change_records=args.change_records
    )
    return asyncio.run(serving)


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

    @property
    def pid(self) -> int | None:
        """The server's process id, when this object started it (for benchmarks to read its CPU time)."""
        return self._process.pid if self._process is not None else None

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
