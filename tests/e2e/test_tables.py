"""Many tables in one deployment, on both brokers: one worker and its cloud producer prove several tables of a
catalog; the same PK value in two tables stays two rows; a table added to the catalog needs no new topic; a
table at its failure cap is suspended, the others go on."""

import os
import sqlite3
import subprocess
import sys
import time
import uuid

import orjson
import pytest

from dqhash.core.hashing import RowHasher
from dqhash.core.partitioning import partition_for
from dqhash.core.table_keys import SEPARATOR, pair_key
from dqhash.core.timeutil import now_ms
from tests.e2e.conftest import running_pipeline

pytestmark = pytest.mark.e2e

PARTITIONS = 4
CATALOG = """
default = "shop.orders"

[[table]]
name = "shop.orders"
cloud = "ks.orders"
key = ["id"]
columns = ["id", "amount"]
types = { amount = "decimal" }

[[table]]
name = "shop.customers"
cloud = "ks.customers"
key = ["id"]
columns = ["id", "full_name"]
rename = { full_name = "name" }

[[table]]
name = "shop.flaky"
cloud = "ks.flaky"
key = ["id"]
columns = ["id"]
failure_cap = 4
"""
ADDED = """
[[table]]
name = "billing.invoices"
cloud = "ks.invoices"
key = ["id"]
columns = ["id", "total"]
"""
HASHERS = {
    "shop.orders": RowHasher("v2", ["id", "amount"], {"amount": "decimal"}),
    "shop.customers": RowHasher("v2", ["id", "full_name"]),
    "shop.flaky": RowHasher("v2", ["id"]),
    "billing.invoices": RowHasher("v2", ["id", "total"]),
}


@pytest.fixture(scope="module")
def tables(tmp_path_factory, broker):
    workdir = tmp_path_factory.mktemp(f"tables-{broker}")
    db = workdir / "cloud.db"
    connection = sqlite3.connect(db, check_same_thread=False)
    connection.executescript(
        "CREATE TABLE orders (id TEXT PRIMARY KEY, amount TEXT);"
        "CREATE TABLE customers (id TEXT PRIMARY KEY, name TEXT);"
        "CREATE TABLE flaky (id TEXT PRIMARY KEY);"
        "CREATE TABLE invoices (id TEXT PRIMARY KEY, total TEXT);"
    )
    catalog = workdir / "catalog.toml"
    catalog.write_text(CATALOG)
    try:
        with running_pipeline(
            workdir,
            "tables",
            broker=broker,
            DQHASH_CATALOG=catalog,
            DQHASH_LOOKUPS="true",
            DQHASH_CLOUD_STORE="sqlite",
            DQHASH_SQLITE_PATH=db,
            DQHASH_PARTITIONS=str(PARTITIONS),
        ) as running:
            running.cloud_db, running.catalog_path = connection, catalog
            yield running
    finally:
        connection.close()


def change(table, pk, row):
    """A Topic-1 record of ``table``, keyed by its pair key, hashed by the table's own rules."""
    digest, digests = HASHERS[table].hash_and_digests(row)
    doc = {
        "event_id": f"ev-{uuid.uuid4().hex[:10]}",
        "table": table,
        "hash_onprem": digest.digest,
        "column_digests": digests,
        "partitionColumns": [{"type": "PK", "value": pk}],
        "event_ts": now_ms(),
        "action": "UPDATE",
    }
    return pair_key(table, pk, "shop.orders").encode(), orjson.dumps(doc)


def verdicts(pipeline, pk):
    return {(r["table"], r["status"]) for r in pipeline.audits_for(pk)}


