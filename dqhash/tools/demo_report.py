"""``dqhash demo``'s closing report: what came out next to what must come out, section by section."""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson

from dqhash.core.snapshot_report import render_table
from dqhash.core.statuses import having
from dqhash.core.timeutil import format_ms, now_ms
from dqhash.core.verified_report import verified_tables
from dqhash.tools import table_workload
from dqhash.tools.runner import Outputs
from dqhash.tools.workload import Workload

#: Short windows so MISSING_CLOUD, rechecks and late arrivals play out in seconds (the demo's, echoed in its report).
DEMO_WINDOW_S, DEMO_GRACE_S = 2, 3
RECHECKS = 2


def report(
    workload: Workload,
    tables: list[table_workload.TableWork],
    out: Outputs,
    elapsed: float,
    statsd: Any,
    partitions: int = 4,
) -> int:
    print("\n" + render_table(workload.snapshot_report))
    first = _first_table(out)
    sections = _expected_and_actual(workload, out, first) + [_table_section(work, out) for work in tables]
    sections.append(_verified_section(tables, out, partitions))
    differing = [r for r in first if r["status"] in _DIFFERING]
    # the demo's rows differ in their name alone: every hash difference must say so
    named = sum(1 for r in differing if r.get("differing_columns") == ["name"])
    sections.append(
        (
            "hash differences (MISMATCH, CLOUD_DRIFT) naming the column that differs",
            [("verdicts", len(differing), named)],
        )
    )
    rechecked = sum(1 for r in first if r["rechecks"])
    extra = ", ".join(f"{len(work.onprem)} of {work.spec.name}" for work in tables)
    print(
        f"\ndqhash demo: {len(workload.onprem)} on-prem events of {table_workload.DEFAULT_TABLE} ({extra}); cloud copy "
        f"of {workload.cloud_rows} rows read by the cloud hash producer; {rechecked} verdicts came after rechecks"
    )
    rows = _print_sections(sections)
    if differing:
        example = {k: differing[0][k] for k in ("pk", "status", "reason", "differing_columns", "snapshot_id")}
        print(f"\na mismatch with its columns named: {orjson.dumps(example).decode()}")
    _print_outputs(out, statsd)
    ok = all(expected == actual for _, expected, actual in rows) and not out.unreadable
    events = len(workload.onprem) + sum(len(work.onprem) for work in tables)
    print(
        f"{events} on-prem events in {elapsed:.1f}s = {events / elapsed:,.0f} events/s end to end (includes "
        f"{DEMO_WINDOW_S + DEMO_GRACE_S}s window + grace and {RECHECKS} rechecks for the MISSING_CLOUD cases)"
    )
    print("RESULT: every event accounted for, counts agree" if ok else "RESULT: counts differ from expected")
    return 0 if ok else 1


#: verdicts whose hashes differ: the ones that can name their columns (``core.statuses``)
_DIFFERING = {s.value for s in having(differing=True)}

Row = tuple[str, int, int]


def _expected_and_actual(workload: Workload, out: Outputs, first: list[dict]) -> list[tuple[str, list[Row]]]:
    """(what a section counts, its (outcome, expected, actual) rows): the first table's stream verdicts
    (``first``: its audit records) and its snapshot run's apart, then what was not classified."""
    in_run = Counter((r["status"], r["late"]) for r in first if r.get("snapshot_id"))
    streamed = _streamed(first)
    run_expected = Counter({(status, False): n for status, n in workload.expected_snapshot.items()})
    stream_expected = workload.expected_audit - run_expected
    report = workload.snapshot_report["counts"]
    return [
        (
            f"table {table_workload.DEFAULT_TABLE}, stream: one verdict per on-prem change event (and per drift "
            "re-verification found)",
            _rows(stream_expected, streamed),
        ),
        (
            "snapshot run: one verdict per row of the whole-table comparison, as audit records",
            _rows(run_expected, in_run),
        ),
        (
            "snapshot run: its report's counts (the same verdicts, from the snapshots topic)",
            [
                (s, workload.expected_snapshot.get(s, 0), report.get(s, 0))
                for s in sorted(set(workload.expected_snapshot) | set(report))
            ],
        ),
        (
            "not classified: replays counted as duplicates, bad records dead-lettered with their reason",
            [("duplicates", workload.expected_duplicates, out.window_total("DUPLICATES"))]
            + [
                (f"DLQ {reason}", workload.expected_dlq.get(reason, 0), out.dlq.get(reason, 0))
                for reason in sorted(set(workload.expected_dlq) | set(out.dlq))
            ],
        ),
    ]


