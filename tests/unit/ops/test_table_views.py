"""The tables views' logic: each table's row from the group's windows and problems, one table's windows."""

import pytest

from dqhash.core.catalog import parse_catalog
from dqhash.core.table_keys import SEPARATOR
from dqhash.ops.inspection import BadRequest, pair_key_of, window_rows
from dqhash.ops.table_views import spec_view, table_rows
from dqhash.ops.triage import TriageBook

CATALOG = parse_catalog(
    "default = 'shop.orders'\n"
    "[[table]]\nname = 'shop.orders'\ncloud = 'ks.orders'\nkey = ['id']\nfailure_cap = 10\n"
    "[[table]]\nname = 'shop.empty'\ncloud = 'ks.empty'\n"
    "[[table]]\nmatch = 'shop.*'\ncloud = 'ks.{table}'\n"
)
T0 = 1_714_564_800_000
S = SEPARATOR


def window(counts):
    return {"counts": counts, "closed": True}


WINDOWS = [
    (T0, window({"MATCH": 9, "MISMATCH": 1, f"shop.items{S}MATCH": 1, f"shop.items{S}MISSING_CLOUD": 1})),
    (T0, window({"MATCH": 10})),  # the same window, another partition
    (T0 + 60_000, window({f"shop.items{S}LATE_MISMATCH": 1, f"shop.items{S}DUPLICATES": 2})),
]


def test_each_table_gets_its_counts_match_rate_problems_and_newest_window_worst_first():
    problems = [
        {"audit_id": "a", "pk": "1", "table": "shop.items", "classified_at": "x"},
        {"audit_id": "b", "pk": "2", "table": "shop.items", "classified_at": "x"},
        {"audit_id": "c", "pk": "1", "table": "shop.orders", "classified_at": "x"},
    ]
    book = TriageBook()
    book.records["b"] = {"state": "acknowledged", "at": "y"}
    rows = table_rows(WINDOWS, book.annotate(problems), CATALOG, 60_000, {"shop.items": [0, 3]})
    assert [row["table"] for row in rows] == ["shop.items", "shop.orders", "shop.empty"]
    items, orders, empty = rows
    assert items["counts"] == {"MATCH": 1, "MISSING_CLOUD": 1, "LATE_MISMATCH": 1, "DUPLICATES": 2}
    assert items["match_rate"] == 0.5 and items["problems"] == 2 and items["open_problems"] == 1
    assert items["declared"] is False and items["last_window_end"] == "2024-05-01T12:02:00.000Z"
    assert items["state"] == "suspended" and items["suspended_partitions"] == [0, 3] and orders["state"] == "active"
    assert orders["compared"] == 20 and orders["match_rate"] == 0.95 and orders["open_problems"] == 1
    assert empty["compared"] == 0 and empty["match_rate"] is None and empty["last_window_end"] is None


def test_the_windows_of_one_table_and_of_all():
    [newest, oldest] = window_rows(WINDOWS, 60_000, "shop.orders", "shop.items")
    assert oldest["counts"] == {"MATCH": 1, "MISSING_CLOUD": 1} and oldest["partitions"] == 2
    assert newest["counts"] == {"LATE_MISMATCH": 1, "DUPLICATES": 2}
    [_, everything] = window_rows(WINDOWS, 60_000, "shop.orders")
    assert everything["counts"] == {"MATCH": 20, "MISMATCH": 1, "MISSING_CLOUD": 1} and everything["compared"] == 22


def test_a_resolved_problem_reopens_only_for_a_newer_problem_of_the_same_table_and_pk():
    book = TriageBook()
    book.records["old"] = {"state": "resolved", "at": "2024-05-01T12:00:00Z"}
    problems = [
        {"audit_id": "old", "pk": "1", "table": "shop.items", "classified_at": "2024-05-01T11:00:00Z"},
        {"audit_id": "new", "pk": "1", "table": "shop.orders", "classified_at": "2024-05-01T13:00:00Z"},
    ]
    [old, _] = book.annotate(problems)
    assert old["triage"]["state"] == "resolved"  # the same pk in another table is another row
    problems.append({"audit_id": "again", "pk": "1", "table": "shop.items", "classified_at": "2024-05-01T13:00:00Z"})
    assert book.annotate(problems)[0]["triage"] == {"state": "open", "at": "2024-05-01T12:00:00Z", "reopened": True}


def test_a_pair_is_looked_up_by_table_and_pk():
    assert pair_key_of("42", None, CATALOG) == "42" and pair_key_of("42", "shop.orders", CATALOG) == "42"
    assert pair_key_of("42", "shop.items", CATALOG) == f"shop.items{S}42"
    with pytest.raises(BadRequest, match="no table 'billing.x' in the catalog"):
        pair_key_of("42", "billing.x", CATALOG)
    with pytest.raises(BadRequest, match="name the table"):
        pair_key_of("42", None, parse_catalog("[[table]]\nname = 'a.b'\ncloud = 'ks.b'\n"))
    assert spec_view(CATALOG.get("shop.orders"))["failure_cap"] == 10 and spec_view(None) is None
