"""``dqhash bench --snapshot-rows N``: a whole-table snapshot run on the embedded setup, rows/s and peak RSS.

The real tools do the work: an on-prem export of N rows (JSON Lines) goes through ``snapshot publish``'s
code, a SQLite cloud copy of the same rows (0.5 % changed, 0.5 % missing, 0.5 % cloud-only) through
``snapshot scan``'s, into ``--workers`` dqhash workers. Timed by the run's own report (``duration_s``, what
``dqhash snapshot report`` says): from the publish's start to the last partition judged. The bench reads the report
every two seconds, so its own clock (``seconds_observed``) runs up to two seconds longer. With ``--workers`` above
1 the same run is made first on one worker, on fresh topics, and the figures are given as a ratio to it: the
machine is shared and noisy, a same-run ratio is not. For the same reason the one-worker run is also given as a
ratio to a bare aiokafka loop over its own two topics (:func:`ceiling_of`). With ``--chunks-per-range``, the
one-worker run is made again proven chunk by chunk (``tools.snapshot.digests``), on fresh topics, and given as a
ratio to the run row by row; its rows/s count the rows of proven chunks on both sides, as its report does.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

from dqhash import settings as settings_module
from dqhash.cloud.scanner import SQLiteRangeScan
from dqhash.core import compiled_engine
from dqhash.core.hashing import RowHasher
from dqhash.core.snapshot_report import build_report
from dqhash.core.timeutil import now_ms
from dqhash.kafka.embedded_broker import EmbeddedBroker, free_port
from dqhash.kafka.security import connect_args
from dqhash.kafka.snapshot_log import read_snapshot_records
from dqhash.kafka.topics import create_topics
from dqhash.tools.bench.baselines import ceiling, topic_output, written_topics
from dqhash.tools.bench.memory import cpu_seconds, memory_parts_mb, rss_mb
from dqhash.tools.bench.pipeline import run_guarded, say
from dqhash.tools.runner import local_worker_env, start_worker, stop_worker
from dqhash.tools.snapshot.digests import DigestPlan
from dqhash.tools.snapshot.publish import publish
from dqhash.tools.snapshot.scan import Checkpoint, scan

SPLITS = 8
HASHER = RowHasher("v2", ["id", "name", "amount"])


def write_tables(rows: int, workdir: Path) -> tuple[Path, Path, dict[str, int]]:
    """The on-prem export and the SQLite cloud copy, streamed to disk (never N rows in memory), and the counts
    a correct run reports."""
    export, db = workdir / "export.jsonl", workdir / "cloud.db"
    expected = {"MATCH": 0, "MISMATCH": 0, "MISSING_CLOUD": 0, "EXTRA_IN_CLOUD": 0}
    connection = sqlite3.connect(db)
    connection.execute("CREATE TABLE rows (id TEXT PRIMARY KEY, name TEXT, amount TEXT)")
    batch = []
    with open(export, "wb") as out:
        for i in range(rows):
            row = {"id": f"r{i:09d}", "name": f"customer {i}", "amount": str(i % 10_000)}
            out.write(orjson.dumps(row) + b"\n")
            kind = i % 200
            if kind == 0:
                expected["MISSING_CLOUD"] += 1
                continue
            if kind == 1:
                row = {**row, "name": row["name"] + " (changed)"}
                expected["MISMATCH"] += 1
            else:
                expected["MATCH"] += 1
            batch.append((row["id"], row["name"], row["amount"]))
            if kind == 2:
                batch.append((f"x{i:09d}", "cloud only", "0"))
                expected["EXTRA_IN_CLOUD"] += 1
            if len(batch) >= 50_000:
                connection.executemany("INSERT INTO rows VALUES (?, ?, ?)", batch)
                batch.clear()
    connection.executemany("INSERT INTO rows VALUES (?, ?, ?)", batch)
    connection.commit()
    connection.close()
    return export, db, expected


async def one_run(
    url: str, workdir: Path, export: Path, db: Path, workers: int, rows: int, digests: DigestPlan | None = None
) -> dict[str, Any]:
    """One run on fresh topics; ``digests``: proven chunk by chunk. ``rows_per_s`` counts both sides' rows, those
    of chunks proven by their digests included (each side's rows, as the report counts them)."""
    prefix = f"dqhash-snapbench-{uuid.uuid4().hex[:8]}"
    env = local_worker_env(url, workdir, prefix, 1, 1, 0.2, free_port(), DQHASH_BATCH_MAX=2000)
    settings = settings_module.load(env)
    await create_topics(settings)
    processes, ports = [], []
    for index in range(workers):
        ports.append(free_port())
        own = {**env, "DQHASH_DATA_DIR": str(workdir / f"data-{prefix}-{index}"), "DQHASH_WEB_PORT": str(ports[-1])}
        processes.append(start_worker(own, workdir / f"worker-{prefix}-{index}.log", loglevel="warn"))
    try:
        await ready(ports, processes, 120)
        cpu_at_start = sum(cpu_seconds(p.pid) for p in processes)
        snapshot_id = f"bench-{uuid.uuid4().hex[:6]}"
        started = time.monotonic()
        source = SQLiteRangeScan(db, "rows", ["id"], {}, fetch_size=2000)
        checkpoint = Checkpoint(workdir / f"scan-{snapshot_id}.json", snapshot_id, SPLITS)
        with open(export, "rb") as stream:
            await asyncio.gather(
                publish(
                    settings,
                    export,
                    stream,
                    "jsonl",
                    snapshot_id,
                    HASHER,
                    ["id"],
                    ["id"],
                    {},
                    SPLITS,
                    None,
                    now_ms(),
                    digests=digests,
                ),
                scan(settings, source, HASHER, snapshot_id, SPLITS, None, 2, 0, checkpoint, digests=digests),
            )
        source.close()
        published = time.monotonic() - started
        say(f"  {workers} worker(s): both sides published in {published:.1f}s; waiting for the report")
        peak, fullest = 0.0, {}  # the first worker's memory parts when its RSS was highest
        deadline = time.monotonic() + 600 + rows / 500
        while True:
            for process in processes:
                if process.poll() is not None:
                    raise RuntimeError(f"a worker exited ({process.returncode}); see {workdir}")
            peak = max(peak, *(rss_mb(p.pid)[1] for p in processes))
            parts = memory_parts_mb({"DQHASH_WEB_PORT": str(ports[0])})
            if parts.get("rss", 0) >= fullest.get("rss", 0):
                fullest = parts
            report = build_report(await read_snapshot_records(settings), snapshot_id, settings.partitions, now_ms())
            if report["state"] == "complete":
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"snapshot not complete: {report['state']}, {report['progress']}")
            judged = report["progress"]["partitions_judged"]
            received = report["rows"]["onprem"] + report["rows"]["cloud"]
            say(f"    {time.monotonic() - started:6.1f}s  rows received {received:,}, partitions judged {judged}")
            await asyncio.sleep(2)  # polling a topic for the report; each read is bounded
        observed = time.monotonic() - started
        elapsed = report["duration_s"] or observed
        peak = max(peak, *(rss_mb(p.pid)[1] for p in processes))
        cpu = sum(cpu_seconds(p.pid) for p in processes) - cpu_at_start
        total = report["rows"]["onprem"] + report["rows"]["cloud"] + 2 * report["rows"]["proven_by_digests"]
        result = {
            "workers": workers,
            "chunks_per_range": digests.chunks_per_range if digests is not None else 0,
            "seconds": round(elapsed, 1),
            "seconds_observed": round(observed, 1),
            "rows_per_s": round(total / elapsed),
            "peak_rss_mb_per_worker": round(peak),
            "worker_cpu_s": round(cpu, 1),
            "worker_cpu_us_per_row": round(1e6 * cpu / total, 1),
            "memory_mb_at_highest_rss": fullest,
            "counts": report["counts"],
            "rows": report["rows"],
        }
    finally:
        for process in processes:
            stop_worker(process)
    if workers == 1 and digests is None:
        result.update(await ceiling_of(settings, total, result["rows_per_s"]))
    return result


