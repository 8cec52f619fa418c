"""The embedded store: the pinned insert fix still applies, durability, and sharing one data dir."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import mongoeco
import pytest
from bson import Decimal128, Int64, ObjectId
from mongoeco import AsyncMongoClient as EcoClient
from mongoeco.errors import BulkWriteError, DuplicateKeyError
from pymongo import ReturnDocument

from helpgate.core import db


def test_pinned_mongoeco_is_the_installed_one() -> None:
    # When mongoeco is upgraded, re-measure (bench/store.py) and re-pin: the fix reaches into its internals.
    assert mongoeco.__version__ == db.PATCHED_MONGOECO_VERSION
    assert db.flat_insert_engine_class().__name__ == "FlatInsertSQLiteEngine"


async def _engine_with_scan_counter(path: Path) -> tuple[Any, list[int]]:
    engine = db.flat_insert_engine_class()(str(path))
    scans: list[int] = []
    original = engine._load_documents

    def counting_load_documents(*args: Any, **kwargs: Any) -> Any:
        scans.append(1)
        return original(*args, **kwargs)

    engine._load_documents = counting_load_documents
    return engine, scans


async def test_insert_with_object_id_does_not_scan_the_collection(tmp_path: Path) -> None:
    engine, scans = await _engine_with_scan_counter(tmp_path / "store.sqlite3")
    async with EcoClient(engine) as client:
        collection = client["db"]["docs"]
        for index in range(50):
            await collection.insert_one({"_id": ObjectId(), "n": index})
        assert await collection.count_documents({}) == 50
    # Stock mongoeco 4.11 decodes the whole collection on each of those inserts.
    assert scans == []


async def test_numeric_ids_are_still_checked_across_types(tmp_path: Path) -> None:
    engine, scans = await _engine_with_scan_counter(tmp_path / "store.sqlite3")
    async with EcoClient(engine) as client:
        collection = client["db"]["docs"]
        await collection.insert_one({"_id": 1})
        with pytest.raises(DuplicateKeyError):
            await collection.insert_one({"_id": 1.0})
    assert scans, "a numeric _id must still be compared with every stored _id"


async def test_documents_are_synced_per_commit_and_change_bookkeeping_is_not(tmp_path: Path) -> None:
    engine = db.flat_insert_engine_class()(str(tmp_path / "store.sqlite3"))
    async with EcoClient(engine) as client:
        await client["db"]["docs"].insert_one({"x": 1})
        # 2 = FULL: a commit of a document survives power loss, not only a crash of the process.
        assert engine._connection.execute("PRAGMA synchronous").fetchone()[0] == 2
        assert engine._connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        # 1 = NORMAL for mongoeco's change-stream lease bookkeeping, which helpgate never reads.
        assert engine._change_delivery_connection.execute("PRAGMA synchronous").fetchone()[0] == 1
    assert sqlite3.connect(tmp_path / "store.sqlite3").execute("SELECT count(*) FROM documents").fetchone()[0] == 1


@pytest.mark.parametrize("change_records", [True, False])
async def test_writes_read_back_alike_and_only_the_patched_engine_skips_change_records(
    tmp_path: Path, change_records: bool
) -> None:
    """Side by side with mongoeco's own bookkeeping: the same writes read back the same; the patched engine writes
    no change outbox rows (helpgate opens no change streams), and delivers none."""
    engine = db.flat_insert_engine_class(change_records=change_records)(str(tmp_path / "store.sqlite3"))
    async with EcoClient(engine) as client:
        docs = client["db"]["docs"]
        await docs.create_index("key", unique=True)
        ids = [(await docs.insert_one({"key": f"k{n}", "n": n})).inserted_id for n in range(5)]
        await docs.update_one({"_id": ids[0]}, {"$inc": {"n": 10}})
        await docs.delete_one({"_id": ids[1]})
        await docs.insert_many([{"key": "k5", "n": 5}, {"key": "k6", "n": 6}])
        with pytest.raises(DuplicateKeyError):
            await docs.insert_one({"key": "k2"})
        found = [(d["key"], d["n"]) async for d in docs.find({}, {"_id": 0}).sort("key", 1)]
        assert found == [("k0", 10), ("k2", 2), ("k3", 3), ("k4", 4), ("k5", 5), ("k6", 6)]
        recorded = sum(
            engine._connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608 - our names
            for table in ("change_outbox", "change_outbox_identities")
        )
    assert (recorded > 0) is change_records


async def test_second_process_on_a_data_dir_joins_the_running_store(tmp_path: Path) -> None:
    owner = db.EmbeddedStore(tmp_path)
    joiner = db.EmbeddedStore(tmp_path)
    uri = await owner.start()
    try:
        assert await joiner.start() == uri
        assert owner.owned and not joiner.owned
        client = db.make_client(uri)
        await client["x"]["y"].insert_one({"a": 1})
        await client.close()
    finally:
        await joiner.stop()
        await owner.stop()
    assert not (tmp_path / db.URI_FILE).exists()


async def test_store_process_exits_when_its_parent_goes(tmp_path: Path) -> None:
    store = db.EmbeddedStore(tmp_path)
    await store.start()
    process = store._process
    assert process is not None and process.stdin is not None
    process.stdin.close()  # what the kernel does when helpgate dies
    await asyncio.wait_for(process.wait(), 15)
    assert process.returncode == 0
    store._process = None


async def test_writes_do_not_rescan_the_collection_for_arrays(tmp_path: Path) -> None:
    engine = db.flat_insert_engine_class()(str(tmp_path / "store.sqlite3"))
    async with EcoClient(engine) as client:
        collection = client["db"]["docs"]
        await collection.create_index("key", unique=True)
        ids = [(await collection.insert_one({"key": f"k{n}", "status": "a"})).inserted_id for n in range(20)]
        scans: list[str] = []
        engine._connection.set_trace_callback(lambda sql: scans.append(sql) if "json_type(document" in sql else None)
        for inserted in ids:
            await collection.update_one({"_id": inserted}, {"$set": {"status": "b"}})
            await collection.insert_one({"key": f"new-{inserted}"})
        engine._connection.set_trace_callback(None)
    # Stock mongoeco 4.11 scans every document's "key" once per write here (40 scans).
    assert len(scans) <= 1


async def test_arrays_written_later_are_still_seen(tmp_path: Path) -> None:
    engine = db.flat_insert_engine_class()(str(tmp_path / "store.sqlite3"))
    async with EcoClient(engine) as client:
        collection = client["db"]["docs"]
        await collection.create_index("tags", unique=True)
        await collection.insert_one({"tags": "solo"})
        await collection.update_one({"tags": "solo"}, {"$set": {"n": 1}})  # proves "tags" array-free, for now
        await collection.insert_one({"tags": ["red", "blue"]})
        with pytest.raises(DuplicateKeyError):
            await collection.insert_one({"tags": ["blue", "green"]})  # multikey uniqueness still holds
        assert [doc["tags"] async for doc in collection.find({"tags": "blue"}, {"_id": 0})] == [["red", "blue"]]
        await collection.update_one({"tags": "solo"}, {"$set": {"tags": ["x", "y"]}})
        assert await collection.count_documents({"tags": "y"}) == 1


async def test_queries_do_not_rescan_for_tagged_values_and_still_find_them(tmp_path: Path) -> None:
    engine = db.flat_insert_engine_class()(str(tmp_path / "store.sqlite3"))
    async with EcoClient(engine) as client:
        collection = client["db"]["docs"]
        await collection.create_index("key", unique=True)
        for n in range(10):
            await collection.insert_one({"key": f"k{n}"})
        await collection.find_one({"key": "k1"})  # learns: no tagged values under "key"
        scans: list[str] = []
        engine._connection.set_trace_callback(lambda sql: scans.append(sql) if "json_extract(document" in sql else None)
        for n in range(10):
            await collection.insert_one({"key": f"new{n}"})
            assert await collection.find_one({"key": f"new{n}"}) is not None
        engine._connection.set_trace_callback(None)
        assert scans == []
        # A tagged value written later is still found by the typed comparisons that need the scan.
        await collection.insert_one({"key": Decimal128("7.5")})
        found = await collection.find_one({"key": 7.5})
        assert found is not None and found["key"] == Decimal128("7.5")


def _json_scans(engine: Any) -> list[str]:
    """SQL statements that read a field out of every document's JSON (a collection scan)."""
    scans: list[str] = []
    engine._connection.set_trace_callback(lambda sql: scans.append(sql) if "json_extract(document" in sql else None)
    return scans