def stream_differences(stream_expected: Counter, tables: list[table_workload.TableWork], out: Outputs) -> list[str]:
    """Each stream outcome seen more or fewer times than expected (``stream_expected``: the first table's verdicts
    before the snapshot scenarios were added): what a timed-out demo was still waiting for, and what came instead."""
    rows = [(f"{table_workload.DEFAULT_TABLE} {outcome}", *counts) for outcome, *counts in
            _rows(stream_expected, _streamed(_first_table(out)))]  # fmt: skip
    for work in tables:
        rows += [(f"{work.spec.name} {outcome}", *counts) for outcome, *counts in _table_section(work, out)[1]]
    return [f"{outcome}: {actual} of {expected}" for outcome, expected, actual in rows if actual != expected]


def _first_table(out: Outputs) -> list[dict]:
    """The first table's audit records (the other tables are fed by Debezium, each with its own section)."""
    return [r for r in out.audit_records if r.get("table") == table_workload.DEFAULT_TABLE]


def _streamed(first: list[dict]) -> Counter:
    """(status, late) → verdicts of the stream, not of a snapshot run."""
    return Counter((r["status"], r["late"]) for r in first if not r.get("snapshot_id"))


def _print_sections(sections: list[tuple[str, list[Row]]]) -> list[Row]:
    """Each section's rows, expected next to actual; returns every row."""
    print(f"{'outcome':40s} {'expected':>9s} {'actual':>9s}")
    for title, section in sections:
        print(f"-- {title}")
        for name, expected, actual in section:
            print(f"   {name:37s} {expected:9d} {actual:9d}{'' if expected == actual else '   <-- differs'}")
    return [row for _, section in sections for row in section]


def _table_section(work: table_workload.TableWork, out: Outputs) -> tuple[str, list[Row]]:
    """One extra table's verdicts next to what it expects, under a title naming its key and renames."""
    actual = Counter(r["status"] for r in out.audit_records if r.get("table") == work.spec.name)
    key = ", ".join(work.spec.key)
    renamed = ", ".join(f"{a} (cloud {b})" for a, b in work.spec.rename.items())
    title = f"table {work.spec.name}: key ({key})" + (f", renamed {renamed}" if renamed else "")
    return title, [(s, work.expected.get(s, 0), actual.get(s, 0)) for s in sorted(set(work.expected) | set(actual))]


def _verified_section(tables: list[table_workload.TableWork], out: Outputs, partitions: int) -> tuple[str, list[Row]]:
    """Each Debezium-fed table verified through its newest change: every change committed before then has a verdict
    (``core.progress``); one row per table, 1 when it is, 0 when its time is unknown or older."""
    verified = verified_tables(out.verified, partitions, now_ms())
    rows = []
    for work in tables:
        newest = max(orjson.loads(v)["payload"]["source"]["ts_ms"] for _, v in work.changes)
        through = verified.get(work.spec.name, {}).get("verified_through")
        print(f"{work.spec.name}: verified through {through or 'unknown'} (its newest change: {format_ms(newest)})")
        rows.append(
            (f"{work.spec.name} verified through it", 1, int(through is not None and through >= format_ms(newest)))
        )
    return "verified through each Debezium table's newest change (1: yes)", rows


def _rows(expected: Counter, actual: Counter) -> list[Row]:
    return [
        (f"{status}{' (late)' if late else ''}", expected.get((status, late), 0), actual.get((status, late), 0))
        for status, late in sorted(set(expected) | set(actual))
    ]


def _print_outputs(out: Outputs, statsd: Any) -> None:
    """The producer's schema events, unreadable outputs, windows and DogStatsD lines."""
    drift = sorted({f"{e['type']}: {e['column']}" for e in out.schema_events})
    print(f"\nschema events from the producer: {', '.join(drift) or 'none'}")
    if out.unreadable:
        print(f"unreadable output records: {len(out.unreadable)} (first: {out.unreadable[0]})")
    print(
        f"\nwindows published: {len(out.windows)} (per partition); DogStatsD lines received: "
        f"{sum(statsd.lines.values())} ({', '.join(f'{k} {v}' for k, v in sorted(statsd.lines.items())[:6])}...)"
    )
