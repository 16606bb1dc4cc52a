"""Many tables in one reconciler: the same PK value in two tables is two pairs, counted per table."""

import itertools

import orjson
import pytest

from dqhash.core.partitioning import partition_for
from dqhash.core.table_keys import SEPARATOR
from dqhash.engine.reconciler import Reconciler
from dqhash.ops.dogstatsd import Metrics
from dqhash.settings import load
from tests.unit.engine.test_reconciler import N, scan

T0 = 1_714_564_800_000
H1, H2 = "11" * 32, "22" * 32
OFFSETS = itertools.count()
CATALOG = """
default = "shop.orders"
[[table]]
name = "shop.orders"
cloud = "ks.orders"
[[table]]
match = "shop.*"
cloud = "ks.{table}"
"""
#: a table that suspends at its first problem in a partition: a cap of 4 over 4 partitions
FLAKY = "[[table]]\nname = 'shop.flaky'\ncloud = 'ks.flaky'\nfailure_cap = 4\n"


def reconciler_for(tmp_path, catalog=CATALOG, **env):
    """A reconciler on a dict table, with ``catalog`` and ``env`` over 1-minute windows: (it, its clock, its table)."""
    path = tmp_path / "catalog.toml"
    path.write_text(catalog)
    variables = {"DQHASH_PARTITIONS": str(N), "DQHASH_WINDOW_SECONDS": "60", "DQHASH_GRACE_SECONDS": "30"}
    settings = load({**variables, "DQHASH_CATALOG": str(path), **env})
    clock = {"now": T0 + 1_000}
    pairs: dict = {}
    reconciler = Reconciler(settings, pairs, Metrics("127.0.0.1", 9, [], enabled=False), scan, lambda: clock["now"])
    return reconciler, clock, pairs


@pytest.fixture
def rig(tmp_path):
    return reconciler_for(tmp_path)


def event(pk, digest, table=None):
    doc = {"event_id": f"e-{table}-{pk}", "hash_onprem": digest, "event_ts": T0 + 1_000, "action": "UPDATE"}
    doc["partitionColumns"] = [{"type": "PK", "value": pk}]
    return orjson.dumps(doc | ({"table": table} if table else {}))


def cloud(pk, digest, table=None):
    return orjson.dumps({"pk": pk, "hash_cloud": digest, "cloud_ts": T0 + 2_000} | ({"table": table} if table else {}))


def feed(r, side, key, value):
    """A record as its producer keys it: by its pair key, into the pair key's partition."""
    topic = "topic1" if side == "onprem" else "topic2"
    return r.on_input(side, topic, partition_for(key, N), next(OFFSETS), key.encode(), value, [])


def audits(outs, topic="dq-audit"):
    return [orjson.loads(o.value) for o in outs if o.topic == topic]


def test_the_same_pk_in_two_tables_is_never_paired_across_them(rig):
    r, clock, pairs = rig
    items = f"shop.items{SEPARATOR}42"
    assert feed(r, "onprem", "42", event("42", H1)) == []  # shop.orders, the default table
    assert feed(r, "onprem", items, event("42", H2, "shop.items")) == []
    # the cloud's shop.items row hashed like shop.orders' row: no MATCH, since it is not that row's pair
    assert audits(feed(r, "cloud", items, cloud("42", H1, "shop.items"))) == []
    outs = feed(r, "cloud", "42", cloud("42", H1, "shop.orders"))
    [orders] = audits(outs)
    assert orders["status"] == "MATCH" and orders["table"] == "shop.orders" and orders["pk"] == "42"
    assert outs[-1].key == b"42"
    outs = feed(r, "cloud", items, cloud("42", H2, "shop.items"))
    [matched] = audits(outs)
    assert matched["status"] == "MATCH" and matched["table"] == "shop.items" and matched["pk"] == "42"
    assert matched["audit_id"] != orders["audit_id"] and outs[-1].key == items.encode()
    assert {b"42", items.encode()} <= set(pairs)


def test_a_problem_names_its_table_in_the_audit_and_the_repair_record(rig):
    r, clock, _ = rig
    items = f"shop.items{SEPARATOR}5"
    feed(r, "onprem", items, event("5", H1, "shop.items"))
    clock["now"] = T0 + 200_000
    outs = r.on_tick(partition_for(items, N), 1)
    [audit] = audits(outs)
    [repair] = audits(outs, "dq-repair")
    assert audit["status"] == "MISSING_CLOUD" and audit["table"] == repair["table"] == "shop.items"
    assert repair["pk"] == "5" and repair["repair"] == "resync"