async def _string_misses_scan(engine: Any) -> list[str]:
    async with EcoClient(engine) as client:
        collection = client["db"]["docs"]
        await collection.create_index("key", unique=True)
        await collection.insert_many([{"key": f"k{n}", "n": n} for n in range(20)])
        await collection.find_one({"key": "k1"})  # both engines learn "key" holds no arrays
        scans = _json_scans(engine)
        assert await collection.find_one({"key": "missing"}) is None
        assert await collection.find({"key": "missing"}).sort("n", -1).skip(1).to_list() == []
        assert (await collection.update_one({"key": "missing"}, {"$set": {"n": 1}})).matched_count == 0
        assert (await collection.delete_one({"key": "missing"})).deleted_count == 0
        assert await collection.find_one_and_update({"key": "missing"}, {"$inc": {"n": 1}}) is None
        engine._connection.set_trace_callback(None)
        return scans


async def test_a_string_the_index_does_not_hold_is_not_searched_for_in_every_document(tmp_path: Path) -> None:
    from mongoeco.engines.sqlite import SQLiteEngine

    # Stock mongoeco 4.11 trusts the index only when it finds a document: each miss scans the collection.
    assert await _string_misses_scan(SQLiteEngine(str(tmp_path / "stock.sqlite3")))
    assert await _string_misses_scan(db.flat_insert_engine_class()(str(tmp_path / "ours.sqlite3"))) == []


