"""``dqhash catalog discover``: a keyspace's schema as a catalog a worker reads back."""

from types import SimpleNamespace

import pytest

from dqhash import cli
from dqhash.cloud.discover import DiscoveryError, discover
from dqhash.core.catalog import parse_catalog, render_catalog


def column(name, cql):
    return SimpleNamespace(name=name, cql_type=cql)


def table(columns, key):
    found = {name: column(name, cql) for name, cql in columns.items()}
    return SimpleNamespace(columns=found, primary_key=[found[k] for k in key])


METADATA = SimpleNamespace(
    keyspaces={
        "shop_ks": SimpleNamespace(
            tables={
                "orders": table(
                    {"region": "text", "order_id": "bigint", "placed": "timestamp", "lines": "frozen<list<text>>"},
                    ["region", "order_id"],
                ),
                "customers": table({"id": "uuid", "addr": "frozen<address>", "name": "text"}, ["id"]),
            }
        )
    }
)


def test_a_keyspace_becomes_a_catalog_that_reads_back_with_keys_in_order_and_types():
    specs, notes = discover(METADATA, "shop_ks", "shop")
    catalog = parse_catalog(render_catalog(specs, notes, "Cassandra keyspace shop_ks"))
    orders = catalog.get("shop.orders")
    assert orders.cloud == "shop_ks.orders" and orders.key == ("region", "order_id")
    assert orders.columns == ("region", "order_id", "placed", "lines")
    assert orders.types == {
        "region": "text",
        "order_id": "bigint",
        "placed": "timestamp",
        "lines": "frozen<list<text>>",
    }
    customers = catalog.get("shop.customers")
    assert customers.key == ("id",) and "addr" not in customers.types  # a UDT: no encoding in the spec
    assert notes == ["shop_ks.customers.addr: type frozen<address> has no encoding in the spec; declare it"]


def test_an_unknown_or_empty_keyspace_says_what_is_there():
    with pytest.raises(DiscoveryError, match="no keyspace 'nope'.*shop_ks"):
        discover(METADATA, "nope")
    with pytest.raises(DiscoveryError, match="has no tables"):
        discover(SimpleNamespace(keyspaces={"e": SimpleNamespace(tables={})}), "e")


def test_catalog_check_lists_the_tables_and_refuses_a_bad_file(tmp_path, capsys):
    good = tmp_path / "good.toml"
    good.write_text(render_catalog(discover(METADATA, "shop_ks", "shop")[0]))
    assert cli.main(["catalog", "check", str(good)]) == 0
    out = capsys.readouterr().out
    assert "shop.orders" in out and "key (region, order_id)" in out and "default table: (none" in out
    bad = tmp_path / "bad.toml"
    bad.write_text("[[table]]\nname = 'a.b'\n")
    assert cli.main(["catalog", "check", str(bad)]) != 0
    assert "table 'a.b': missing field cloud" in capsys.readouterr().err


def test_catalog_discover_reads_the_clusters_schema_through_the_driver(tmp_path, monkeypatch, capsys):
    from dqhash.cloud import factory
    from tests.cassandra_double import FakeSession

    session = FakeSession("shop_ks", "orders", {"id": "bigint", "amount": "decimal"}, ["id"])
    monkeypatch.setattr(factory, "cassandra_session", lambda settings: session)
    out = tmp_path / "catalog.toml"
    assert cli.main(["catalog", "discover", "shop_ks", "--onprem-schema", "shop", "-o", str(out)]) == 0
    spec = parse_catalog(out.read_text()).get("shop.orders")
    assert (
        spec.cloud == "shop_ks.orders" and spec.key == ("id",) and spec.types == {"id": "bigint", "amount": "decimal"}
    )
    assert "1 table(s) written" in capsys.readouterr().err
    assert cli.main(["catalog", "discover", "other_ks"]) != 0
    assert "no keyspace 'other_ks'" in capsys.readouterr().err