async def ceiling_of(settings: settings_module.Settings, rows: int, rows_per_s: float) -> dict[str, Any]:
    """The bare aiokafka consume → produce loop over the run's own two topics, producing as many messages of the same
    sizes as the worker wrote: the rows/s a consumer that does nothing else reaches on this machine, now."""
    say("  ceiling: a bare aiokafka consume + produce of the same rows and output volume ...")
    kafka = connect_args(settings)
    produced = await topic_output(kafka, written_topics(settings))
    rate = await ceiling(kafka, [settings.onprem_topic, settings.cloud_topic], rows, list(produced.values()))
    return {
        "ceiling_rows_per_s": round(rate),
        "ratio": round(rows_per_s / rate, 3),
        "output_messages_per_row": round(sum(n for n, _ in produced.values()) / max(rows, 1), 2),
    }


async def ready(ports: list[int], processes: list, timeout_s: float) -> None:
    """Every worker's views answer at once (partitions assigned and recovered, no rebalance under way): the
    clock starts after start-up. A second worker's join rebalances the first, so a pass is made until every
    worker answers in the same pass."""
    import aiohttp

    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as session:
        while True:
            answered = 0
            for port, process in zip(ports, processes):
                if process.poll() is not None:
                    raise RuntimeError(f"a worker exited during start-up ({process.returncode})")
                try:
                    # a pk's view answers 503 while its worker rebalances or recovers; 404 (no state) is ready
                    url = f"http://127.0.0.1:{port}/dq/pairs/bench-ready-probe"
                    async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as response:
                        answered += response.status in (200, 404)
                except (TimeoutError, aiohttp.ClientError):
                    pass
            if answered == len(ports):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the workers did not all become ready in {timeout_s:.0f}s")
            await asyncio.sleep(0.5)  # polling web views: no event to await from other processes