async def _string_lookups(engine: Any) -> list[object]:
    """Writes that could leave the index out of step with the documents, then equality lookups on strings."""
    seen: list[object] = []
    async with EcoClient(engine) as client:
        collection = client["db"]["docs"]
        await collection.insert_many([{"_id": n, "key": f"k{n}", "part": f"p{n}", "odd": n % 2 == 1} for n in range(6)])
        await collection.create_index("key", unique=True)  # built over documents already there
        await collection.create_index("part", partial_filter_expression={"odd": True})  # even documents not indexed
        await collection.create_index("tag", sparse=True)
        await collection.insert_one({"_id": 10, "key": "k10", "tag": "t"})
        await collection.update_one({"_id": 1}, {"$set": {"key": "moved"}})
        await collection.replace_one({"_id": 2}, {"key": "replaced", "part": "p2"})
        await collection.update_one(
            {"key": "upserted"}, {"$set": {"tag": "u"}, "$setOnInsert": {"_id": 20}}, upsert=True
        )
        await collection.delete_one({"_id": 3})
        await collection.insert_one({"_id": 11, "key": {"nested": "k11"}, "tag": None})
        probes = [
            ("key", "k0"), ("key", "k1"), ("key", "moved"), ("key", "replaced"), ("key", "upserted"), ("key", "k3"),
            ("key", "k10"), ("key", "nested"), ("part", "p0"), ("part", "p1"), ("part", "p2"), ("tag", "t"),
            ("tag", "u"), ("tag", "none"),
        ]  # fmt: skip
        for field, value in probes:
            seen.append(await collection.find_one({field: value}, {"_id": 1}))
            seen.append(await collection.count_documents({field: value}))
        await collection.insert_one({"_id": 12, "tag": ["t", "v"]})  # an array: lookups must find its elements
        for value in ("t", "v", "w"):
            seen.append([doc["_id"] async for doc in collection.find({"tag": value}, {"_id": 1}).sort("_id", 1)])
            seen.append((await collection.update_one({"tag": value}, {"$set": {"seen": True}})).matched_count)
        collated = collection.find({"key": "MOVED"}, {"_id": 1}, collation={"locale": "en", "strength": 2})
        seen.append([doc async for doc in collated])
        async with client.start_session() as session:
            session.start_transaction()
            await collection.insert_one({"_id": 13, "key": "in-transaction"}, session=session)
            seen.append(await collection.find_one({"key": "in-transaction"}, {"_id": 1}, session=session))
            session.abort_transaction()
        seen.append(await collection.find_one({"key": "in-transaction"}))
    return seen


async def test_string_lookups_answer_exactly_as_stock_mongoeco(tmp_path: Path) -> None:
    from mongoeco.engines.sqlite import SQLiteEngine

    stock = await _string_lookups(SQLiteEngine(str(tmp_path / "stock.sqlite3")))
    ours = await _string_lookups(db.flat_insert_engine_class()(str(tmp_path / "ours.sqlite3")))
    assert ours == stock
    assert {"_id": 0} in ours and {"_id": 1} in ours and [12] in ours  # the probes did find things


