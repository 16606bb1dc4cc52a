"""The demo's extra tables: each event names its table and is keyed by its pair key, hashed by its own rules."""

import orjson

from dqhash.core.catalog import parse_catalog
from dqhash.core.contracts import parse_onprem
from dqhash.core.hashing import RowHasher
from dqhash.core.table_keys import SEPARATOR
from dqhash.tools.table_workload import CATALOG, build, catalog_specs

T0 = 1_714_564_800_000


def test_each_extra_table_has_its_expected_outcomes_and_shares_pk_values_with_the_first():
    pks = [f"p{i}" for i in range(40)]
    orders, accounts = build(pks, T0)
    catalog = parse_catalog(CATALOG)
    assert sum(orders.expected.values()) == len(orders.onprem) == 40 and orders.expected["MISSING_CLOUD"] == 4
    assert len(accounts.cloud_rows) == 40 - accounts.expected["MISSING_CLOUD"]
    for key, value in orders.onprem + accounts.onprem:
        event = parse_onprem(value, tables=catalog)
        assert event.pk == key.decode() and SEPARATOR in event.pk  # keyed by its pair key, in its partition
    assert {orjson.loads(v)["partitionColumns"][0]["value"] for _, v in accounts.onprem} == set(pks)


def test_a_matching_cloud_row_hashes_like_its_on_prem_event_under_the_on_prem_names():
    from dqhash.cloud.tables import OnPremNames

    specs = catalog_specs()
    [orders, accounts] = build([f"p{i}" for i in range(20)], T0)
    for work in (orders, accounts):
        spec = specs[work.spec.name]
        hasher = RowHasher(spec.hash_strategy, spec.columns, spec.types)
        cloud_hashes = {hasher.hash(OnPremNames(spec).as_onprem(row)).digest for row in work.cloud_rows}
        onprem_hashes = [orjson.loads(v)["hash_onprem"] for _, v in work.onprem]
        assert sum(h in cloud_hashes for h in onprem_hashes) == work.expected["MATCH"]


def test_each_debezium_change_reads_back_as_the_topic1_record_the_table_would_have():
    """The demo sends Debezium change events; the reader must turn each into the same hash and key as the
    Topic-1 record built directly from the row, decimals and microsecond timestamps included."""
    from dqhash.agents.debezium import DebeziumReader
    from dqhash.settings import load
    from dqhash.tools.table_workload import change_topic

    [orders, accounts] = build([f"p{i}" for i in range(30)], T0)
    reader = DebeziumReader(load({}), {})
    reader.catalog = parse_catalog(CATALOG)
    for work in (orders, accounts):
        assert len(work.changes) == len(work.onprem)
        for (key, value), (pair, direct) in zip(work.changes, work.onprem):
            [out] = reader.read(change_topic(work.spec.name), 0, 1, key, value, None)
            record, expected = orjson.loads(out.value), orjson.loads(direct)
            assert out.key == pair
            assert (record["table"], record["hash_onprem"]) == (expected["table"], expected["hash_onprem"])
            assert record["column_digests"] == expected["column_digests"] and record["event_ts"] == T0


def test_a_timed_out_demo_names_the_verdicts_it_was_still_waiting_for_and_those_that_came_instead():
    from collections import Counter

    from dqhash.tools import workload as stream_workload
    from dqhash.tools.demo_report import stream_differences
    from dqhash.tools.runner import Outputs
    from dqhash.tools.table_workload import DEFAULT_TABLE

    first = stream_workload.build(40, T0)
    expected = Counter(first.expected_audit)
    orders, accounts = build([f"p{i}" for i in range(40)], T0)
    out = Outputs()
    for (status, late), n in expected.items():
        out.audit_records += [{"table": DEFAULT_TABLE, "status": status, "late": late}] * n
    for work in (orders, accounts):
        for status, n in work.expected.items():
            out.audit_records += [{"table": work.spec.name, "status": status}] * n
    stream_workload.add_snapshot_scenarios(first, 2, 3)  # the snapshot phase's verdicts are not the stream's
    assert stream_differences(expected, [orders, accounts], out) == []
    out.audit_records.remove({"table": orders.spec.name, "status": "MISSING_CLOUD"})
    out.audit_records.remove({"table": DEFAULT_TABLE, "status": "MISSING_CLOUD", "late": False})
    out.audit_records.append({"table": DEFAULT_TABLE, "status": "MATCH", "late": False})
    missing, matches = expected["MISSING_CLOUD", False], expected["MATCH", False]
    assert stream_differences(expected, [orders, accounts], out) == [
        f"{DEFAULT_TABLE} MATCH: {matches + 1} of {matches}",
        f"{DEFAULT_TABLE} MISSING_CLOUD: {missing - 1} of {missing}",
        f"{orders.spec.name} MISSING_CLOUD: 3 of 4",
    ]


def test_the_demo_sends_a_late_row_only_once_its_own_table_declared_it_missing():
    """The extra tables reuse the first table's pk values: shop.accounts declaring pk X missing must not make the demo
    insert the first table's late row X before its own deadline (it was then MATCH on time, not MISSING_CLOUD and
    LATE MATCH: 1 and 4 verdicts short in two demo runs)."""
    import orjson

    from dqhash.tools.runner import Outputs
    from dqhash.tools.table_workload import DEFAULT_TABLE

    out = Outputs()
    record = {"audit_id": "a1", "status": "MISSING_CLOUD", "late": False, "pk": "p7", "table": "shop.accounts"}
    out.add("audit", b"p7", orjson.dumps(record), [])
    assert ("shop.accounts", "p7") in out.missing_cloud_pks and (DEFAULT_TABLE, "p7") not in out.missing_cloud_pks
    out.add("audit", b"p7", orjson.dumps({**record, "audit_id": "a2", "table": DEFAULT_TABLE}), [])
    assert (DEFAULT_TABLE, "p7") in out.missing_cloud_pks
