"""A snapshot run's report: complete, failed with why, stalled with what it waits for, abandoned; and how
``dqhash report`` counts each against its gates."""

import itertools

from dqhash.core import run_report
from dqhash.core.snapshot_report import STALLED_AFTER_MS, abandon_record, build_report, render_table, summaries
from dqhash.core.timeutil import format_ms

NOW = 1_764_676_800_000


def side(name, state="done", rows=2, updated=NOW - 1_000, **extra):
    return {
        "type": "side",
        "side": name,
        "snapshot_id": "s1",
        "state": state,
        "rows": rows,
        "errors": 0,
        "rows_per_s": 10.0,
        "started_at": format_ms(NOW - 60_000),
        "updated_at": format_ms(updated),
        **extra,
    }


def recon(partition, judged=True, emitted=NOW - 1_000):
    return {
        "type": "reconcile",
        "snapshot_id": "s1",
        "partition": partition,
        "onprem": {"rows": 1, "expected": 1},
        "cloud": {"rows": 1, "expected": 1},
        "counts": {"MATCH": 1} if judged else {},
        "ranges": {},
        "complete": judged,
        "judged": judged,
        "judged_at": format_ms(emitted) if judged else None,
        "emitted_at": format_ms(emitted),
    }


def test_a_run_with_both_sides_done_and_every_partition_judged_is_complete():
    report = build_report([side("onprem"), side("cloud"), recon(0), recon(1)], "s1", 2, NOW)
    assert report["state"] == "complete" and report["problems"] == [] and report["abandoned"] is None


def test_a_side_that_ended_with_dead_lettered_rows_makes_the_run_failed_and_says_why():
    failed = side("onprem", state="failed", error="3 row(s) could not be published and went to dq-dlq")
    report = build_report([failed, side("cloud"), recon(0), recon(1)], "s1", 2, NOW)
    assert report["state"] == "failed"
    assert report["problems"] == ["the onprem side failed: 3 row(s) could not be published and went to dq-dlq"]


def test_a_run_with_no_progress_for_the_stall_time_is_stalled_and_names_what_it_waits_for():
    quiet = NOW - STALLED_AFTER_MS
    records = [side("onprem", updated=quiet), side("cloud", state="running", updated=quiet), recon(0, emitted=quiet)]
    report = build_report(records, "s1", 2, NOW)
    assert report["state"] == "stalled"
    assert "waiting for the cloud side (running), partition 1 (no record)" in report["problems"][-1]
    fresh = build_report([side("onprem"), side("cloud", state="running"), recon(0)], "s1", 2, NOW)
    assert fresh["state"] == "running"


def test_an_abandoned_run_says_so_with_its_reason_and_no_longer_counts_against_the_gates():
    records = [side("onprem"), side("cloud", state="running"), abandon_record("s1", "wrong export", "ops", NOW)]
    report = build_report(records, "s1", 2, NOW)
    assert report["state"] == "abandoned" and report["abandoned"]["reason"] == "wrong export"
    assert "(" in render_table(report).splitlines()[0] and "wrong export" in render_table(report)
    runs = summaries(records, 2, NOW)
    gated = run_report.build([], [], runs, 0, NOW - 3_600_000, NOW, run_report.Gates(max_mismatch_rate=0.5))
    assert gated["problems"] == [] and gated["snapshots"][0]["state"] == "abandoned"
    stalled = summaries([side("onprem", updated=NOW - STALLED_AFTER_MS)], 2, NOW)
    blocked = run_report.build([], [], stalled, 0, NOW - 3_600_000, NOW, run_report.Gates(max_mismatch_rate=0.5))
    assert blocked["result"] == "incomplete" and "snapshot s1 is stalled" in blocked["problems"][0]


def test_a_run_debeziums_snapshot_made_says_how_to_scan_its_cloud_side():
    scan = "dqhash snapshot scan --snapshot-id dbz-1a2b --table inventory.customers"
    report = build_report([side("onprem", scan_with=scan), recon(0, judged=False)], "s1", 1, NOW)
    assert f"the cloud side has not started: run `{scan}`" in report["problems"] and report["state"] == "running"
    plain = build_report([side("onprem"), recon(0, judged=False)], "s1", 1, NOW)
    assert "no cloud progress record: has its publisher run for this snapshot?" in plain["problems"]