async def test_unique_strings_still_raise_duplicate_key(tmp_path: Path) -> None:
    engine = db.flat_insert_engine_class()(str(tmp_path / "store.sqlite3"))
    async with EcoClient(engine) as client:
        collection = client["db"]["docs"]
        await collection.create_index("key", unique=True)
        await collection.insert_one({"key": "a"})
        await collection.insert_one({"key": "b"})
        assert await collection.find_one({"key": "c"}) is None
        with pytest.raises(DuplicateKeyError):
            await collection.insert_one({"key": "a"})
        with pytest.raises(DuplicateKeyError):
            await collection.update_one({"key": "b"}, {"$set": {"key": "a"}})
        with pytest.raises(BulkWriteError) as raised:
            await collection.insert_many([{"key": "c"}, {"key": "c"}])
        assert "E11000 duplicate key" in str(raised.value)
        assert sorted([doc["key"] async for doc in collection.find({}, {"_id": 0})]) == ["a", "b", "c"]


def _entry_delete_plans(path: Path) -> list[str]:
    connection = sqlite3.connect(path)
    deletes = (
        "EXPLAIN QUERY PLAN DELETE FROM multikey_entries WHERE collection_id = 1 AND storage_key = 'k'",
        "EXPLAIN QUERY PLAN DELETE FROM ttl_index_entries WHERE collection_id = 1 AND storage_key = 'k'",
    )
    plans = [" ".join(row[3] for row in connection.execute(delete)) for delete in deletes]
    connection.close()
    return plans


async def test_index_entries_of_a_document_are_found_through_an_index(tmp_path: Path) -> None:
    from mongoeco.engines.sqlite import SQLiteEngine

    for name, engine_class in (("stock", SQLiteEngine), ("ours", db.flat_insert_engine_class())):
        async with EcoClient(engine_class(str(tmp_path / f"{name}.sqlite3"))) as client:
            await client["db"]["docs"].create_index("roots")  # a multikey index
            await client["db"]["docs"].insert_one({"roots": ["r1", "r2"]})
    # Each write deletes its document's entries first: stock mongoeco finds them by collection_id alone.
    assert not any("storage_key=?" in plan for plan in _entry_delete_plans(tmp_path / "stock.sqlite3"))
    assert all("(collection_id=? AND storage_key=?)" in plan for plan in _entry_delete_plans(tmp_path / "ours.sqlite3"))


async def _sorted_finds_scan(engine: Any) -> list[str]:
    async with EcoClient(engine) as client:
        collection = client["db"]["docs"]
        await collection.insert_many([{"n": n, "owner": n % 3} for n in range(20)])
        await collection.find({}).sort("n", -1).limit(5).to_list()
        scans: list[str] = []

        def trace(sql: str) -> None:
            if "json_type(document" in sql:
                scans.append(sql)

        # A cursor of more than one document reads on a connection of its own.
        create_connection = engine._create_sqlite_connection
        engine._create_sqlite_connection = lambda: _traced(create_connection(), trace)
        _traced(engine._connection, trace)
        for n in range(20, 25):
            await collection.insert_one({"n": n, "owner": 1})
            assert [doc["n"] async for doc in collection.find({}).sort("n", -1).limit(2)] == [n, n - 1]
        engine._connection.set_trace_callback(None)
        engine._create_sqlite_connection = create_connection
        return scans


def _traced(connection: sqlite3.Connection, trace: Any) -> sqlite3.Connection:
    connection.set_trace_callback(trace)
    return connection


async def test_sorted_finds_do_not_rescan_the_collection_for_unsortable_values(tmp_path: Path) -> None:
    from mongoeco.engines.sqlite import SQLiteEngine

    # Stock mongoeco 4.11 checks every document for arrays and embedded documents under "n", per sorted find.
    assert len(await _sorted_finds_scan(SQLiteEngine(str(tmp_path / "stock.sqlite3")))) >= 5
    assert await _sorted_finds_scan(db.flat_insert_engine_class()(str(tmp_path / "ours.sqlite3"))) == []