def test_the_same_pk_in_two_tables_is_proved_as_two_rows_each_by_its_own_rules(tables):
    pk = f"k-{uuid.uuid4().hex[:8]}"
    with tables.cloud_db:
        tables.cloud_db.execute("INSERT INTO orders VALUES (?, '12.50')", (pk,))
        tables.cloud_db.execute("INSERT INTO customers VALUES (?, 'Ada')", (pk,))  # cloud name of full_name
    tables.send_onprem(
        change("shop.orders", pk, {"id": pk, "amount": "12.5"}),
        change("shop.customers", pk, {"id": pk, "full_name": "Ada Lovelace"}),  # differs from the cloud's "Ada"
    )
    tables.wait_audit(pk, count=2, timeout_s=60)
    assert verdicts(tables, pk) == {("shop.orders", "MATCH"), ("shop.customers", "MISMATCH")}
    [mismatch] = [r for r in tables.audits_for(pk) if r["status"] == "MISMATCH"]
    assert mismatch["differing_columns"] == ["full_name"]  # named by its on-prem name
    cloud_records = tables.reader.outputs.cloud_hashes[pk]
    assert {r.get("table") for r in cloud_records} == {"shop.orders", "shop.customers"}
    listed = wait_view(
        tables,
        "/dq/status",
        lambda body: {row["table"]: row for row in body["tables"]},
        lambda rows: rows["shop.customers"]["open_problems"] >= 1 and rows["shop.orders"]["compared"] >= 1,
    )
    assert listed["shop.customers"]["state"] == "active"
    detail = tables_view(tables, "/dq/tables/shop.customers")
    assert detail["catalog"]["rename"] == {"full_name": "name"} and detail["summary"]["table"] == "shop.customers"
    assert any(p["pk"] == pk for p in detail["problems"]) or detail["summary"]["problems"] >= 1


def test_a_table_added_to_the_catalog_is_proved_after_a_restart_without_new_topics(tables):
    pk = f"inv-{uuid.uuid4().hex[:8]}"
    with tables.cloud_db:
        tables.cloud_db.execute("INSERT INTO invoices VALUES (?, '99')", (pk,))
    record = change("billing.invoices", pk, {"id": pk, "total": "99"})
    tables.send_onprem(record)
    key, value, headers = tables.wait_dlq(lambda k, v, h: v == record[1])
    assert headers["dq.error.reason"] == b"UNKNOWN_TABLE" and b"billing.invoices" in headers["dq.error.message"]
    tables.catalog_path.write_text(CATALOG + ADDED)
    tables.restart_worker(wipe_state=False)
    tables.wait_web(timeout_s=120)
    tables.send_onprem(record)  # the dead letter, replayed
    [verdict] = tables.wait_audit(pk, timeout_s=60)
    assert (verdict["table"], verdict["status"]) == ("billing.invoices", "MATCH")


def test_a_table_at_its_failure_cap_is_suspended_while_the_others_go_on(tables):
    # cap 4 over 4 partitions: one problem in a partition suspends the table there
    keys = [
        k
        for k in (f"f-{uuid.uuid4().hex[:8]}" for _ in range(400))
        if partition_for(f"shop.flaky{SEPARATOR}{k}", PARTITIONS) == 1
    ]
    first, later = keys[0], keys[1:4]
    tables.send_onprem(change("shop.flaky", first, {"id": first}))  # no cloud row: MISSING_CLOUD
    [missing] = tables.wait_audit(first, timeout_s=60)
    assert (missing["table"], missing["status"]) == ("shop.flaky", "MISSING_CLOUD")
    tables.send_onprem(*(change("shop.flaky", k, {"id": k}) for k in later))
    ok = f"k-{uuid.uuid4().hex[:8]}"
    with tables.cloud_db:
        tables.cloud_db.execute("INSERT INTO orders VALUES (?, '1')", (ok,))
    tables.send_onprem(change("shop.orders", ok, {"id": ok, "amount": "1"}))
    tables.wait_audit(ok, timeout_s=60)
    assert verdicts(tables, ok) == {("shop.orders", "MATCH")}

    def suspended(out):
        return sum(
            w.get("tables", {}).get("shop.flaky", {}).get("counts", {}).get("SUSPENDED", 0)
            for w in out.windows.values()
        )

    tables.run(
        tables.reader.wait_for(lambda out: suspended(out) >= 3, 60, lambda out: f"3 SUSPENDED; have {suspended(out)}")
    )
    assert all(tables.audits_for(k) == [] for k in later)  # not compared: no flood of MISSING_CLOUD
    log = tables.log_path().read_text()
    assert "table shop.flaky suspended in partition 1" in log