def test_windows_are_counted_per_table_and_published_with_each_tables_counts(rig):
    r, clock, _ = rig
    items = f"shop.items{SEPARATOR}7"
    feed(r, "onprem", "7", event("7", H1))
    feed(r, "cloud", "7", cloud("7", H1))
    feed(r, "onprem", items, event("7", H1, "shop.items"))
    feed(r, "cloud", items, cloud("7", H2, "shop.items"))
    clock["now"] = T0 + 200_000
    published = []
    for partition in {partition_for("7", N), partition_for(items, N)}:
        published += [orjson.loads(o.value) for o in r.on_tick(partition, partition) if o.topic == "dq-metrics"]
    tables: dict = {}
    for record in published:
        for table, own in record["tables"].items():
            tables.setdefault(table, {}).update(own["counts"])
    assert tables == {"shop.orders": {"MATCH": 1}, "shop.items": {"MISMATCH": 1}}
    assert sum(record["counts"].get("MATCH", 0) + record["counts"].get("MISMATCH", 0) for record in published) == 2


def test_a_record_of_a_table_not_in_the_catalog_is_dead_lettered_with_its_reason(rig):
    r, *_ = rig
    [out] = feed(r, "onprem", "9", event("9", H1, "billing.invoices"))
    headers = dict(out.headers)
    assert out.topic == "dq-dlq" and headers["dq.error.reason"] == b"UNKNOWN_TABLE"
    assert b"billing.invoices" in headers["dq.error.message"] and headers["dq.table"] == b"billing.invoices"
    [bad] = feed(
        r, "onprem", "9", orjson.dumps({"table": "shop.items", "event_id": "x"})
    )  # its table, read to label it
    assert dict(bad.headers)["dq.table"] == b"shop.items" and dict(bad.headers)["dq.error.reason"] == b"MISSING_PK"
    [broken] = feed(r, "onprem", "9", b'{"table": "shop.items", ')
    assert "dq.table" not in dict(broken.headers)


def test_a_table_at_its_failure_cap_is_suspended_counted_and_resumes_when_its_problems_age_out(tmp_path, caplog):
    r, clock, pairs = reconciler_for(tmp_path, CATALOG + FLAKY, DQHASH_RETENTION_SECONDS="600")
    # four keys of one partition: a share of the cap is 4 / 4 partitions = 1 problem per partition
    keys = [k for k in (f"shop.flaky{SEPARATOR}{n}" for n in range(200)) if partition_for(k, N) == 0][:3]
    feed(r, "onprem", keys[0], event(keys[0].split(SEPARATOR)[1], H1, "shop.flaky"))
    clock["now"] = T0 + 200_000
    [missing] = audits(r.on_tick(0, 1))
    assert missing["status"] == "MISSING_CLOUD" and missing["table"] == "shop.flaky"
    with caplog.at_level("WARNING", "dqhash.engine.reconciler"):
        assert feed(r, "onprem", keys[1], event(keys[1].split(SEPARATOR)[1], H1, "shop.flaky")) == []
    assert keys[1].encode() not in pairs  # not held, not compared
    assert "table shop.flaky suspended in partition 0" in caplog.text and "failure_cap" in caplog.text
    assert feed(r, "onprem", "y", event("y", H1)) == [] and b"y" in pairs  # the other tables go on
    clock["now"] = T0 + 400_000
    windows = [orjson.loads(o.value) for o in r.on_tick(0, 2) if o.topic == "dq-metrics"]
    suspended = [
        w["tables"]["shop.flaky"]["counts"].get("SUSPENDED", 0) for w in windows if "shop.flaky" in w["tables"]
    ]
    assert sum(suspended) == 1
    clock["now"] = T0 + 2_000_000  # past retention: the problem aged out, the table resumes
    r.on_tick(0, 3)
    feed(r, "onprem", keys[2], event(keys[2].split(SEPARATOR)[1], H1, "shop.flaky"))
    assert keys[2].encode() in pairs and r.windows.caps.suspended_tables() == {}


def test_re_verification_reads_every_tables_settled_rows_and_skips_a_suspended_table(tmp_path):
    r, clock, _ = reconciler_for(
        tmp_path,
        CATALOG + FLAKY,
        DQHASH_LOOKUPS="true",
        DQHASH_LOOKUP_DELAY_SECONDS="0",
        DQHASH_REVERIFY_ROWS_PER_SECOND="4000",
        DQHASH_REVERIFY_MIN_AGE_SECONDS="1",
    )
    settings = r.settings
    keys = {t: next(k for k in (f"{t}{SEPARATOR}{n}" for n in range(500)) if partition_for(k, N) == 0) for t in
            ("shop.items", "shop.flaky")}  # fmt: skip
    for table, key in keys.items():
        pk = key.split(SEPARATOR)[1]
        feed(r, "onprem", key, event(pk, H1, table))
        assert audits(feed(r, "cloud", key, cloud(pk, H1, table)))[0]["status"] == "MATCH"
    r.windows.caps.problems[0] = __import__("collections").Counter({"shop.flaky": 1})  # at its cap in partition 0
    clock["now"] = T0 + 60_000
    r.on_tick(0, 10)
    clock["now"] = T0 + 62_000
    asked = {o.key.decode() for o in r.on_tick(0, 11) if o.topic == settings.lookup_topic}
    assert asked == {keys["shop.items"]}