async def _orders(engine: Any, *, indexed: bool) -> list[list[object]]:
    """Sorted finds after each write that brings a value SQL cannot order like MongoDB does."""
    orders: list[list[object]] = []
    async with EcoClient(engine) as client:
        collection = client["db"]["docs"]
        if indexed:
            await collection.create_index("n")
        await collection.insert_many([{"_id": n, "n": 10 - n, "owner": n % 2} for n in range(6)])
        later: list[dict[str, Any]] = [
            {"_id": 9, "n": 2.5},
            {"_id": 15, "n": "text", "owner": 1},
            {"_id": 10, "n": Int64(2**53 + 1)},
            {"_id": 16, "n": Int64(7), "owner": 1},
            {"_id": 11, "n": {"nested": 1}},
            {"_id": 12, "n": Decimal128("7.5"), "owner": 1},
            {"_id": 13, "n": [9, -1], "owner": 0},
            {"_id": 14, "owner": 1},
        ]
        for document in later:
            for direction in (1, -1):
                orders.append([doc["_id"] async for doc in collection.find({}, {"_id": 1}).sort("n", direction)])
                orders.append([d["_id"] async for d in collection.find({"owner": 1}).sort([("n", direction)]).limit(3)])
            await collection.insert_one(document)
        await collection.update_one({"_id": 0}, {"$set": {"n": [100, -100]}})
        orders.append([doc["_id"] async for doc in collection.find({}, {"_id": 1}).sort("n", 1)])
    return orders


@pytest.mark.parametrize("indexed", [False, True])
async def test_sort_order_is_exactly_stock_as_other_types_arrive(tmp_path: Path, indexed: bool) -> None:
    from mongoeco.engines.sqlite import SQLiteEngine

    stock = await _orders(SQLiteEngine(str(tmp_path / "stock.sqlite3")), indexed=indexed)
    assert await _orders(db.flat_insert_engine_class()(str(tmp_path / "ours.sqlite3")), indexed=indexed) == stock


async def _typed_orders(engine: Any) -> list[list[object]]:
    """An indexed sort field that holds one type, until updates and replacements change it."""
    orders: list[list[object]] = []
    async with EcoClient(engine) as client:
        collection = client["db"]["docs"]
        await collection.create_index("n")
        await collection.insert_many([{"_id": n, "n": n} for n in range(6)])
        writes = [
            collection.update_one({"_id": 1}, {"$set": {"n": "one"}}),
            collection.replace_one({"_id": 1}, {"n": 1.5}),
            collection.update_one({"_id": 2}, {"$unset": {"n": ""}}),
            collection.update_one({"_id": 2}, {"$set": {"n": True}}),
            collection.delete_one({"_id": 2}),
            collection.update_many({}, {"$set": {"n": "same"}}),
        ]
        for write in writes:
            orders.append([doc["_id"] async for doc in collection.find({}, {"_id": 1}).sort("n", -1)])
            await write
        orders.append([doc["_id"] async for doc in collection.find({}, {"_id": 1}).sort([("n", -1), ("_id", 1)])])
    return orders


async def test_sort_by_a_field_of_one_type_is_exactly_stock_when_the_type_changes(tmp_path: Path) -> None:
    from mongoeco.engines.sqlite import SQLiteEngine

    stock = await _typed_orders(SQLiteEngine(str(tmp_path / "stock.sqlite3")))
    assert await _typed_orders(db.flat_insert_engine_class()(str(tmp_path / "ours.sqlite3"))) == stock


