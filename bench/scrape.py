"""Benchmark of a /metrics scrape and a /readyz probe on the embedded store, as the queues' collections grow.

A scrape reads the counters from memory and, at most every 10 s, counts the queues in the store
(maintenance/backlog.py: one aggregation per collection over outbound_mail, outbox_events and
workflow_runs); /readyz finds the oldest undelivered outbox event. On MongoDB these use the `status` indexes;
the embedded store scans each collection. At each size (`--sizes`, documents per collection, all but five
of them finished, ~1 KB each) it prints the median time of:

* `depths`: the three counts of an uncached scrape (`backlog.depths()`),
* `oldest`: the readiness query (`backlog.oldest_undelivered_event()`),
* `cached`: a scrape served from the cache (`Exporter.render()` with the counts fresh),
* `baseline`: one `find_one` by `_id` on the same store, measured alongside (the round trip itself).

Run::

    uv run python -m bench.scrape
    uv run python -m bench.scrape --sizes 0,2000 --repeat 3   # quick
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from bson import ObjectId

from helpgate.core import db, metrics
from helpgate.core.clock import utcnow
from helpgate.maintenance import backlog
from helpgate.models import ALL_MODELS, OutboundMail, OutboxEvent, WorkflowRun

FINISHED = {OutboundMail: "sent", OutboxEvent: "sent", WorkflowRun: "completed"}
WAITING = {OutboundMail: "queued", OutboxEvent: "pending", WorkflowRun: "sleeping"}
PAD = "x" * 900


async def _median_ms(call: Callable[[], Awaitable[Any]], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def _fill(count: int) -> None:
    """Top every collection up to `count` documents: five waiting, the rest finished."""
    now = utcnow()
    for model, finished in FINISHED.items():
        collection = model.get_pymongo_collection()
        have = await collection.estimated_document_count()
        documents = [
            {
                "_id": ObjectId(),
                "key": f"bench {ObjectId()}",
                "status": WAITING[model] if have + index < 5 else finished,
                "created_at": now - timedelta(seconds=have + index),
                "next_attempt_at": now,
                "next_run_at": now,
                "pad": PAD,
            }
            for index in range(max(0, count - have))
        ]
        for start in range(0, len(documents), 1000):
            await collection.insert_many(documents[start : start + 1000])


async def main(sizes: list[int], repeat: int) -> None:
    print(f"load average at start: {os.getloadavg()[0]:.2f} (2 cores shared)")
    with tempfile.TemporaryDirectory(prefix="helpgate-bench-scrape-") as directory:
        store = db.EmbeddedStore(Path(directory))
        client = db.make_client(await store.start())
        try:
            await db.init_models(client, "bench", ALL_MODELS)
            probe_id = (
                await OutboxEvent.get_pymongo_collection().insert_one({"key": "probe", "status": "x"})
            ).inserted_id
            exporter = metrics.Exporter(lambda: _queues(), max_age=3600)
            print("documents/collection  depths ms  oldest ms  cached ms  baseline ms  load")
            for size in sizes:
                await _fill(size)
                depths = await _median_ms(backlog.depths, repeat)
                oldest = await _median_ms(backlog.oldest_undelivered_event, repeat)
                await exporter.render()
                cached = await _median_ms(exporter.render, repeat)
                baseline = await _median_ms(
                    lambda: OutboxEvent.get_pymongo_collection().find_one({"_id": probe_id}), repeat
                )
                load = os.getloadavg()[0]
                print(f"{size:>20}  {depths:9.1f}  {oldest:9.1f}  {cached:9.1f}  {baseline:11.1f}  {load:.2f}")
        finally:
            await client.close()
            await store.stop()


async def _queues() -> metrics.Queues:
    depths = await backlog.depths()
    return metrics.Queues(inbound_backlog=0, outbound=depths.outbound, events=depths.events, runs=depths.runs)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="0,10000,50000", help="documents per collection, comma-separated")
    parser.add_argument("--repeat", type=int, default=5)
    arguments = parser.parse_args()
    asyncio.run(main([int(size) for size in arguments.sizes.split(",")], arguments.repeat))
