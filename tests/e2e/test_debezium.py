"""Straight from Debezium, on both brokers: change events on a connector's topic become verdicts of their catalog
table, through the same Topic-1 contract; what cannot be verified exactly is dead-lettered with its reason."""

import asyncio
import uuid

import orjson
import pytest

from dqhash.core.catalog import parse_catalog
from dqhash.core.debezium_types import UNAVAILABLE
from dqhash.core.hashing import RowHasher
from dqhash.core.table_keys import pair_key
from dqhash.core.timeutil import now_ms
from tests.e2e.conftest import running_pipeline
from tests.e2e.test_snapshots import wait_report
from tests.registry_double import RegistryDouble, avro
from tests.unit.core.test_debezium import ENVELOPE_SCHEMA, after
from tests.unit.kafka.test_debezium_avro import ENVELOPE, KEY, ROW, SOURCE_ROW

pytestmark = pytest.mark.e2e

CATALOG = """
[[table]]
name = "inventory.customers"
cloud = "ks.customers"
key = ["id"]
columns = ["id", "name", "amount", "updated_at", "born", "photo"]
types = { id = "int", amount = "decimal", updated_at = "timestamp", born = "date", photo = "blob" }
"""
TOPIC = "dbserver1.inventory.customers"
TRANSACTIONS = "dbserver1.transaction"
SPEC = parse_catalog(CATALOG).get("inventory.customers")
HASHER = RowHasher("v2", SPEC.columns, SPEC.types)


@pytest.fixture(scope="module")
def dbz(tmp_path_factory, broker):
    workdir = tmp_path_factory.mktemp(f"debezium-{broker}")
    catalog = workdir / "catalog.toml"
    catalog.write_text(CATALOG)
    registry = RegistryDouble().start()  # for the connector's Avro topics
    registry.register_avro(1, ENVELOPE)
    registry.register_avro(2, KEY)
    try:
        with running_pipeline(
            workdir, "dbz", broker=broker, extra_topics=(TOPIC, TRANSACTIONS), DQHASH_CATALOG=catalog,
            DQHASH_DEBEZIUM_TOPICS=r"dbserver1\..*", DQHASH_SCHEMA_REGISTRY_URL=registry.url,
        ) as running:  # fmt: skip
            yield running
    finally:
        registry.stop()


def change(pk, op="c", lsn=None, ts=None, snapshot=None, **row):
    key = orjson.dumps(
        {"schema": {"type": "struct", "fields": [{"field": "id", "type": "int32"}]}, "payload": {"id": pk}}
    )
    source = {"connector": "postgresql", "db": "shop", "schema": "inventory", "table": "customers",
              "lsn": lsn or uuid.uuid4().int % 10**12, "ts_ms": ts or now_ms()}  # fmt: skip
    if snapshot is not None:
        source["snapshot"] = snapshot
    image = after(id=pk, **row)
    payload = {"before": image if op == "d" else None, "after": None if op == "d" else image, "source": source,
               "op": op, "ts_ms": now_ms()}  # fmt: skip
    return key, orjson.dumps({"schema": ENVELOPE_SCHEMA, "payload": payload})


def cloud_hash(pk, name="Ada"):
    row = {"id": pk, "name": name, "amount": "12.5", "updated_at": "2024-05-01T12:00:00.123Z", "born": "2022-01-08",
           "photo": b"\x00\xff"}  # fmt: skip
    digest, digests = HASHER.hash_and_digests(row)
    doc = {"table": "inventory.customers", "pk": pk, "hash_cloud": digest.digest, "cloud_ts": now_ms() + 1,
           "column_digests": digests}  # fmt: skip
    return pair_key("inventory.customers", str(pk), "").encode(), orjson.dumps(doc)


def test_debezium_changes_become_verdicts_of_their_table(dbz):
    base = uuid.uuid4().int % 10**8
    same, differs = base, base + 1
    dbz.run(dbz_send(dbz, [change(same, updated_at=1714564800123456), change(differs, name="Bob",
                                                                             updated_at=1714564800123456)]))  # fmt: skip
    dbz.send_cloud(cloud_hash(same), cloud_hash(differs))
    [matched] = dbz.wait_audit(str(same), timeout_s=60)
    [mismatched] = dbz.wait_audit(str(differs), timeout_s=60)
    assert (matched["table"], matched["status"]) == ("inventory.customers", "MATCH")
    assert mismatched["status"] == "MISMATCH" and mismatched["differing_columns"] == ["name"]


