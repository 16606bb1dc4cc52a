"""Repair through the pipeline: open repair requests → Debezium incremental-snapshot signals, exactly as sent."""

import orjson
import pytest

from dqhash.core.catalog import parse_catalog
from dqhash.core.signals import SignalError, key_filter, open_requests, signal_records

CATALOG = parse_catalog(
    """
default = "inventory.customers"
[[table]]
name = "inventory.customers"
cloud = "ks.customers"
key = ["id"]
types = { id = "bigint" }
[[table]]
name = "inventory.orders"
cloud = "ks.orders"
key = ["region", "order id"]
types = { "order id" = "int" }
[[table]]
name = "inventory.notes"
cloud = "ks.notes"
key = ["code"]
"""
)


def repair(audit_id, pk, table="inventory.customers", action="resync", withdraws=None):
    return {"audit_id": audit_id, "pk": pk, "table": table, "repair": action, "withdraws": withdraws}


def test_open_requests_drop_withdrawn_ones_and_ask_each_key_once():
    records = [
        repair("a1", "1"),
        repair("a2", "2"),
        repair("a3", "1"),  # the same key asked again
        repair("c1", "2", action="cancel", withdraws="a2"),  # a newer on-prem event explained it
        repair("a4", "9", action="delete"),
        repair("a5", '["eu","42"]', table="inventory.orders"),
    ]
    assert open_requests(records) == {
        "inventory.customers": {"resync": ["1"], "delete": ["9"]},
        "inventory.orders": {"resync": ['["eu","42"]']},
    }


def test_filters_select_the_keys_by_the_catalogs_key_columns_and_types():
    assert key_filter(CATALOG.get("inventory.customers"), ["1", "22"]) == '"id" IN (1, 22)'
    assert key_filter(CATALOG.get("inventory.notes"), ["a", "o'k"]) == "\"code\" IN ('a', 'o''k')"
    orders = key_filter(CATALOG.get("inventory.orders"), ['["eu","42"]', '["us","7"]'])
    assert orders == '("region" = \'eu\' AND "order id" = 42) OR ("region" = \'us\' AND "order id" = 7)'
    with pytest.raises(SignalError, match="is not an integer"):
        key_filter(CATALOG.get("inventory.customers"), ["1; DROP TABLE x"])
    with pytest.raises(SignalError, match="does not have its 2 key columns"):
        key_filter(CATALOG.get("inventory.orders"), ["42"])


def test_signals_are_execute_snapshot_records_keyed_by_the_topic_prefix_batched_per_table():
    requests = {
        "inventory.customers": {"resync": [str(n) for n in range(5)], "delete": ["9"]},
        "billing.unknown": {"resync": ["1"]},
    }
    records, notes = signal_records("dbserver1", CATALOG, requests, per_signal=2)
    assert len(records) == 3 and all(key == b"dbserver1" for key, _ in records)
    first = orjson.loads(records[0][1])
    assert first == {
        "type": "execute-snapshot",
        "data": {
            "data-collections": ["inventory.customers"],
            "type": "incremental",
            "additional-conditions": [{"data-collection": "inventory.customers", "filter": '"id" IN (0, 1)'}],
        },
    }
    assert orjson.loads(records[2][1])["data"]["additional-conditions"][0]["filter"] == '"id" IN (4)'
    assert any("1 row(s) the cloud holds and the source does not" in n for n in notes)
    assert any("'billing.unknown' is not in the catalog" in n for n in notes)


def test_the_command_prints_what_it_would_send(monkeypatch, capsys, tmp_path):
    from dqhash import cli
    from dqhash.kafka import topic_reader
    from dqhash.kafka.topic_reader import TopicRead, TopicRecord

    catalog = tmp_path / "catalog.toml"
    catalog.write_text(
        '[[table]]\nname = "inventory.customers"\ncloud = "ks.c"\nkey = ["id"]\ntypes = { id = "int" }\n'
    )
    records = [TopicRecord(0, n, 0, None, orjson.dumps(repair(f"a{n}", str(n)))) for n in range(3)]

    async def read_records(settings, topic, since_ms=None, timeout_s=30.0):
        assert topic == settings.repair_topic
        return TopicRead(records, [0])

    monkeypatch.setattr(topic_reader, "read_records", read_records)
    monkeypatch.setenv("DQHASH_CATALOG", str(catalog))
    status = cli.main(["repair", "signal", "--signal-topic", "sig", "--topic-prefix", "dbserver1", "--dry-run"])
    out = capsys.readouterr()
    assert status == 0 and "would send 1 signal(s) for 3 key(s) to sig" in out.err
    assert orjson.loads(out.out)["data"]["additional-conditions"][0]["filter"] == '"id" IN (0, 1, 2)'
