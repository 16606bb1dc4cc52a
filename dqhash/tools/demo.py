"""``dqhash demo``: the whole loop on a mixed workload with known answers.

Starts the embedded broker (unless ``DQHASH_BROKER`` is set), seeds a SQLite
"cloud copy", creates the topics, runs a real worker (reconciler + cloud hash
producer), feeds every scenario, waits until every event is accounted for and
compares what came out with what must come out. The loop is the product's:
on-prem event → lookup → read the cloud row → hash → compare (with rechecks).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import sqlite3
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from dqhash import settings as settings_module
from dqhash.cloud.scanner import SQLiteRangeScan
from dqhash.core.hashing import RowHasher
from dqhash.core.lookups import encode_request
from dqhash.core.snapshot_report import build_report
from dqhash.core.timeutil import now_ms
from dqhash.kafka.embedded_broker import EmbeddedBroker
from dqhash.kafka.security import connect_args
from dqhash.kafka.snapshot_log import read_snapshot_records
from dqhash.kafka.topics import create_source_topics, create_topics, topic_plan
from dqhash.tools import table_workload
from dqhash.tools.demo_report import DEMO_GRACE_S, DEMO_WINDOW_S, RECHECKS, report, stream_differences
from dqhash.tools.runner import (
    OutputReader,
    Outputs,
    local_worker_env,
    produce,
    start_worker,
    stop_worker,
)
from dqhash.tools.snapshot.publish import publish
from dqhash.tools.snapshot.scan import Checkpoint, scan
from dqhash.tools.workload import HASH_COLUMNS, HASH_TYPES, TABLE_DDL, Workload, add_snapshot_scenarios, build

#: A short replication delay and backoff, so rechecks play out in seconds (the windows: ``demo_report``).
LOOKUP_DELAY_S, RECHECK_BACKOFF_S = 0.5, 1
#: Rows that "replicate late" land after the first read and before the deadline's rechecks.
IN_GRACE_DELAY_S = 2.0
#: Re-verification's budget: a pass over the demo's matched rows takes seconds.
REVERIFY_ROWS_PER_SECOND = 2000
SNAPSHOT_SPLITS = 16


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class UdpCounter:
    """Stands in for the DataDog agent: counts DogStatsD datagrams and metric lines received."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.lines: Counter = Counter()

    def drain(self) -> None:
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return
            for line in data.decode(errors="replace").splitlines():
                self.lines[line.split(":", 1)[0]] += 1

    def close(self) -> None:
        self.sock.close()


