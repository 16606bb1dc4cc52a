"""``dqhash bench --source URL``: rows/s of a snapshot publish read straight from PostgreSQL, against the bare
hasher on the same rows, in the same run.

A table of ``--source-rows`` rows shaped like the other benchmarks' customer row (9 typed columns) is made in
the given database (schema ``dqhash_bench``, dropped afterwards), then:

1. **read**: the rows through ``dqhash.source`` (server-side cursor, types mapped), nothing else;
2. **publish**: ``snapshot publish --source``'s code end to end, read, hash, and sent to Topic-1 on the
   embedded broker;
3. **bare hasher**: the spec's hasher alone over the same rows, held in memory (at most 100,000).

The shares say what reading and publishing add to hashing: hashing must not be what bounds a run.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from dqhash import settings as settings_module
from dqhash.core.hashing import RowHasher
from dqhash.core.timeutil import now_ms
from dqhash.kafka.embedded_broker import EmbeddedBroker, free_port
from dqhash.kafka.topics import create_topics
from dqhash.source.database import SourceTable, source_url
from dqhash.tools.bench.pipeline import run_guarded, say
from dqhash.tools.runner import local_worker_env
from dqhash.tools.snapshot.publish import publish_rows, source_input

SPLITS = 8
HELD = 100_000
COLUMNS = "id bigint PRIMARY KEY, name text, email text, balance numeric(12, 2), score double precision, " \
    "active boolean, updated_at timestamptz, born date, tags text[]"  # fmt: skip
FILL = """
INSERT INTO {table}
SELECT n, 'customer-' || n, 'c' || n || '@example.com', (n % 100000) / 100.0, n * 0.5, n % 2 = 0,
       timestamptz '2024-05-01 00:00:00+00' + n * interval '1 second', date '1990-01-01' + (n % 10000),
       CASE WHEN n % 3 = 0 THEN NULL ELSE ARRAY['a', 'b'] END
FROM generate_series(1, :rows) AS n
"""


def _timed(fn: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


async def run(url: str, rows: int) -> dict[str, Any]:
    table = f"dqhash_bench.rows_{uuid.uuid4().hex[:8]}"
    engine = create_engine(source_url(url))
    workdir = Path(tempfile.mkdtemp(prefix="dqhash-sourcebench-"))
    broker = source = None
    try:
        say(f"making {table} of {rows:,} rows ...")
        with engine.begin() as connection:
            connection.execute(text("CREATE SCHEMA IF NOT EXISTS dqhash_bench"))
            connection.execute(text(f"CREATE TABLE {table} ({COLUMNS})"))
            connection.execute(text(FILL.format(table=table)), {"rows": rows})
            connection.execute(text(f"ANALYZE {table}"))
        source = SourceTable(source_url(url), table).open()
        hasher = RowHasher("v2", None, source.types())
        say("reading it ...")
        read, read_s = _timed(lambda: sum(1 for _ in source.rows()))
        held = [row for _, row in zip(range(HELD), source.rows())]
        say("hashing what was read, alone ...")
        _, hash_s = _timed(lambda: [hasher.hash_and_digests(row) for row in held])
        broker = EmbeddedBroker(log_path=workdir / "broker.log").start()
        prefix = f"dqhash-srcbench-{uuid.uuid4().hex[:6]}"
        settings = settings_module.load(local_worker_env(broker.url, workdir, prefix, 1, 1, 0.2, free_port()))
        await create_topics(settings)
        say("publishing it as a snapshot run ...")
        started = time.perf_counter()
        keys = (list(source.key), list(source.key), source.types())
        errors = await publish_rows(settings, source_input(source), "srcbench", hasher, keys, SPLITS, None, now_ms())
        publish_s = time.perf_counter() - started
        bare = len(held) / hash_s
        return {
            "rows": read,
            "columns": len(source.types()),
            "read_rows_per_s": round(read / read_s),
            "publish_rows_per_s": round(read / publish_s),
            "bare_hasher_rows_per_s": round(bare),
            "read_share_of_hasher": round(read / read_s / bare, 3),
            "publish_share_of_hasher": round(read / publish_s / bare, 3),
            "dead_letters": errors,
            "broker": "embedded (Tansu)",
        }
    finally:
        if source is not None:
            source.close()
        with engine.begin() as connection:
            connection.execute(text(f"DROP TABLE IF EXISTS {table}"))
        engine.dispose()
        if broker is not None:
            broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main(url: str, rows: int, as_json: bool) -> int:
    result = run_guarded(run(url, rows))
    if isinstance(result, int):
        return result
    if as_json:
        print(json.dumps(result))
        return 0
    print(f"dqhash bench: a snapshot publish of {result['rows']:,} rows ({result['columns']} columns) from PostgreSQL")
    for name in ("read", "publish", "bare_hasher"):
        print(f"  {name.replace('_', ' '):12s} {result[name + '_rows_per_s']:>10,} rows/s")
    print(f"  publish / bare hasher: {result['publish_share_of_hasher']}; dead letters: {result['dead_letters']}")
    return 0 if result["dead_letters"] == 0 else 1
