"""The report of a snapshot run of several tables: one line per table, the run as far as its least advanced."""

from dqhash.core.catalog_runs import catalog_report, render_catalog_report, table_runs

NOW = 1_764_676_800_000


def side(run, side_name, table, state="done", rows=3):
    return {"type": "side", "side": side_name, "snapshot_id": run, "state": state, "rows": rows, "table": table,
            "started_at": "2025-12-02T12:00:00.000Z", "updated_at": "2025-12-02T12:00:01.000Z"}  # fmt: skip


def partition(run, counts):
    """A partition's reconciliation record, as the reconciler publishes it (``core.snapshots``)."""
    return {
        "type": "reconcile",
        "snapshot_id": run,
        "partition": 0,
        "judged": True,
        "complete": True,
        "counts": counts,
        "onprem": {"rows": 3, "expected": 3},
        "cloud": {"rows": 3, "expected": 3},
        "ranges": {"1": counts},
        "emitted_at": "2025-12-02T12:00:02.000Z",
    }


def test_a_catalog_run_lists_each_table_and_is_complete_only_when_every_table_is():
    records = [
        side("n:shop.a", "onprem", "shop.a"),
        side("n:shop.a", "cloud", "shop.a"),
        partition("n:shop.a", {"MATCH": 3}),
        side("n:shop.b", "onprem", "shop.b"),
        side("n:shop.b", "cloud", "shop.b", state="running"),
        side("other", "onprem", None),
    ]
    assert table_runs(records, "n") == ["n:shop.a", "n:shop.b"]
    report = catalog_report(records, "n", 1, NOW)
    assert [row["table"] for row in report["tables"]] == ["shop.b", "shop.a"]  # the least advanced first
    assert report["state"] == report["tables"][0]["state"] != "complete"
    assert "snapshot n:" in render_catalog_report(report) and "shop.a" in render_catalog_report(report)
