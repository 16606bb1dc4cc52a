"""``dqhash bench --tables K``: the cost of many tables, as ratios to one table measured in the same run.

1. **One table**: N pairs of one table through one worker (fresh topics): input events/s (first to last
   audit record), peak RSS, open file descriptors and RocksDB instances of the worker at the end.
2. **K tables**: the same N pairs spread over K tables of N/K rows each, on fresh topics, the same way.
3. **A snapshot run of the K tables**: each table's on-prem export published as its own run, and one
   ``--all-tables`` scan of the catalog under one budget and one checkpoint; it completes when every table's run
   is complete, with a report per table.

Both stream phases use the same catalog (one pattern, ``bench.*``), records that name their table and are
keyed by their pair key, and the same mix of outcomes; only the number of tables differs.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import shutil
import sqlite3
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

from dqhash import settings as settings_module
from dqhash.cloud.scanner import SQLiteRangeScan
from dqhash.core.catalog_runs import catalog_report
from dqhash.core.hashing import RowHasher
from dqhash.core.jsontext import dumps_kept
from dqhash.core.table_keys import pair_key
from dqhash.core.timeutil import now_ms
from dqhash.kafka.embedded_broker import EmbeddedBroker, free_port
from dqhash.kafka.security import connect_args
from dqhash.kafka.snapshot_log import read_snapshot_records
from dqhash.kafka.topics import create_topics
from dqhash.tools.bench.memory import rss_mb
from dqhash.tools.bench.pipeline import (
    GRACE_S,
    TICK_S,
    WINDOW_S,
    AuditWatch,
    produce_all,
    run_guarded,
    say,
    until,
)
from dqhash.tools.runner import local_worker_env, start_worker, stop_worker
from dqhash.tools.snapshot.publish import publish
from dqhash.tools.snapshot.scan import Checkpoint
from dqhash.tools.snapshot.tables import scan_tables

CATALOG = '[[table]]\nmatch = "bench.*"\ncloud = "bench.{table}"\nkey = ["id"]\ncolumns = ["id", "name"]\n'
#: per 100 pairs: matches, mismatches (a different cloud hash) and rows the cloud lacks
MIX = {"match": 90, "mismatch": 5, "missing_cloud": 5}
SPLITS = 16


def table_names(tables: int) -> list[str]:
    return [f"bench.t{n:04d}" for n in range(tables)]


def workload(pairs: int, tables: list[str], ts: int) -> tuple[list, list, int]:
    """(on-prem records, cloud records, classifications expected), the pairs dealt over ``tables`` in turn.

    The pairs come in one shuffled order, the same for any number of tables: changes reach a real deployment in
    no key order, and a sequential order would favour one table (its keys reach RocksDB already sorted) over
    many (whose keys interleave), measuring key order instead of the number of tables."""
    onprem, cloud = [], []
    order = list(range(pairs))
    random.Random(7).shuffle(order)
    for i in order:
        table = tables[i % len(tables)]
        pk = f"r{i // len(tables):08d}"
        key = pair_key(table, pk, "").encode()
        digest = hashlib.sha256(key).hexdigest()
        event = {"event_id": f"e{i}", "table": table, "hash_onprem": digest, "event_ts": ts, "action": "UPDATE",
                 "partitionColumns": [{"type": "PK", "value": pk}]}  # fmt: skip
        onprem.append((key, dumps_kept(event)))
        kind = i % 100
        if kind < MIX["match"] + MIX["mismatch"]:
            answer = digest if kind < MIX["match"] else hashlib.sha256(b"x" + key).hexdigest()
            cloud.append((key, dumps_kept({"table": table, "pk": pk, "hash_cloud": answer, "cloud_ts": ts + 1})))
    return onprem, cloud, pairs


def worker_files(pid: int) -> tuple[int, int]:
    """(open file descriptors, RocksDB instances: their LOCK files held open) of a process."""
    fds = rocksdb = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        fds += 1
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        rocksdb += target.endswith("/LOCK")
    return fds, rocksdb


async def stream_phase(url: str, workdir: Path, catalog: Path, pairs: int, tables: list[str]) -> dict[str, Any]:
    """N pairs over ``tables`` through one worker, on fresh topics."""
    run_id = uuid.uuid4().hex[:8]
    env = local_worker_env(url, workdir, f"dqhash-bench-{run_id}", WINDOW_S, GRACE_S, TICK_S, free_port(),
                           DQHASH_CATALOG=catalog, DQHASH_DATA_DIR=workdir / f"data-{run_id}")  # fmt: skip
    settings = settings_module.load(env)
    await create_topics(settings)
    onprem, cloud, classified = workload(pairs, tables, now_ms())
    inputs = len(onprem) + len(cloud)
    say(f"{len(tables)} table(s): pre-loading {len(onprem):,} on-prem events and {len(cloud):,} cloud hashes ...")
    await asyncio.gather(
        produce_all(connect_args(settings), settings.onprem_topic, onprem),
        produce_all(connect_args(settings), settings.cloud_topic, cloud),
    )
    del onprem, cloud
    watch = await AuditWatch(connect_args(settings), settings.audit_topic, b"\xff-none").start()
    worker = start_worker(env, workdir / f"worker-{run_id}.log", loglevel="warn")
    files = [0, 0]
    samples: list[float] = []  # RSS while classifying, about once a second
    try:

        def done() -> bool:
            if worker.poll() is not None:
                raise RuntimeError(f"the dqhash worker exited ({worker.returncode}); see {workdir}")
            return watch.count >= classified

        def progress() -> None:
            files[:] = worker_files(worker.pid)
            rss = rss_mb(worker.pid)[0]
            if watch.count:  # while it classifies: the worker's working size, not its start-up
                samples.append(rss)
            say(f"  {len(tables)} table(s): {watch.count:,}/{classified:,} classified, RSS {rss:.0f} MB")

        await until(done, 120 + inputs / 200, progress, f"every event of {len(tables)} table(s) to be classified")
        progress()
        seconds = (watch.last_ms - watch.first_ms) / 1000
        _, peak = rss_mb(worker.pid)
        return {"tables": len(tables), "events_per_s": round(inputs / seconds), "peak_rss_mb": round(peak),
                "median_rss_mb": round(statistics.median(samples)) if samples else None,
                "open_files": files[0], "rocksdb_instances": files[1]}  # fmt: skip
    finally:
        stop_worker(worker)
        await watch.stop()


async def snapshot_phase(url: str, workdir: Path, catalog: Path, tables: list[str], rows: int) -> dict[str, Any]:
    """A catalog-wide snapshot run of ``tables`` of ``rows`` rows each (SQLite cloud copy), through one worker."""
    run_id = uuid.uuid4().hex[:8]
    db = workdir / f"cloud-{run_id}.db"
    connection = sqlite3.connect(db)
    for table in tables:
        name = table.split(".", 1)[1]
        connection.execute(f"CREATE TABLE {name} (id TEXT PRIMARY KEY, name TEXT)")
        connection.executemany(f"INSERT INTO {name} VALUES (?, ?)", [(f"r{i:06d}", f"n{i}") for i in range(rows)])
    connection.commit()
    connection.close()
    env = local_worker_env(url, workdir, f"dqhash-bench-{run_id}", WINDOW_S, GRACE_S, TICK_S, free_port(),
                           DQHASH_CATALOG=catalog, DQHASH_DATA_DIR=workdir / f"data-{run_id}",
                           DQHASH_CLOUD_STORE="sqlite", DQHASH_SQLITE_PATH=db)  # fmt: skip
    settings = settings_module.load(env)
    await create_topics(settings)
    worker = start_worker(env, workdir / f"worker-{run_id}.log", loglevel="warn")
    snapshot_id = f"bench-{run_id}"
    hasher = RowHasher("v2", ["id", "name"])
    started = time.monotonic()
    try:
        for table in tables:
            export = workdir / f"{table}.jsonl"
            export.write_bytes(
                b"".join(orjson.dumps({"id": f"r{i:06d}", "name": f"n{i}"}) + b"\n" for i in range(rows))
            )
            with open(export, "rb") as stream:
                await publish(settings, export, stream, "jsonl", f"{snapshot_id}:{table}", hasher, ["id"], ["id"],
                              {}, SPLITS, None, now_ms(), table)  # fmt: skip
        specs = [settings.catalog.get(t) for t in tables]
        checkpoint = Checkpoint(workdir / f"scan-{run_id}.json", snapshot_id, SPLITS)
        await scan_tables(settings, specs, lambda spec: SQLiteRangeScan(db, spec.cloud_table, ["id"], {}, 1000),
                          snapshot_id, SPLITS, None, 4, 0, checkpoint)  # fmt: skip
        report: dict[str, Any] = {}

        def complete() -> bool:
            if worker.poll() is not None:
                raise RuntimeError(f"the dqhash worker exited ({worker.returncode}); see {workdir}")
            return report.get("state") == "complete" and len(report["tables"]) == len(tables)

        while not complete():
            report = catalog_report(await read_snapshot_records(settings), snapshot_id, settings.partitions, now_ms())
            if time.monotonic() - started > 600:
                raise TimeoutError(f"the snapshot run of {len(tables)} tables did not complete: {report.get('state')}")
            await asyncio.sleep(1)  # the report is read from a topic: polled, each read bounded
        seconds = time.monotonic() - started
        matched = sum(row["counts"].get("MATCH", 0) for row in report["tables"])
        return {"snapshot_tables": len(report["tables"]), "snapshot_rows": rows * len(tables),
                "snapshot_matched": matched, "snapshot_seconds": round(seconds, 1),
                "snapshot_rows_per_s": round(2 * rows * len(tables) / seconds)}  # fmt: skip
    finally:
        stop_worker(worker)


async def run(pairs: int, tables: int, snapshot_rows: int) -> dict[str, Any]:
    external = os.environ.get("DQHASH_BROKER")
    workdir = Path(tempfile.mkdtemp(prefix="dqhash-bench-tables-"))
    broker = None if external else EmbeddedBroker(log_path=workdir / "broker.log").start()
    url = external or broker.url
    catalog = workdir / "catalog.toml"
    catalog.write_text(CATALOG)
    try:
        one = await stream_phase(url, workdir, catalog, pairs, ["bench.one"])
        many = await stream_phase(url, workdir, catalog, pairs, table_names(tables))
        snapshot: dict[str, Any] = {}
        if snapshot_rows:
            say(f"a snapshot run of {tables} tables of {snapshot_rows:,} rows ...")
            snapshot = await snapshot_phase(url, workdir, catalog, table_names(tables), snapshot_rows)
        return {
            "pairs": pairs,
            "one_table": one,
            "many_tables": many,
            "events_per_s_ratio": round(many["events_per_s"] / one["events_per_s"], 3),
            "peak_rss_ratio": round(many["peak_rss_mb"] / one["peak_rss_mb"], 3),
            # the peak is one end-of-backlog burst that moves ±30 % between runs of the same code ("Memory and
            # speed"); the median over the run is the worker's working size, the figure to compare
            "median_rss_ratio": round(many["median_rss_mb"] / one["median_rss_mb"], 3)
            if one["median_rss_mb"] and many["median_rss_mb"]
            else None,
            **snapshot,
            "broker": "embedded (Tansu)" if broker else external,
        }
    finally:
        if broker:
            broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main(pairs: int, tables: int, snapshot_rows: int, as_json: bool) -> int:
    result = run_guarded(run(pairs, tables, snapshot_rows))
    if isinstance(result, int):
        return result
    if as_json:
        print(json.dumps(result))
        return 0
    one, many = result["one_table"], result["many_tables"]
    print(f"dqhash bench --tables: {result['pairs']:,} pairs in 1 table, then in {many['tables']} tables")
    for name, key in (("input events/s", "events_per_s"), ("peak RSS MB", "peak_rss_mb"),
                      ("median RSS MB", "median_rss_mb"), ("open file descriptors", "open_files"),
                      ("RocksDB instances", "rocksdb_instances")):  # fmt: skip
        print(f"  {name:28s} {one[key] or 0:>10,} {many[key] or 0:>10,}")
    print(
        f"  events/s ratio {result['events_per_s_ratio']}, median RSS ratio {result['median_rss_ratio']}, "
        f"peak RSS ratio {result['peak_rss_ratio']}"
    )
    if "snapshot_tables" not in result:
        return 0
    print(
        f"  snapshot run of {result['snapshot_tables']} tables, {result['snapshot_rows']:,} rows a side: complete in "
        f"{result['snapshot_seconds']} s ({result['snapshot_rows_per_s']:,} rows/s both sides), "
        f"{result['snapshot_matched']:,} MATCH"
    )
    return 0