def test_a_snapshot_run_of_the_whole_catalog_reports_each_table_and_reruns_only_what_differed(tables, tmp_path):
    from dqhash.core.catalog import parse_catalog
    from dqhash.tools.snapshot.publish import publish

    tag = uuid.uuid4().hex[:6]
    with tables.cloud_db:
        tables.cloud_db.executemany("INSERT INTO orders VALUES (?, ?)", [(f"s{tag}-{n}", f"{n}.5") for n in range(20)])
        tables.cloud_db.executemany(
            "INSERT INTO customers VALUES (?, ?)", [(f"s{tag}-{n}", f"c{n}") for n in range(10)]
        )
    catalog = parse_catalog(tables.catalog_path.read_text())
    run = f"cat-{tag}"
    for spec in catalog.tables.values():  # the on-prem side: one export per table, as the cloud holds it ...
        columns = [spec.rename.get(c, c) for c in spec.columns]  # cloud names of the hashed columns
        rows = tables.cloud_db.execute(f"SELECT {', '.join(columns)} FROM {spec.cloud_table}").fetchall()
        export = [dict(zip(spec.columns, row)) for row in rows]
        if spec.name == "shop.orders":
            export.append({"id": f"s{tag}-only-on-prem", "amount": "1"})  # ... but a row the cloud lacks
        if spec.name == "shop.customers":
            export = [dict(r, full_name="changed") if r["id"] == f"s{tag}-3" else r for r in export]  # and one differs
        path = tmp_path / f"{spec.name}.jsonl"
        path.write_text("".join(orjson.dumps(r).decode() + "\n" for r in export))
        hasher = RowHasher(spec.hash_strategy, spec.columns, spec.types)
        with open(path, "rb") as stream:
            errors = tables.run(
                publish(tables.settings, path, stream, "jsonl", f"{run}:{spec.name}", hasher, list(spec.key),
                        list(spec.key), dict(spec.types), 8, None, now_ms(), spec.name)
            )  # fmt: skip
        assert errors == 0
    env = {**os.environ, **{k: str(v) for k, v in tables.env.items()}}
    scan = [sys.executable, "-m", "dqhash.cli", "snapshot", "scan", "--all-tables", "--splits", "8"]
    done = subprocess.run([*scan, "--snapshot-id", run, "--checkpoint", str(tmp_path / "scan.json")],
                          env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"table {len(catalog.tables)} of {len(catalog.tables)}" in done.stderr
    report = wait_catalog_report(tables, env, run, len(catalog.tables))
    rows = {row["table"]: row for row in report["tables"]}
    assert rows["shop.orders"]["counts"].get("MISSING_CLOUD") == 1 and rows["shop.orders"]["counts"]["MATCH"] >= 20
    assert rows["shop.customers"]["counts"].get("MISMATCH") == 1
    assert set(report["ranges_with_differences"]) == {"shop.orders", "shop.customers"}
    again = subprocess.run([*scan, "--snapshot-id", f"{run}-again", "--ranges-from", run,
                            "--checkpoint", str(tmp_path / "again.json")], env=env, capture_output=True, text=True,
                           timeout=300)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "rescanning the 2 table(s) that differed: ['shop.customers', 'shop.orders']" in again.stderr
    text = subprocess.run([sys.executable, "-m", "dqhash.cli", "snapshot", "report", run], env=env,
                          capture_output=True, text=True, timeout=120).stdout  # fmt: skip
    assert f"snapshot {run}: complete, {len(catalog.tables)} table(s)" in text and "shop.customers" in text


def wait_catalog_report(pipeline, env, run, tables, timeout_s=90.0):
    """Until every table's run of ``run`` is complete (``dqhash snapshot report --json``)."""
    deadline = time.monotonic() + timeout_s
    report = None
    while time.monotonic() < deadline:
        done = subprocess.run([sys.executable, "-m", "dqhash.cli", "snapshot", "report", run, "--json"], env=env,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        report = orjson.loads(done.stdout) if done.returncode == 0 else None
        if report and report["state"] == "complete" and len(report["tables"]) == tables:
            return report
        pipeline.check_alive(0)
        time.sleep(0.5)  # another process's answer: there is nothing to await
    raise AssertionError(f"the catalog run {run} did not complete within {timeout_s}s; last report: {report}")


def test_the_dashboard_lists_the_tables_and_narrows_to_one_in_headless_chromium(tables, tmp_path, broker):
    """Over the DevTools protocol: the tables list shows each table with its match rate and state; a click on one
    narrows the problems list to its problems and says which table is shown."""
    import asyncio

    from tests.e2e.browser import Browser
    from tests.e2e.test_web import chromium

    if broker != "embedded":
        pytest.skip("the page is the same on both brokers: checked once, on the embedded one")
    executable = chromium()
    pk = f"k-{uuid.uuid4().hex[:8]}"
    with tables.cloud_db:
        tables.cloud_db.execute("INSERT INTO orders VALUES (?, '2')", (pk,))
        tables.cloud_db.execute("INSERT INTO customers VALUES (?, 'Bo')", (pk,))
    tables.send_onprem(
        change("shop.orders", pk, {"id": pk, "amount": "3"}),
        change("shop.customers", pk, {"id": pk, "full_name": "Al"}),
    )
    tables.wait_audit(pk, count=2, timeout_s=60)
    url = f"http://127.0.0.1:{tables.env['DQHASH_WEB_PORT']}/"
    rows = "[...document.querySelectorAll('#tables tr')].map(tr => tr.textContent)"
    problems = "[...document.querySelectorAll('#mismatches tr td:nth-child(2)')].map(td => td.textContent)"

    async def look() -> dict:
        async with Browser(executable, tmp_path / "profile") as page:
            await page.navigate(url)
            listed = await page.wait_for(
                f"{rows}.some(r => r.startsWith('shop.customers')) && {rows}", what="shop.customers in the tables list"
            )
            await page.evaluate(
                "[...document.querySelectorAll('#tables a')].find(a => a.textContent === 'shop.customers').click()"
            )
            scope = await page.wait_for(
                "document.getElementById('table-scope').textContent.includes('shop.customers') && "
                f"{problems}.length > 0 && {problems}.every(t => t === 'shop.customers') && "
                "document.getElementById('table-scope').textContent",
                what="the problems of shop.customers only",
            )
            return {"listed": listed, "scope": scope, "problems": await page.evaluate(problems)}

    seen = asyncio.run(look())
    assert seen["scope"] == "showing table shop.customers" and set(seen["problems"]) == {"shop.customers"}
    assert any(r.startswith("shop.ordersactive") for r in seen["listed"]), seen["listed"]


def tables_view(pipeline, path):
    """A view's JSON from the worker (its web token: the pipeline's workers are started with none)."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{pipeline.env['DQHASH_WEB_PORT']}{path}", timeout=10) as answer:
        return orjson.loads(answer.read())


def wait_view(pipeline, path, pick, ready, timeout_s=30.0):
    """``pick`` of a view's answer once ``ready`` holds for it (the views follow topics: a fetch behind), bounded."""
    deadline = time.monotonic() + timeout_s
    while True:
        picked = pick(tables_view(pipeline, path))
        if ready(picked):
            return picked
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} never showed what was waited for within {timeout_s:.0f}s: {picked}")
        pipeline.check_alive(0)
        time.sleep(0.3)  # another process's view: there is no event to await


def test_the_memory_view_names_rocksdbs_parts_under_its_one_bound(tables):
    """``/dq/memory``: the parts ``dqhash bench`` prints, from a running worker: RocksDB's under one bound."""
    body = tables_view(tables, "/dq/memory")
    assert body["rocksdb_bound"] == tables.settings.rocksdb_memory_mb * 1024 * 1024, body
    assert body["rocksdb_instances"] >= 1 and 0 <= body["rocksdb_block_cache"] <= body["rocksdb_bound"], body
    assert body["rss_peak"] >= body["rss"] > body["malloc_in_use"] > 0, body