def test_a_side_written_in_parts_ends_with_its_last_part_expecting_the_rows_of_them_all():
    from dqhash.core.contracts import parse_onprem
    from dqhash.core.input_records import Reason
    from dqhash.core.snapshots import mark_end, new_record, side_complete

    record = new_record("s1", 0, NOW)
    mark_end(record, "onprem", 3, 5, NOW, part="t:0", parts=2)
    record["onprem"]["rows"] = 3
    assert not side_complete(record, "onprem")  # the other part's rows may still come
    mark_end(record, "onprem", 2, 5, NOW, part="t:1", parts=2)
    assert record["onprem"]["expected"] == 5 and not side_complete(record, "onprem")
    record["onprem"]["rows"] = 5
    assert side_complete(record, "onprem")
    end = parse_onprem(b'{"snapshot_id": "s1", "snapshot_end": true, "rows": 2, "part": "t:1", "parts": 2}')
    assert (end.part, end.parts) == ("t:1", 2)
    bad = parse_onprem(b'{"snapshot_id": "s1", "snapshot_end": true, "rows": 2, "part": "t:1", "parts": 0}')
    assert bad.reason is Reason.INVALID_FIELD_TYPE


PASSES = itertools.count()


def digest_records(side_name, rows, chunks_per_range=4):
    """A side's digests of the run ``s1``: ``rows`` as (pk, token, hash)."""
    from dqhash.core.range_digests import ChunkDigests, records
    from dqhash.core.token_ranges import range_of, split

    digests = ChunkDigests(split(8), chunks_per_range)
    for pk, token, digest in rows:
        digests.add(range_of(token, digests.ranges), token, pk, "v2", digest)
    digest_id = f"pass-{side_name}-{next(PASSES)}"  # each pass its own id, as each side draws one
    return [value for _, value in records(digests, side_name, "s1", digest_id, NOW - 5_000)]


def test_rows_proven_by_their_chunks_digests_count_as_matches_of_their_ranges_beside_those_judged_row_by_row():
    from dqhash.core.token_ranges import MAX_TOKEN, MIN_TOKEN

    width = (MAX_TOKEN - MIN_TOKEN) // 8
    same = [(f"k{i}", MIN_TOKEN + 3 * width + 1 + i, f"{i:064x}") for i in range(5)]  # range 3, its first chunk
    differs = [("d1", MIN_TOKEN + 6 * width - 1, "a" * 64)]  # range 5, its last chunk
    published = [side("onprem"), side("cloud"), recon(0), recon(1)]  # the chunk that differs, judged row by row
    both = digest_records("onprem", same + differs) + digest_records("cloud", same + [("d1", differs[0][1], "b" * 64)])
    report = build_report(published + both, "s1", 2, NOW)
    assert report["state"] == "complete" and report["problems"] == []
    assert report["counts"] == {"MATCH": 2 + 5} and report["rows"]["proven_by_digests"] == 5
    assert report["rows"]["onprem"] == 2  # the rows the reconciler received: the proven ones were never sent
    assert {"range": 3, "MATCH": 5, "cloud": 5, "onprem": 5} in report["ranges"]
    assert "5 more on each side proven by their chunks' digests" in render_table(report)
    # until the other side's digests are there, nothing is counted as proven
    early = build_report(published + digest_records("onprem", same), "s1", 2, NOW)
    assert early["rows"]["proven_by_digests"] == 0 and early["counts"] == {"MATCH": 2}
    # sides cut differently prove nothing, and the report says what to do
    mixed = digest_records("onprem", same) + digest_records("cloud", same, chunks_per_range=8)
    refused = build_report(published + mixed, "s1", 2, NOW)
    assert refused["rows"]["proven_by_digests"] == 0 and refused["state"] == "running"
    assert any("--chunks-per-range" in p for p in refused["problems"]), refused["problems"]
