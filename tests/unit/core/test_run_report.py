"""dqhash report's logic: counts, rates, columns, dead letters, rechecks, snapshots, problems and gates."""

import orjson
import pytest

from dqhash.core.run_report import Gates, RateError, build, parse_rate, render

NOW = 1_764_676_800_000
SINCE = NOW - 3_600_000


def audit(audit_id, status, late=False, rechecks=0, columns=()):
    return orjson.dumps(
        {"audit_id": audit_id, "status": status, "late": late, "rechecks": rechecks, "differing_columns": list(columns)}
    )


def window(partition, start, revision, **counts):
    return orjson.dumps(
        {"type": "window", "partition": partition, "window_start": start, "revision": revision, "counts": counts}
    )


AUDIT = [
    audit("a1", "MATCH"),
    audit("a1", "MATCH"),  # republished by a new owner: the same verdict, counted once
    audit("a2", "MATCH"),
    audit("a3", "MISMATCH", rechecks=2, columns=["name", "amount"]),
    audit("a4", "MISMATCH", columns=["name"]),
    audit("a5", "MISSING_CLOUD", rechecks=2),
    audit("a6", "MATCH", late=True),
    b"{not json",
]
WINDOWS = [
    window(0, "w1", 1, DLQ_INVALID_JSON=1, DUPLICATES=2),
    window(0, "w1", 2, DLQ_INVALID_JSON=2, DUPLICATES=3),  # a newer revision replaces the first
    window(1, "w1", 1, DLQ_MISSING_PK=1),
]


def test_counts_rates_columns_dead_letters_and_rechecks():
    report = build(AUDIT, WINDOWS, [], 2, SINCE, NOW)
    assert report["counts"] == {"MATCH": 2, "MISMATCH": 2, "MISSING_CLOUD": 1} and report["late"] == {"MATCH": 1}
    assert report["compared"] == 5 and report["match_rate"] == 0.4 and report["mismatch_rate"] == 0.4
    assert report["top_differing_columns"] == [("name", 2), ("amount", 1)]
    assert report["dlq_reasons"] == {"INVALID_JSON": 2, "MISSING_PK": 1} and report["duplicates"] == 3
    assert report["recheck_outcomes"] == {"MISMATCH after 2 recheck(s)": 1, "MISSING_CLOUD after 2 recheck(s)": 1}
    assert report["problems"] == ["1 audit record(s) could not be read"]
    assert report["result"] == "incomplete" and not report["passed"]  # a problem: never a pass under it
    assert "PROBLEM: 1 audit record(s)" in render(report) and render(report).endswith("RESULT: incomplete")


def test_with_no_gate_given_the_result_is_no_gates_set_never_passed():
    report = build(AUDIT[:-1], WINDOWS, [], 2, SINCE, NOW)
    assert report["problems"] == [] and report["result"] == "no gates set" and not report["passed"]
    assert render(report).endswith("RESULT: no gates set")


def test_a_rate_is_a_fraction_or_a_percent_with_its_sign_and_a_bare_number_of_1_or_more_is_refused():
    assert parse_rate("0.01") == 0.01 and parse_rate("1%") == 0.01 and parse_rate("100%") == 1.0
    assert parse_rate("0") == 0.0 and parse_rate(" 2.5% ") == 0.025
    for bad in ("1", "5", "1.0", "-0.1", "101%", "abc", "nan", "%"):
        with pytest.raises(RateError):
            parse_rate(bad)
    with pytest.raises(RateError, match="1%"):
        parse_rate("1")


def test_a_breached_gate_fails_and_says_which():
    report = build(AUDIT[:-1], WINDOWS, [], 2, SINCE, NOW, Gates(max_mismatch_rate=0.01, min_match_rate=0.3))
    assert report["breaches"] == ["mismatch rate 40.0000% is above 1.0000%"] and not report["passed"]
    assert "BREACH: mismatch rate" in render(report)
    assert build(AUDIT[:-1], WINDOWS, [], 2, SINCE, NOW, Gates(max_mismatch_rate=0.5))["passed"]


def test_missing_data_is_a_problem_and_fails_any_gate():
    runs = [
        {"snapshot_id": "s1", "state": "running", "problems": 1, "counts": {}, "started_at": "2026-12-02T12:30:00.000Z"}
    ]
    report = build(AUDIT[:-1], WINDOWS[:2], runs, 3, SINCE, NOW, Gates(max_mismatch_rate=0.5))
    assert report["problems"] == [
        "partitions [1, 2] published no metrics window in the period: a worker down, or no input there",
        "snapshot s1 is running (1 problem(s))",
    ]
    assert not report["passed"] and report["result"] == "incomplete" and report["breaches"] == []


def test_nothing_compared_cannot_pass_a_minimum_match_rate():
    report = build([], [window(0, "w", 1)], [], 1, SINCE, NOW, Gates(min_match_rate=0.99))
    assert report["match_rate"] is None and not report["passed"]


def test_a_worker_that_does_not_answer_and_its_unreachable_peers_are_problems():
    down = build(AUDIT[:-1], WINDOWS, [], 2, SINCE, NOW, Gates(), {"error": "the worker at http://w did not answer"})
    assert down["problems"] == ["the worker at http://w did not answer"] and down["lag"] is None
    status = {"lag_records": 12, "lag_seconds_max": 3.5, "unreachable_workers": ["http://w2:6066"]}
    report = build(AUDIT[:-1], WINDOWS, [], 2, SINCE, NOW, Gates(max_mismatch_rate=0.9), status)
    assert report["lag"] == {"records": 12, "seconds_max": 3.5}
    assert report["problems"] == ["worker http://w2:6066 did not answer its peers"] and not report["passed"]