def test_an_avro_change_through_the_schema_registry_becomes_its_verdict(dbz):
    pk = uuid.uuid4().int % 10**8
    value = {"before": None, "after": {**ROW, "id": pk}, "op": "c", "ts_ms": now_ms(), "transaction": None,
             "source": {**SOURCE_ROW, "ts_ms": now_ms(), "lsn": uuid.uuid4().int % 10**12}}  # fmt: skip
    dbz.run(dbz_send(dbz, [(avro(2, KEY, {"id": pk}), avro(1, ENVELOPE, value))]))
    dbz.send_cloud(cloud_hash(pk))
    [audit] = dbz.wait_audit(str(pk), timeout_s=60)
    assert (audit["table"], audit["status"]) == ("inventory.customers", "MATCH")


def test_a_change_made_while_the_snapshot_ran_is_newer_than_the_snapshot_read_no_false_mismatch(dbz):
    """Debezium stamps a snapshot row with the time it was read, later than the snapshot's consistent point: a
    change committed in between is streamed after the row, with an older time, and is still the newer version."""
    pk = uuid.uuid4().int % 10**8
    read_at = now_ms()
    snapshot_row = change(pk, op="r", ts=read_at, name="Ada", updated_at=1714564800123456)
    streamed = change(pk, op="u", ts=read_at - 3_000, name="Bob", updated_at=1714564800123456)
    dbz.run(dbz_send(dbz, [snapshot_row, streamed]))
    dbz.send_cloud(cloud_hash(pk, name="Bob"))  # the cloud applied both, in order: it holds Bob
    audits = dbz.wait_audit(str(pk), count=2, timeout_s=60)
    assert sorted((a["status"], a["action"]) for a in audits) == [("MATCH", "UPDATE"), ("SUPERSEDED", "READ")], audits


def test_the_connectors_snapshot_is_a_run_of_its_table_closed_by_its_marker_and_proved_by_the_cloud_scan(dbz):
    """Debezium's initial snapshot of a table: its r rows form a run, its last_in_data_collection row closes the
    on-prem side, and a cloud scan of the run finds what differs, what is missing, and what only the cloud has."""
    from dqhash.core.debezium_runs import run_of

    base, lsn = uuid.uuid4().int % 10**8, uuid.uuid4().int % 10**12
    pks = [base + i for i in range(5)]
    marks = ["first_in_data_collection", "true", "true", "last_in_data_collection"]
    dbz.run(dbz_send(dbz, [change(pk, op="r", lsn=lsn, snapshot=mark, updated_at=1714564800123456)
                           for pk, mark in zip(pks, marks, strict=False)]))  # fmt: skip
    snapshot_id = f"{run_of(str(lsn))}:inventory.customers"
    cloud = ((pks[0], "Ada"), (pks[1], "Ada"), (pks[2], "Bob"), (pks[4], "Eve"))  # pks[3]: missing
    dbz.run(scan_the_cloud(dbz, snapshot_id, cloud))
    report = wait_report(dbz, snapshot_id)
    assert report["counts"] == {"MATCH": 2, "MISMATCH": 1, "MISSING_CLOUD": 1, "EXTRA_IN_CLOUD": 1}, report
    assert (report["rows"]["onprem"], report["rows"]["onprem_published"]) == (4, 4) and report["problems"] == []
    assert [a["action"] for a in dbz.wait_audit(str(pks[0]), timeout_s=60)] == ["READ"]  # the report can be first


def test_a_truncate_is_proved_by_a_scan_that_finds_only_rows_changed_since(dbz):
    """A TRUNCATE is a run of no rows as of its commit time: a row the cloud still holds is EXTRA_IN_CLOUD (repair:
    delete), and a row created after the truncate is the stream's to judge."""
    from dqhash.core.debezium_runs import run_of

    stale, fresh, lsn = uuid.uuid4().int % 10**8, uuid.uuid4().int % 10**8, uuid.uuid4().int % 10**12
    pending = uuid.uuid4().int % 10**8  # changed just before the truncate: its cloud row is gone before it is read
    key, value = change(stale, lsn=lsn, ts=now_ms())
    doc = orjson.loads(value)
    doc["payload"].update(op="t", before=None, after=None)
    truncated_at = doc["payload"]["source"]["ts_ms"]
    before = change(pending, ts=truncated_at - 500, updated_at=1714564800123456)
    created = change(fresh, ts=truncated_at + 1_000, updated_at=1714564800123456)
    dbz.run(dbz_send(dbz, [before, (None, orjson.dumps(doc)), created]))
    snapshot_id = f"{run_of(str(lsn))}:inventory.customers"
    dbz.run(scan_the_cloud(dbz, snapshot_id, ((stale, "Ada"), (fresh, "Ada"))))
    report = wait_report(dbz, snapshot_id)
    assert report["counts"] == {"EXTRA_IN_CLOUD": 1} and report["rows"]["onprem"] == 0, report
    [extra] = dbz.wait_audit(str(stale), timeout_s=60)  # the report can reach the test before the audit row
    assert (extra["status"], extra.get("snapshot_id")) == ("EXTRA_IN_CLOUD", snapshot_id), extra
    assert [a["status"] for a in dbz.wait_audit(str(fresh), timeout_s=60)] == ["MATCH"]
    gone = dbz.wait_audit(str(pending), count=2, timeout_s=60)  # deleted by the truncate: no false MISSING_CLOUD
    assert sorted(a["status"] for a in gone) == ["SKIPPED_DELETE", "SUPERSEDED"], gone


