"""The table catalog: parsed once, every problem named by table and field; pair keys keep tables apart."""

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dqhash.core.catalog import CatalogError, parse_catalog, single_table
from dqhash.core.contracts import parse_cloud, parse_onprem, tombstone_event
from dqhash.core.input_records import OnPremEvent, Reason, Rejection
from dqhash.core.table_keys import SEPARATOR, pair_key, split_key, table_prefix
from dqhash.core.tally import by_table, metrics_record, new_window

CATALOG = """
default = "shop.orders"

[defaults]
failure_cap = 1000

[[table]]
name = "shop.orders"
cloud = "shop_ks.orders"
key = ["region", "order_id"]
columns = ["region", "order_id", "amount", "placed"]
types = { amount = "decimal", placed = "timestamp" }
rename = { placed = "placed_at" }
failure_cap = 500

[[table]]
name = "shop.customers"
cloud = "shop_ks.customers"
key = ["id"]
exclude = ["etl_loaded_at"]
hash_strategy = "v1"

[[table]]
match = "shop.*"
cloud = "shop_ks.{table}"
key = ["id"]
"""
T0 = 1_714_564_800_000


def test_a_catalog_declares_tables_with_defaults_patterns_and_a_default_table():
    catalog = parse_catalog(CATALOG)
    orders = catalog.get("shop.orders")
    assert orders.cloud_keyspace == "shop_ks" and orders.cloud_table == "orders"
    assert orders.key == ("region", "order_id") and orders.columns == ("region", "order_id", "amount", "placed")
    assert orders.types == {"amount": "decimal", "placed": "timestamp"} and orders.cloud_names() == {
        "placed_at": "placed"
    }
    assert orders.failure_cap == 500 and catalog.get("shop.customers").failure_cap == 1000  # from [defaults]
    assert catalog.get("shop.customers").hash_strategy == "v1" and catalog.get("shop.customers").exclude == (
        "etl_loaded_at",
    )
    items = catalog.get("shop.items")  # matched by the pattern, its cloud name filled in
    assert items.cloud == "shop_ks.items" and items.key == ("id",) and items.failure_cap == 1000
    assert catalog.get("billing.items") is None and catalog.default == "shop.orders"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[[table]]\nname='a.b'\n", "table 'a.b': missing field cloud"),
        ("[[table]]\nname='a.b'\ncloud='ks.t'\ntypes={x='decimal('}\n", "table 'a.b': types.x = 'decimal('"),
        ("[[table]]\nname='a.b'\ncloud='ks.t'\nfailure_cap=-1\n", "table 'a.b': failure_cap must be"),
        ("[[table]]\nname='a.b'\ncloud='ks.t'\nhash_strategy='v9'\n", "table 'a.b': hash_strategy must be"),
        ("[[table]]\nname='a.b'\ncloud='ks.t'\ncolums=['x']\n", "table 'a.b': unknown field(s) ['colums']"),
        ("[[table]]\nname='a.b'\ncloud='ks.t'\ncolumns=['x']\nexclude=['x']\n", "both hashed (columns) and excluded"),
        ("[[table]]\nname='a.b'\ncloud='ks.t'\nkey=['id','id']\n", "table 'a.b': key names a column twice"),
        ("[[table]]\nname='a.b'\ncloud='kst'\n", "table 'a.b': cloud must be \"keyspace.table\""),
        ("[[table]]\nmatch='a.*'\ncloud='ks.{table}'\ntypes={x=1}\n", "(match = 'a.*'): types must be"),
        ("[[table]]\nname='a b'\ncloud='ks.t'\n", "is not a table name"),
        ("[[table]]\nname='a.b'\ncloud='ks.t'\n[[table]]\nname='a.b'\ncloud='ks.u'\n", "declared twice: ['a.b']"),
        ("default='x.y'\n[[table]]\nname='a.b'\ncloud='ks.t'\n", "default = 'x.y' names no table"),
        ("default='a.b'\n", "no [[table]] entries"),
        ("[[table]\n", "is not valid TOML"),
    ],
)
def test_a_bad_catalog_is_refused_naming_the_table_and_the_field(text, says):
    with pytest.raises(CatalogError) as refused:
        parse_catalog(text, "cat.toml")
    assert says in str(refused.value)


def test_pattern_matches_are_remembered_but_unknown_names_never_grow_without_bound():
    catalog = parse_catalog("[[table]]\nmatch='shop.*'\ncloud='ks.{table}'\n")
    assert catalog.get("shop.a") is catalog.get("shop.a")
    for n in range(10_050):
        catalog.get(f"other.t{n}")
    assert len(catalog._resolved) <= 10_001 and catalog.get("other.t1") is None