async def _pages(engine: Any) -> tuple[list[list[object]], list[str]]:
    """Pages sorted on an indexed number (ties included, with and without a filter), and their query plans."""
    pages: list[list[object]] = []
    statements: list[str] = []
    async with EcoClient(engine) as client:
        collection = client["db"]["docs"]
        await collection.create_index("number")
        await collection.insert_many([{"_id": n, "number": n // 3, "owner": n % 4} for n in range(60)])
        create_connection = engine._create_sqlite_connection

        def trace(sql: str) -> None:
            if "ORDER BY scalar_index_entries" in sql:
                statements.append(sql)

        engine._create_sqlite_connection = lambda: _traced(create_connection(), trace)
        for direction in (1, -1):
            for query, skip in (({}, 0), ({}, 7), ({"owner": 2}, 0), ({"owner": 2}, 3)):
                cursor = collection.find(query, {"_id": 1}).sort("number", direction).skip(skip).limit(5)
                pages.append([doc["_id"] async for doc in cursor])
        engine._create_sqlite_connection = create_connection
    connection = sqlite3.connect(engine._path)
    plans = [" ".join(row[3] for row in connection.execute(f"EXPLAIN QUERY PLAN {sql}")) for sql in statements]
    connection.close()
    return pages, plans


async def test_a_page_sorted_on_an_indexed_field_walks_the_index(tmp_path: Path) -> None:
    from mongoeco.engines.sqlite import SQLiteEngine

    stock_pages, stock_plans = await _pages(SQLiteEngine(str(tmp_path / "stock.sqlite3")))
    ours_pages, ours_plans = await _pages(db.flat_insert_engine_class()(str(tmp_path / "ours.sqlite3")))
    assert ours_pages == stock_pages
    # Stock mongoeco 4.11 joins and sorts every document of the collection before taking the page.
    assert len(stock_plans) == 8 and all("USE TEMP B-TREE FOR ORDER BY" in plan for plan in stock_plans)
    assert len(ours_plans) == 8 and not any("USE TEMP B-TREE FOR ORDER BY" in plan for plan in ours_plans)


async def _conditional_writes(engine: Any) -> list[Any]:
    """Conditional writes by `_id` and more, as claims and compare-and-sets make them; what each one did."""
    now = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    async with EcoClient(engine) as client:
        runs = client["db"]["runs"]
        await runs.create_index("status")
        ids = [(await runs.insert_one({"status": "queued", "n": n, "until": None})).inserted_id for n in range(40)]
        await runs.update_one({"_id": ids[1]}, {"$unset": {"until": ""}})  # a field the previous version never wrote
        await runs.update_one({"_id": ids[2]}, {"$set": {"until": now - timedelta(minutes=1)}})
        await runs.update_one({"_id": ids[3]}, {"$set": {"until": now + timedelta(minutes=1)}})
        free = {"$or": [{"until": None}, {"until": {"$lte": now}}]}
        outcomes: list[Any] = []
        for target in ids[:5]:
            claimed = await runs.find_one_and_update(
                {"_id": target, "status": {"$in": ["queued", "sleeping"]}, **free},
                {"$set": {"status": "running", "until": now + timedelta(minutes=5)}},
                return_document=ReturnDocument.AFTER,
            )
            outcomes.append(claimed and claimed["n"])
        again = await runs.update_one({"_id": ids[0], "status": "queued"}, {"$set": {"n": -1}})
        counted = await runs.update_one({"_id": ids[4], "status": "running", "n": 4}, {"$inc": {"n": 100}})
        outcomes += [again.matched_count, counted.modified_count, await runs.find_one({"_id": ids[9], "n": 8})]
        outcomes.append(await runs.count_documents({"status": "running"}))
    return outcomes


async def test_conditional_writes_by_id_match_as_stock_does(tmp_path: Path) -> None:
    """The patched engine reads a conditional write's document by `_id` and matches the rest itself (stock plans
    such a filter by its other fields and scans the collection): the outcomes are stock's."""
    from mongoeco.engines.sqlite import SQLiteEngine

    patched = await _conditional_writes(db.flat_insert_engine_class()(str(tmp_path / "patched.sqlite3")))
    stock = await _conditional_writes(SQLiteEngine(str(tmp_path / "stock.sqlite3")))
    assert patched == stock == [0, 1, 2, None, 4, 0, 1, None, 4]


async def test_cursors_read_on_connections_kept_from_earlier_cursors_and_see_new_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []
    connect = sqlite3.connect

    def counting_connect(*args: Any, **kwargs: Any) -> Any:
        opened.append(str(args[0]))
        return connect(*args, **kwargs)

    engine = db.flat_insert_engine_class()(str(tmp_path / "store.sqlite3"))
    async with EcoClient(engine) as client:
        collection = client["db"]["docs"]
        await collection.insert_many([{"n": n} for n in range(5)])
        monkeypatch.setattr(sqlite3, "connect", counting_connect)
        seen = []
        for n in range(5, 25):
            seen.append(len(await collection.find({}).to_list()))  # many documents: a reader connection each
            await collection.insert_one({"n": n})
        monkeypatch.setattr(sqlite3, "connect", connect)
    assert seen == list(range(5, 25))  # each cursor sees every write before it
    assert len(opened) <= 2  # stock opens one per cursor (20)