async def scan_the_cloud(pipeline, snapshot_id, rows):
    """The cloud side of a run, as `dqhash snapshot scan` writes it."""
    from dqhash.tools.snapshot.common import SidePublisher

    side = await SidePublisher(pipeline.settings, "cloud", snapshot_id, pipeline.settings.cloud_topic, {},
                               table="inventory.customers").start()  # fmt: skip
    try:
        for pk, name in rows:
            doc = orjson.loads(cloud_hash(pk, name)[1])
            await side.send(str(pk), {**doc, "snapshot_id": snapshot_id})
        await side.finish(now_ms())
    finally:
        await side.stop()


def test_a_toast_placeholder_is_unverifiable_never_a_mismatch(dbz):
    pk = uuid.uuid4().int % 10**8
    dbz.send_cloud(cloud_hash(pk))  # the cloud's row: its name is not what the change would say
    key, value = change(pk, name=UNAVAILABLE)
    dbz.run(dbz_send(dbz, [(key, value)]))
    [audit] = dbz.wait_audit(str(pk), timeout_s=60)
    assert (audit["table"], audit["status"]) == ("inventory.customers", "UNVERIFIABLE")
    assert "'name'" in audit["reason"] and "TOAST" in audit["reason"] and audit["hash_onprem"] is None


async def dbz_send(pipeline, records, topic=TOPIC):
    from dqhash.kafka.security import connect_args
    from dqhash.tools.runner import produce

    await produce(connect_args(pipeline.settings), topic, records)