def event(**fields):
    doc = {
        "event_id": "e",
        "partitionColumns": [{"type": "PK", "value": "42"}],
        "event_ts": T0,
        "hash_onprem": "a" * 64,
    }
    return orjson.dumps({**doc, **fields})


def cloud(**fields):
    return orjson.dumps({"pk": "42", "hash_cloud": "b" * 64, "cloud_ts": T0, **fields})


def test_records_name_their_table_and_the_same_pk_in_two_tables_is_two_pairs():
    catalog = parse_catalog(CATALOG)
    default = parse_onprem(event(), tables=catalog)
    named_default = parse_onprem(event(table="shop.orders"), tables=catalog)
    customers = parse_onprem(event(table="shop.customers"), tables=catalog)
    matched = parse_cloud(cloud(table="shop.items"), tables=catalog)
    assert default.pk == named_default.pk == "42"  # the default table keeps the bare PK
    assert customers.pk == f"shop.customers{SEPARATOR}42" and matched.pk == f"shop.items{SEPARATOR}42"
    assert customers.hash.version == "v1"  # the table's own strategy reads an unprefixed hash


def test_a_record_of_an_unknown_table_or_without_one_is_rejected_with_its_reason():
    catalog = parse_catalog(CATALOG)
    unknown = parse_onprem(event(table="billing.invoices"), tables=catalog)
    assert isinstance(unknown, Rejection) and unknown.reason is Reason.UNKNOWN_TABLE
    assert "billing.invoices" in unknown.message and "shop.orders" in unknown.message
    bad = parse_cloud(cloud(table=f"a{SEPARATOR}b"), tables=catalog)
    assert isinstance(bad, Rejection) and bad.reason is Reason.INVALID_FIELD_TYPE
    no_default = parse_catalog("[[table]]\nname='a.b'\ncloud='ks.t'\n")
    missing = parse_onprem(event(), tables=no_default)
    assert isinstance(missing, Rejection) and missing.reason is Reason.MISSING_FIELD and "table" in missing.message


def test_a_single_table_deployment_reads_records_exactly_as_before():
    catalog = single_table("default")
    assert parse_onprem(event(), tables=catalog) == parse_onprem(event())
    assert parse_onprem(event(table="default"), tables=catalog).pk == "42"


def test_a_tombstone_keyed_by_a_pair_key_deletes_the_row_of_its_table():
    value = tombstone_event(f"shop.items{SEPARATOR}42".encode(), 3, 9, T0)
    parsed = parse_onprem(value, tables=parse_catalog(CATALOG))
    assert isinstance(parsed, OnPremEvent) and parsed.pk == f"shop.items{SEPARATOR}42" and parsed.action == "DELETE"


names = st.from_regex(r"[a-z][a-z0-9_]{0,8}\.[a-z][a-z0-9_]{0,8}", fullmatch=True)
pks = st.text(st.characters(min_codepoint=0x20, blacklist_categories=("Cs",)), min_size=1, max_size=20)


@given(names, names, pks, pks)
def test_pair_keys_invert_and_never_join_two_tables(table_a, table_b, pk_a, pk_b):
    key = pair_key(table_a, pk_a, "default")
    assert split_key(key, "default") == (table_a, pk_a)
    assert table_prefix(key) == table_a + SEPARATOR
    assert (key == pair_key(table_b, pk_b, "default")) == (table_a == table_b and pk_a == pk_b)
    assert pair_key("default", pk_a, "default") == pk_a and split_key(pk_a, "default") == ("default", pk_a)


def test_window_counts_are_kept_per_table_and_published_as_totals_and_tables():
    window = new_window()
    window["counts"] = {"MATCH": 3, f"shop.items{SEPARATOR}MATCH": 1, f"shop.items{SEPARATOR}MISMATCH": 1}
    totals, tables = by_table(window["counts"], "shop.orders")
    assert totals == {"MATCH": 4, "MISMATCH": 1}
    assert tables == {"shop.orders": {"MATCH": 3}, "shop.items": {"MATCH": 1, "MISMATCH": 1}}
    record = metrics_record(window, 2, T0, 60_000, T0, "shop.orders")
    assert record["counts"] == totals and record["compared"] == 5 and record["match_rate"] == 0.8
    assert record["tables"]["shop.items"] == {"counts": {"MATCH": 1, "MISMATCH": 1}, "compared": 2, "match_rate": 0.5}
