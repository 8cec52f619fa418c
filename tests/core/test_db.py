"""The embedded store: the pinned insert fix still applies, durability, and sharing one data dir."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import mongoeco
import pytest
from bson import Decimal128, ObjectId
from mongoeco import AsyncMongoClient as EcoClient
from mongoeco.errors import DuplicateKeyError

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