def test_the_rows_that_differ_are_signalled_back_to_the_connector(dbz):
    """`dqhash repair signal` reads the repair topic and writes an execute-snapshot signal selecting them."""
    import os
    import subprocess
    import sys

    from dqhash.kafka.topic_reader import read_records
    from tests.e2e.conftest import create_other_topics

    pk = uuid.uuid4().int % 10**8
    dbz.run(dbz_send(dbz, [change(pk, name="Changed", updated_at=1714564800123456)]))
    dbz.send_cloud(cloud_hash(pk))
    [problem] = dbz.wait_audit(str(pk), timeout_s=60)
    assert problem["status"] == "MISMATCH"
    dbz._wait(lambda out: any(r["pk"] == str(pk) for r in out.repairs), 30, lambda out: f"a repair request for {pk}")
    signals = f"dbz-signals-{pk}"
    dbz.run(create_other_topics(dbz.settings, (signals,)))
    env = {**os.environ, **{k: str(v) for k, v in dbz.env.items()}}
    done = subprocess.run(
        [sys.executable, "-m", "dqhash.cli", "repair", "signal", "--signal-topic", signals, "--topic-prefix", "dbserver1"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    sent = [orjson.loads(r.value) for r in dbz.run(read_records(dbz.settings, signals)).records]
    assert [r.key for r in dbz.run(read_records(dbz.settings, signals)).records] == [b"dbserver1"] * len(sent)
    conditions = [c for s in sent for c in s["data"]["additional-conditions"]]
    assert all(
        s["type"] == "execute-snapshot" and s["data"]["data-collections"] == ["inventory.customers"] for s in sent
    )
    assert any(c["data-collection"] == "inventory.customers" and str(pk) in c["filter"] for c in conditions), (
        conditions,
        done.stderr,
    )


def table_row(pipeline):
    import json
    import urllib.request

    url = f"http://127.0.0.1:{pipeline.env['DQHASH_WEB_PORT']}/dq/tables/inventory.customers"
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())["summary"]


def wait_verified(pipeline, expected, timeout_s=60.0):
    """Until the table's verified-through time is ``expected`` (a predicate on it); polls the view (bounded)."""
    import time

    deadline, row = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        pipeline.check_alive()
        try:
            row = table_row(pipeline)
        except OSError:  # the worker rebalancing: its view answers again shortly
            row = None
        if row is not None and expected(row["verified_through"]):
            return row
        pipeline.run(asyncio.sleep(0.3))
    raise AssertionError(f"the table's verified_through never satisfied the test within {timeout_s}s; last: {row}")


@pytest.fixture(scope="module")
def dbz_patient(tmp_path_factory, broker):
    """A pipeline whose changes stay pending for a minute (grace 60 s) unless their cloud hash comes: the test sees
    an unanswered change hold the table's time, whatever the machine's load."""
    workdir = tmp_path_factory.mktemp(f"debezium-patient-{broker}")
    catalog = workdir / "catalog.toml"
    catalog.write_text(CATALOG)
    with running_pipeline(
        workdir, "dbzp", broker=broker, extra_topics=(TOPIC,), DQHASH_CATALOG=catalog,
        DQHASH_DEBEZIUM_TOPICS=r"dbserver1\..*", DQHASH_GRACE_SECONDS=60,
    ) as running:  # fmt: skip
        yield running


def test_verified_through_is_held_by_the_oldest_change_without_a_verdict_then_moves_on(dbz_patient):
    """A change committed ten days ago and still unanswered holds the table's time at its commit time, however many
    newer changes match; once it has its verdict, the time moves on to the progress marks'."""
    from dqhash.core.timeutil import format_ms

    dbz = dbz_patient
    base = uuid.uuid4().int % 10**8
    old, new = base, base + 1
    old_ts = now_ms() - 10 * 86_400_000
    dbz.run(dbz_send(dbz, [change(old, ts=old_ts, updated_at=1714564800123456)]))
    row = wait_verified(dbz, lambda through: through == format_ms(old_ts))
    assert row["unverified_partitions"] == [] and row["verified_age_s"] >= 10 * 86_400 - 60
    dbz.run(dbz_send(dbz, [change(new, updated_at=1714564800123456)]))
    dbz.send_cloud(cloud_hash(new))
    [matched] = dbz.wait_audit(str(new), timeout_s=60)
    assert matched["status"] == "MATCH"
    assert table_row(dbz)["verified_through"] == format_ms(old_ts)  # a newer MATCH does not move it
    breaches = wait_report_breach(dbz, "inventory.customers", "older than 300 s")
    assert not any("no verified-through time" in b for b in breaches), breaches
    dbz.send_cloud(cloud_hash(old))
    [answered] = dbz.wait_audit(str(old), timeout_s=60)
    assert answered["status"] == "MATCH"
    row = wait_verified(dbz, lambda through: through is not None and through > format_ms(now_ms() - 600_000))
    assert row["verified_age_s"] < 600


def wait_report_breach(pipeline, table, words, timeout_s=60.0):
    """Until ``dqhash report --verified-within 5m`` names ``table`` as breaching with ``words``: each partition's
    ``verified`` record reaches the metrics topic within a second of its tick (bounded polling of the CLI)."""
    import time

    deadline, breaches = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        report = cli(pipeline, "report", "--since", "1h", "--verified-within", "5m", "--json")
        assert report.returncode == 3, report.stderr
        breaches = orjson.loads(report.stdout)["breaches"]
        if any(table in b and words in b for b in breaches):
            return breaches
    raise AssertionError(f"dqhash report never named {table} as {words!r} within {timeout_s}s; last: {breaches}")


def cli(pipeline, *args):
    import os
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "dqhash.cli", *args], env={**os.environ, **pipeline.env}, capture_output=True,
        text=True, timeout=120, cwd=pipeline.workdir,
    )  # fmt: skip


def in_transaction(record, tx):
    key, value = record
    doc = orjson.loads(value)
    doc["payload"]["transaction"] = {"id": tx, "total_order": 1, "data_collection_order": 1}
    return key, orjson.dumps(doc)


def transaction_end(tx, count):
    payload = {"status": "END", "id": tx, "ts_ms": now_ms(), "event_count": count,
               "data_collections": [{"data_collection": "inventory.customers", "event_count": count}]}  # fmt: skip
    return orjson.dumps({"id": tx}), orjson.dumps(payload)