async def run(events: int, timeout_s: float | None = None, keep: bool = False, outcome: dict | None = None) -> int:
    external = os.environ.get("DQHASH_BROKER")
    workdir = Path(tempfile.mkdtemp(prefix="dqhash-demo-"))
    broker = None if external else EmbeddedBroker(log_path=workdir / "broker.log")
    statsd = UdpCounter()
    worker = reader = store = settings = None
    result = 1
    try:
        if broker:
            broker.start()
            say(f"embedded broker (Tansu) at {broker.url}")
        url = external or broker.url
        prefix = f"dqhash-demo-{uuid.uuid4().hex[:8]}"
        workload = build(events, now_ms(), run_id=prefix[-8:], verify_deletes=True)
        stream_expected = Counter(workload.expected_audit)  # before the snapshot scenarios add theirs
        add_snapshot_scenarios(workload, max(2, events // 2000), max(3, events // 1000), run_id=prefix[-8:])
        tables = table_workload.build([pk for pk, _ in _pks(workload)], now_ms())
        cloud_db = workdir / "cloud.db"
        store = CloudCopy(cloud_db)
        store.insert(workload.rows_now)
        store.insert_tables(tables)
        catalog = workdir / "catalog.toml"
        catalog.write_text(table_workload.CATALOG)
        connector = f"{prefix}-cdc"  # the extra tables' on-prem side: a Debezium connector's change topics
        env = local_worker_env(
            url,
            workdir,
            prefix,
            DEMO_WINDOW_S,
            DEMO_GRACE_S,
            0.2,
            statsd.port,
            DD_SERVICE="dqhash-demo",
            DQHASH_LOOKUPS="true",
            DQHASH_LOOKUP_DELAY_SECONDS=LOOKUP_DELAY_S,
            DQHASH_RECHECKS=RECHECKS,
            DQHASH_RECHECK_BACKOFF_SECONDS=RECHECK_BACKOFF_S,
            DQHASH_CLOUD_STORE="sqlite",
            DQHASH_SQLITE_PATH=cloud_db,
            DQHASH_CATALOG=catalog,
            DQHASH_VERIFY_DELETES="true",
            DQHASH_REVERIFY_ROWS_PER_SECOND=REVERIFY_ROWS_PER_SECOND,
            DQHASH_REVERIFY_MIN_AGE_SECONDS=1,
            DQHASH_DEBEZIUM_TOPICS=re.escape(connector + ".") + ".*",
        )
        settings = settings_module.load(env)
        await create_topics(settings)
        await create_source_topics(settings, [table_workload.change_topic(w.spec.name, connector) for w in tables])
        worker = start_worker(env, workdir / "worker.log")
        say(f"worker started (pid {worker.pid}, log {workdir / 'worker.log'}), topics prefixed {prefix}")
        say(f"dashboard: http://127.0.0.1:{env['DQHASH_WEB_PORT']}/ (while the demo runs; --keep keeps it)")
        reader = await OutputReader(
            connect_args(settings), settings.audit_topic, settings.dlq_topic, settings.metrics_topic
        ).start()
        started = time.monotonic()
        result = await _drive(
            settings,
            workload,
            tables,
            reader,
            worker,
            statsd,
            store,
            started,
            timeout_s or 60 + events / 200,
            connector,
            stream_expected,
        )
        elapsed = time.monotonic() - started  # the stream's part: the snapshot run reports its own duration
        if result == 0:
            result = await _snapshot_phase(settings, workload, reader, worker, store, workdir, cloud_db)
        await asyncio.sleep(0.5)  # let the last DogStatsD flush (every 0.3 s) arrive before counting datagrams
        statsd.drain()
        if result == 0:
            result = report(workload, tables, reader.outputs, elapsed, statsd, settings.partitions)
        if outcome is not None:
            outcome["result"] = result
        if keep:
            await _keep_running(env, workdir)
        return result
    finally:  # each step bounded, the worker first: a hung client never leaves a worker or topics behind
        if worker:
            code = stop_worker(worker)
            say(f"worker stopped (exit code {code})")
        if reader:
            await _bounded(reader.stop(), "stopping the output reader")
        if external and settings is not None:
            await _bounded(_delete_topics(settings), "deleting the demo's topics", 60)
        if broker:
            broker.stop()
        if store:
            store.close()
        statsd.close()
        if result == 0 and not keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            say(f"kept {workdir} (worker and broker logs) for a look")


async def _bounded(step: Any, what: str, timeout_s: float = 15) -> None:
    """A clean-up step that gives up after ``timeout_s``, saying so, so that the next ones still run."""
    try:
        await asyncio.wait_for(step, timeout_s)
    except TimeoutError:
        say(f"{what} took longer than {timeout_s:.0f}s; went on without it")


async def _keep_running(env: dict[str, str], workdir: Path) -> None:
    """``--keep``: the broker and the worker stay up, with the commands to look around, until Ctrl-C."""
    topics = " ".join(f"{k}={v}" for k, v in sorted(env.items()) if k.endswith("_TOPIC") or k == "DQHASH_BROKER")
    url = f"http://127.0.0.1:{env['DQHASH_WEB_PORT']}"
    say(
        "\n".join(
            [
                "",
                "still running (--keep): the broker and the worker stay up until Ctrl-C. Try:",
                f"  open {url}/                       # the dashboard",
                f"  curl -s {url}/dq/mismatches?limit=5",
                f"  curl -s {url}/dq/status",
                f"  export {topics}",
                "  dqhash tail audit --status MISMATCH       # the verdicts as JSON lines (--follow for new ones)",
                "  dqhash tail dlq                           # dead letters with their reasons",
                "  dqhash report --since 1h --max-mismatch-rate 1%",
                f"  less {workdir / 'worker.log'}",
            ]
        )
    )
    while True:
        await asyncio.sleep(3600)  # until Ctrl-C or SIGTERM (``main``): nothing to wait for but the operator


async def _delete_topics(settings: Any) -> None:
    """With DQHASH_BROKER set, the demo made its topics on someone's broker: it deletes them, as it says it does."""
    from aiokafka.admin import AIOKafkaAdminClient

    names = [spec.name for spec in topic_plan(settings)]
    admin = AIOKafkaAdminClient(**connect_args(settings))
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        doomed = [n for n in names if n in existing] + sorted(
            n for n in existing if n.startswith(settings.app_id + "-") and n not in names
        )  # the app's own topics, and the change topics of its connector (``<app id>-cdc.*``)
        if doomed:
            await admin.delete_topics(doomed)
        say(f"deleted the demo's {len(doomed)} topics from {settings.broker}")
    except Exception as exc:  # the run's result stands; say what is left behind
        say(f"could not delete the demo's topics (prefix {settings.app_id}) from {settings.broker}: {exc}")
    finally:
        await admin.close()


class CloudCopy:
    """The SQLite "cloud copy" the producer reads; the demo plays the replication into it."""

    def __init__(self, path: Path) -> None:
        self.connection = sqlite3.connect(path)
        self.connection.execute(TABLE_DDL)
        for ddl in table_workload.DDL.values():
            self.connection.execute(ddl)

    def insert_tables(self, tables: list[table_workload.TableWork]) -> None:
        """The extra tables' cloud rows (``tools.table_workload``), under the cloud's column names."""
        with self.connection:
            for work in tables:
                for row in work.cloud_rows:
                    names = ", ".join(row)
                    self.connection.execute(
                        f"INSERT OR REPLACE INTO {work.spec.cloud_table} ({names}) VALUES ({', '.join('?' * len(row))})",
                        list(row.values()),
                    )

    def insert(self, rows) -> None:
        with self.connection:
            self.connection.executemany(
                "INSERT OR REPLACE INTO rows (id, name, amount, updated_at, notes) VALUES (?, ?, ?, ?, ?)",
                [(r["id"], r["name"], r["amount"], r["updated_at"], r["notes"]) for r in rows],
            )

    def close(self) -> None:
        self.connection.close()


async def _drive(
    settings,
    workload: Workload,
    tables: list[table_workload.TableWork],
    reader: OutputReader,
    worker,
    statsd: UdpCounter,
    store: CloudCopy,
    started: float,
    timeout_s: float,
    connector: str,
    stream_expected: Counter,
) -> int:
    expected_audit = sum(stream_expected.values()) + sum(sum(t.expected.values()) for t in tables)
    kafka = connect_args(settings)
    say(
        f"cloud copy (SQLite) seeded with {len(workload.rows_now)} rows; producing {len(workload.onprem)} "
        "on-prem events"
    )
    await produce(kafka, settings.onprem_topic, workload.onprem)
    for work in tables:
        topic = table_workload.change_topic(work.spec.name, connector)
        say(f"  and {len(work.changes)} Debezium change events of {work.spec.name} on {topic} (key "
            f"{', '.join(work.spec.key)}), read by the worker's Debezium reader")  # fmt: skip
        await produce(kafka, topic, work.changes)
    await asyncio.sleep(IN_GRACE_DELAY_S)  # the scenario itself: rows that replicate late, inside the grace
    store.insert(workload.rows_in_grace)

    late = dict(workload.rows_late)
    expected_dlq = sum(workload.expected_dlq.values())
    deadline = time.monotonic() + timeout_s
    last_progress = 0.0

    def done(out: Outputs) -> bool:
        return (
            sum(out.audit.values()) >= expected_audit
            and sum(out.dlq.values()) >= expected_dlq
            and out.window_total("DUPLICATES") >= workload.expected_duplicates
            and not late
        )

    while not done(reader.outputs):
        if worker.poll() is not None:
            say(f"the worker exited with code {worker.returncode}; see its log")
            return 1
        # the scenario: the row shows up after its table declared it MISSING_CLOUD, and someone asks again (the Debezium
        # tables share pk values with this one, and may declare theirs missing first)
        ready = [pk for pk in late if (table_workload.DEFAULT_TABLE, pk) in reader.outputs.missing_cloud_pks]
        if ready:
            store.insert([late.pop(pk) for pk in ready])
            await produce(kafka, settings.lookup_topic, [(pk.encode(), encode_request(pk, 0, 0)) for pk in ready])
        if time.monotonic() - last_progress >= 1.0:
            last_progress = time.monotonic()
            out = reader.outputs
            say(
                f"  {time.monotonic() - started:5.1f}s  audit {sum(out.audit.values())}/{expected_audit}  "
                f"dlq {sum(out.dlq.values())}/{expected_dlq}  "
                f"duplicates {out.window_total('DUPLICATES')}/{workload.expected_duplicates}  late sent "
                f"{len(workload.rows_late) - len(late)}/{len(workload.rows_late)}"
            )
        if time.monotonic() > deadline:
            differing = "; ".join(stream_differences(stream_expected, tables, reader.outputs)) or "none"
            say(f"timed out after {timeout_s:.0f}s waiting for every event to be accounted for; verdicts seen, of "
                f"those expected, where they differ: {differing}")  # fmt: skip
            return 1
        await _changed(reader)
    return 0


async def _changed(reader: OutputReader) -> None:
    """Until the reader sees a new output, at most half a second (the loops check their own conditions)."""
    reader.changed.clear()
    try:
        await asyncio.wait_for(reader.changed.wait(), 0.5)
    except TimeoutError:
        pass


async def _snapshot_phase(settings, workload: Workload, reader: OutputReader, worker, store, workdir, cloud_db) -> int:
    """Rows drift in the cloud (re-verification must find them), then a snapshot run compares every row,
    the cloud-only ones included, and its report must agree with what the workload knows."""
    say(f"changing {len(workload.drift_rows)} matched rows in the cloud only; re-verification should notice")
    store.insert(workload.drift_rows)
    deadline = time.monotonic() + 60
    while reader.outputs.audit.get(("CLOUD_DRIFT", False), 0) < len(workload.drift_rows):
        if worker.poll() is not None or time.monotonic() > deadline:
            say(
                "re-verification did not report every drifted row within 60 s"
                if worker.poll() is None
                else f"the worker exited with code {worker.returncode}; see its log"
            )
            return 1
        await _changed(reader)
    snapshot_id = f"demo-{uuid.uuid4().hex[:6]}"
    store.insert(workload.cloud_only_rows)
    export = workdir / "onprem-export.jsonl"
    export.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in workload.onprem_table))
    kept_deletes = workload.expected_snapshot.get("EXTRA_IN_CLOUD", 0) - len(workload.cloud_only_rows)
    say(
        f"snapshot {snapshot_id}: {len(workload.onprem_table)} on-prem rows exported; the cloud copy holds "
        f"{len(workload.cloud_only_rows)} rows the on-prem table never had and {kept_deletes} rows whose on-prem "
        f"delete never reached it: {len(workload.cloud_only_rows) + kept_deletes} EXTRA_IN_CLOUD expected"
    )
    hasher = RowHasher("v2", HASH_COLUMNS, HASH_TYPES)
    with open(export, "rb") as stream:
        await publish(
            settings, export, stream, "jsonl", snapshot_id, hasher, ["id"], ["id"], {}, SNAPSHOT_SPLITS, None, now_ms()
        )
    source = SQLiteRangeScan(cloud_db, "rows", ["id"], {}, fetch_size=500)
    try:
        checkpoint = Checkpoint(workdir / f"scan-{snapshot_id}.json", snapshot_id, SNAPSHOT_SPLITS)
        if await scan(settings, source, hasher, snapshot_id, SNAPSHOT_SPLITS, None, 4, 0, checkpoint):
            return 1
    finally:
        source.close()
    deadline = time.monotonic() + 120
    while True:
        report = build_report(await read_snapshot_records(settings), snapshot_id, settings.partitions, now_ms())
        if report["state"] == "complete":
            break
        if worker.poll() is not None or time.monotonic() > deadline:
            say(f"snapshot {snapshot_id} did not complete: {report['state']}, problems {report['problems']}")
            return 1
        await asyncio.sleep(0.5)  # the report is read from a topic: polled, each read bounded
    workload.snapshot_report = report
    return 0


def main(events: int, keep: bool = False) -> int:
    """The demo's exit status: 0 when every count agrees. With ``--keep``, Ctrl-C ends it with that status."""
    outcome = {"result": 130}
    try:
        return asyncio.run(run(events, keep=keep, outcome=outcome))
    except KeyboardInterrupt:
        say("stopped; cleaned up" if keep else "interrupted; cleaned up")
        return outcome["result"]


def _pks(workload: Workload) -> list[tuple[str, None]]:
    """A quarter of the first table's PK values, which the extra tables reuse: the same value is a row of each
    table."""
    pks = [(row["id"], None) for row in workload.onprem_table]
    return pks[: max(20, len(pks) // 4)]