def table_audit(audit_id, status, table):
    return orjson.dumps({"audit_id": audit_id, "status": status, "late": False, "table": table})


TABLES = [
    *(table_audit(f"o{n}", "MATCH", "shop.orders") for n in range(99)),
    table_audit("o99", "MISMATCH", "shop.orders"),
    *(table_audit(f"i{n}", "MATCH", "shop.items") for n in range(8)),
    table_audit("i8", "MISMATCH", "shop.items"),
    table_audit("i9", "MISSING_CLOUD", "shop.items"),
]


def test_every_table_is_gated_on_its_own_and_the_breaching_table_is_named():
    report = build(TABLES, [window(0, "w1", 1)], [], 1, SINCE, NOW, Gates(max_mismatch_rate=0.05))
    assert report["mismatch_rate"] == round(2 / 110, 6)  # the sum alone would pass
    rows = {row["table"]: row for row in report["tables"]}
    assert rows["shop.items"]["compared"] == 10 and rows["shop.items"]["match_rate"] == 0.8
    assert rows["shop.orders"]["breaches"] == [] and rows["shop.items"]["missing_rate"] == 0.1
    assert report["breaches"] == ["table shop.items: mismatch rate 10.0000% is above 5.0000%"]
    assert report["result"] == "failed"
    text = render(report)
    assert "shop.items" in text and "80.00%" in text and "BREACH: table shop.items" in text


def test_the_report_of_one_table_counts_that_table_only():
    windows = [
        orjson.dumps(
            {
                "type": "window",
                "partition": 0,
                "window_start": "w1",
                "revision": 1,
                "counts": {"DLQ_INVALID_JSON": 4, "DUPLICATES": 1},
                "tables": {"shop.items": {"counts": {"DUPLICATES": 1}}},
            }
        )
    ]
    report = build(TABLES, windows, [], 1, SINCE, NOW, Gates(min_match_rate=0.9), table="shop.items")
    assert report["table"] == "shop.items" and report["tables"] == []
    assert report["counts"] == {"MATCH": 8, "MISMATCH": 1, "MISSING_CLOUD": 1} and report["duplicates"] == 1
    assert report["dlq_reasons"] == {} and report["breaches"] == ["match rate 80.0000% is below 90.0000%"]
    assert render(report).startswith(f"dqhash report {report['since']} .. {report['until']}, table shop.items")
    single = build(AUDIT[:-1], WINDOWS, [], 2, SINCE, NOW, table="default")  # records without a table: the default
    assert single["counts"] == {"MATCH": 2, "MISMATCH": 2, "MISSING_CLOUD": 1}


def test_unverifiable_changes_leave_their_table_unproven_whatever_the_rates():
    records = [audit("u1", "MATCH"), {"audit_id": "u2", "status": "UNVERIFIABLE", "table": "shop.items"}]
    raw = [r if isinstance(r, bytes) else orjson.dumps(r) for r in records]
    report = build(raw, [window(0, "w1", 1)], [], 1, SINCE, NOW, Gates(max_mismatch_rate=0.05))
    assert report["match_rate"] == 1.0 and report["counts"]["UNVERIFIABLE"] == 1
    [problem] = report["problems"]
    assert problem.startswith("table shop.items: 1 change(s) UNVERIFIABLE") and "snapshot run" in problem
    assert report["result"] == "incomplete"


def verified(partition, emitted, **tables):
    return orjson.dumps(
        {"type": "verified", "partition": partition, "emitted_at": emitted,
         "tables": {t: {"through_ms": ms, "pending": 0} for t, ms in tables.items()}}
    )  # fmt: skip


def test_verified_within_gates_each_table_on_its_oldest_partitions_newest_time():
    fresh, stale = NOW - 60_000, NOW - 3_600_000
    records = [
        *WINDOWS,
        verified(0, "2025-12-02T11:00:00.000Z", orders=stale, users=stale),
        verified(0, "2025-12-02T11:59:00.000Z", orders=fresh, users=fresh),  # partition 0's newest
        verified(1, "2025-12-02T11:59:00.000Z", orders=fresh, users=stale),
    ]
    report = build(AUDIT, records, [], 2, SINCE, NOW, Gates(verified_within_s=300))
    assert report["verified"]["orders"]["verified_age_s"] == 60.0
    assert report["verified"]["users"]["verified_age_s"] == 3600.0
    assert report["result"] == "failed"
    assert report["breaches"] == [
        "table users: verified through 2025-12-02T11:00:00.000Z, 3600 s ago, older than 300 s"
    ]
    assert "verified through: orders" in render(report)
    one = build(AUDIT, records, [], 2, SINCE, NOW, Gates(verified_within_s=300), table="orders")
    assert one["breaches"] == [] and list(one["verified"]) == ["orders"]


def test_verified_within_fails_when_a_partition_has_no_time_or_nothing_was_marked():
    records = [*WINDOWS, verified(0, "2025-12-02T11:59:00.000Z", orders=NOW)]
    report = build(AUDIT, records, [], 2, SINCE, NOW, Gates(verified_within_s=300))
    assert report["breaches"] == ["table orders: no verified-through time (partitions [1] have none)"]
    nothing = build(AUDIT, WINDOWS, [], 2, SINCE, NOW, Gates(verified_within_s=300))
    assert nothing["result"] == "failed" and "no table has a verified-through time" in nothing["breaches"][0]