def test_a_transaction_whose_changes_did_not_all_arrive_is_reported_for_its_table(dbz):
    """Debezium's END counts three changes of the table; one arrived. Once the table's stream shows a later
    transaction, the shortfall is on the metrics topic and in dqhash report, naming the table and the transaction;
    complete transactions say nothing, and the transaction topic's records are never dead-lettered."""
    base = uuid.uuid4().int % 10**8
    short, whole, later = f"{base}:1", f"{base}:2", f"{base}:3"
    dbz.run(dbz_send(dbz, [in_transaction(change(base, updated_at=1714564800123456), short)]))
    dbz.run(dbz_send(dbz, [transaction_end(short, 3), transaction_end(whole, 1), transaction_end(later, 1)],
                     TRANSACTIONS))  # fmt: skip
    dbz.run(dbz_send(dbz, [in_transaction(change(base + 1, updated_at=1714564800123456), whole),
                           in_transaction(change(base + 2, updated_at=1714564800123456), later)]))  # fmt: skip
    dbz._wait(
        lambda out: any(r["transaction"] == short for r in out.completeness),
        60,
        lambda out: f"a completeness record for transaction {short}; have {out.completeness}",
    )
    [record] = [r for r in dbz.reader.outputs.completeness if r["transaction"] == short]
    assert (record["table"], record["expected"], record["seen"], record["missing"]) == ("inventory.customers", 3, 1, 2)
    assert not any(r["transaction"] == whole for r in dbz.reader.outputs.completeness)  # complete: nothing said
    assert not [h for _, _, h in dbz.reader.outputs.dlq_records if h.get("dq.source.topic") == TRANSACTIONS.encode()]
    assert table_row(dbz)["missing_changes"] >= 2  # the table's row in /dq/tables (and the dashboard) says so
    report = cli(dbz, "report", "--since", "1h", "--json")
    problems = orjson.loads(report.stdout)["problems"]
    assert (
        f"table inventory.customers: transaction {short} committed 3 change(s) to it and 1 reached dqhash (2 missing)"
        in problems
    )


@pytest.fixture(scope="module")
def dbz_quiet(tmp_path_factory, broker):
    """A pipeline that reads the connector's replication slot in a real PostgreSQL (DQHASH_DEBEZIUM_SLOT)."""
    from sqlalchemy import create_engine, text

    from dqhash.source.database import source_url
    from tests.postgres_server import running_postgres

    workdir = tmp_path_factory.mktemp(f"debezium-quiet-{broker}")
    catalog = workdir / "catalog.toml"
    catalog.write_text(CATALOG)
    with running_postgres() as url:
        engine = create_engine(source_url(url))
        with engine.begin() as connection:
            connection.execute(text("SELECT pg_create_logical_replication_slot('dbz', 'pgoutput')"))
            connection.execute(text("CREATE TABLE heartbeat (id integer PRIMARY KEY, at timestamptz)"))
        with running_pipeline(
            workdir, "dbzq", broker=broker, extra_topics=(TOPIC,), DQHASH_CATALOG=catalog,
            DQHASH_DEBEZIUM_TOPICS=r"dbserver1\.inventory\..*", DQHASH_DEBEZIUM_SLOT="dbz", DQHASH_SOURCE_URL=url,
        ) as running:  # fmt: skip
            running.source = engine
            yield running
        engine.dispose()


def test_a_quiet_tables_time_moves_as_the_replication_slot_confirms_what_is_in_kafka(dbz_quiet):
    """The table's last change was an hour ago; its time stays there until the slot confirms a newer position (as
    Debezium does once Kafka has its records, heartbeats keeping it moving), then follows the slot."""
    from sqlalchemy import text

    from dqhash.core.timeutil import format_ms

    dbz = dbz_quiet
    pk, hour_ago = uuid.uuid4().int % 10**8, now_ms() - 3_600_000
    dbz.run(dbz_send(dbz, [change(pk, ts=hour_ago, updated_at=1714564800123456)]))
    dbz.send_cloud(cloud_hash(pk))
    assert [a["status"] for a in dbz.wait_audit(str(pk), timeout_s=60)] == ["MATCH"]
    wait_verified(dbz, lambda through: through == format_ms(hour_ago))  # the slot has confirmed nothing yet
    started = format_ms(now_ms())

    def confirmed_now(through):  # a heartbeat action query, and Debezium confirming it, as each poll goes by
        with dbz.source.begin() as connection:
            connection.execute(
                text("INSERT INTO heartbeat VALUES (1, now()) ON CONFLICT (id) DO UPDATE SET at = now()")
            )
        with dbz.source.begin() as connection:
            connection.execute(text("SELECT pg_replication_slot_advance('dbz', pg_current_wal_lsn())"))
        return through is not None and through >= started

    row = wait_verified(dbz, confirmed_now, timeout_s=90)
    assert row["verified_age_s"] < 60