async def run(rows: int, workers: int, chunks_per_range: int = 0) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="dqhash-snapbench-"))
    broker = EmbeddedBroker(log_path=workdir / "broker.log").start()
    try:
        say(f"writing an export and a cloud copy of {rows:,} rows ...")
        export, db, expected = write_tables(rows, workdir)
        runs = []
        for count in sorted({1, workers}):
            say(f"snapshot of {rows:,} rows on {count} worker(s) ...")
            result = await one_run(broker.url, workdir, export, db, count, rows)
            result["counts_as_expected"] = result["counts"] == {k: v for k, v in expected.items() if v}
            runs.append(result)
        if chunks_per_range:
            say(f"snapshot of {rows:,} rows on 1 worker, proven chunk by chunk ({chunks_per_range} chunks a range) ...")
            plan = DigestPlan(chunks_per_range, wait_s=600)
            result = await one_run(broker.url, workdir, export, db, 1, rows, plan)
            result["counts_as_expected"] = result["counts"] == {k: v for k, v in expected.items() if v}
            runs.append(result)
        engine = compiled_engine.describe()  # the workers': the same install, started from the same directory
        out: dict[str, Any] = {
            "rows": rows,
            "splits": SPLITS,
            "broker": "embedded (Tansu)",
            "engine": engine,
            "runs": runs,
        }
        if workers > 1:
            out["ratio_rows_per_s"] = round(runs[1]["rows_per_s"] / runs[0]["rows_per_s"], 3)
        if chunks_per_range:
            out["ratio_digests_to_rows"] = round(runs[-1]["rows_per_s"] / runs[0]["rows_per_s"], 3)
        return out
    finally:
        broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main(rows: int, workers: int, as_json: bool, chunks_per_range: int = 0) -> int:
    result = run_guarded(run(rows, workers, chunks_per_range))
    if isinstance(result, int):
        return result
    if as_json:
        print(json.dumps(result))
    else:
        print(f"dqhash bench: snapshot of {rows:,} rows ({result['splits']} token ranges), {result['broker']}")
        for r in result["runs"]:
            how = f", proven chunk by chunk ({r['chunks_per_range']} a range)" if r["chunks_per_range"] else ""
            print(
                f"  {r['workers']} worker(s){how}: {r['rows_per_s']:>8,} rows/s (both sides), {r['seconds']}s, "
                f"peak RSS {r['peak_rss_mb_per_worker']} MB per worker, counts as expected: {r['counts_as_expected']}"
            )
            if "ceiling_rows_per_s" in r:
                print(
                    f"    bare aiokafka loop over the same rows: {r['ceiling_rows_per_s']:,} rows/s; ratio {r['ratio']}"
                )
        if "ratio_rows_per_s" in result:
            print(f"  rows/s ratio, {workers} workers to 1: {result['ratio_rows_per_s']}")
        if "ratio_digests_to_rows" in result:
            print(f"  rows/s ratio, proven chunk by chunk to row by row: {result['ratio_digests_to_rows']}")
    return 0 if all(r["counts_as_expected"] for r in result["runs"]) else 1
