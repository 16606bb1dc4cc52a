"""``dqhash report``: what a period of audit, metrics and snapshot records says, and whether it breached a gate.

Pure: the caller reads the topics (``kafka.topic_reader``) and passes the clock. Nothing incomplete is hidden
under a success line: a partition that published no metrics window in the period, records that could not be
read, a snapshot run that did not complete, all go to ``problems``, and a report with problems never passes a
gate.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, NamedTuple

from dqhash.core import statuses
from dqhash.core.jsontext import load_object
from dqhash.core.tally import COMPARED
from dqhash.core.timeutil import format_ms
from dqhash.core.transactions import shortfall_problems
from dqhash.core.verified_report import verified_breaches, verified_tables

#: the statuses whose share each gate bounds (``core.statuses``)
GATED = statuses.GATED


#: what a report concludes: its gates held, one was breached, a problem left it unable to judge, or nothing was asked
PASSED, FAILED, INCOMPLETE, NO_GATES = "passed", "failed", "incomplete", "no gates set"


class RateError(ValueError):
    """A gate's rate that does not say unambiguously what share it means."""


def parse_rate(text: str) -> float:
    """A gate's rate: a fraction below 1 (``0.01``) or a percent with its sign (``1%``, ``100%``); a bare number
    of 1 or more is refused, since ``1`` meant as a percent would be read as 100 % and pass everything."""
    raw = text.strip()
    percent = raw.endswith("%")
    try:
        value = float(raw[:-1] if percent else raw)
    except ValueError:
        raise RateError(f"{text!r} is not a rate: write a fraction (0.01) or a percent with its sign (1%)") from None
    if not percent and value >= 1:  # 1 meant as a percent would read as 100 % and gate nothing
        raise RateError(f"{text!r}: a bare rate is a fraction below 1; write a percent with its sign ({raw}%)")
    if percent:
        value /= 100
    if not 0 <= value <= 1 or value != value:
        raise RateError(f"{text!r} is not a rate between 0 and 100%")
    return value


class Gates(NamedTuple):
    max_mismatch_rate: float | None = None
    max_missing_rate: float | None = None
    max_dlq_rate: float | None = None
    min_match_rate: float | None = None
    #: every table's verified-through time no older than this (seconds): ``--verified-within``
    verified_within_s: float | None = None


def build(
    audit: list[bytes | None],
    windows: list[bytes | None],
    snapshots: list[dict[str, Any]],
    partitions: int,
    since_ms: int,
    now_ms: int,
    gates: Gates = Gates(),
    status: dict[str, Any] | None = None,
    table: str | None = None,
    default_table: str = "default",
) -> dict[str, Any]:
    """``status``: a worker's ``GET /dq/status`` answer (or ``{"error": ...}``), when one was asked. ``table``: the
    report of that table only; without it, of every table, with each table's own rates and gates."""
    problems = _worker_problems(status)
    tally = _audit_tally(audit, table, default_table)
    statuses, late, columns, rechecks = tally.statuses, tally.late, tally.columns, tally.rechecks
    if tally.unreadable:
        problems.append(f"{tally.unreadable} audit record(s) could not be read")
    newest = _newest_windows(windows)
    dlq, duplicates = _window_tally(newest, table)
    silent = sorted(set(range(partitions)) - {partition for partition, _ in newest})
    if silent:
        problems.append(
            f"partitions {silent} published no metrics window in the period: a worker down, or no input there"
        )
    problems += shortfall_problems(windows, table)  # changes a committed transaction made that never arrived
    problems += _unverifiable(tally.by_table)
    runs = [s for s in snapshots if (s.get("started_at") or "") >= format_ms(since_ms)]
    for run in runs:  # an abandoned run is listed, and no longer counts against the gates
        if run["state"] not in ("complete", "abandoned"):
            problems.append(f"snapshot {run['snapshot_id']} is {run['state']} ({run['problems']} problem(s))")
    compared = sum(statuses.get(s, 0) for s in COMPARED)
    rates = _rates(statuses, sum(dlq.values()))
    breaches = _breaches(rates, gates)
    tables = _tables(tally.by_table, gates) if table is None else []
    if len(tables) > 1:  # a gate holds for each table, not only for their sum: the breaching table is named
        breaches += [f"table {row['table']}: {breach}" for row in tables for breach in row["breaches"]]
    verified, late_tables = _verified(windows, partitions, now_ms, table, gates.verified_within_s)
    breaches += late_tables
    result = _result(problems, breaches, any(g is not None for g in gates))
    return {
        "since": format_ms(since_ms),
        "until": format_ms(now_ms),
        "table": table,
        "tables": tables,
        "counts": dict(sorted(statuses.items())),
        "late": dict(sorted(late.items())),
        "compared": compared,
        **rates,
        "top_differing_columns": columns.most_common(10),
        "dlq_reasons": dict(dlq.most_common()),
        "duplicates": duplicates,
        "recheck_outcomes": dict(sorted(rechecks.items())),
        "snapshots": runs,
        "verified": verified,
        "windows": len(newest),
        "lag": (
            {"records": status["lag_records"], "seconds_max": status["lag_seconds_max"]}
            if status is not None and "error" not in status
            else None
        ),
        "problems": problems,
        "breaches": breaches,
        "result": result,
        "passed": result == PASSED,
    }


def _verified(
    windows: list[bytes | None], partitions: int, now_ms: int, table: str | None, within_s: float | None
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Each table's verified-through time (``table``'s only, when one is named), and the tables it leaves
    behind ``within_s`` (``--verified-within``)."""
    verified = verified_tables(windows, partitions, now_ms)
    if table is not None:
        verified = {t: v for t, v in verified.items() if t == table}
    if within_s is None:
        return verified, []
    return verified, verified_breaches(verified, [table] if table else sorted(verified), within_s)


def _unverifiable(by_table: dict[str, Counter[str]]) -> list[str]:
    """Each table with changes that could not be compared: whatever the rates say, they are not proven."""
    unproven = statuses.Status.UNVERIFIABLE.value
    return [
        f"table {table}: {counts[unproven]} change(s) {unproven}, never compared (a value the source did not send, "
        "or lost digits): prove the table with a snapshot run, or fix the connector (docs/debezium.md)"
        for table, counts in sorted(by_table.items())
        if counts.get(unproven)
    ]


def _rates(statuses: Counter[str], dead_letters: int) -> dict[str, float | None]:
    compared = sum(statuses.get(s, 0) for s in COMPARED)
    classified = sum(statuses.values())
    return {
        "match_rate": _rate(statuses.get("MATCH", 0), compared),
        "mismatch_rate": _rate(sum(statuses.get(s, 0) for s in GATED["mismatch"]), compared),
        "missing_rate": _rate(sum(statuses.get(s, 0) for s in GATED["missing"]), compared),
        "dlq_rate": _rate(dead_letters, classified + dead_letters),
    }


def _tables(by_table: dict[str, Counter[str]], gates: Gates) -> list[dict[str, Any]]:
    """Each table's verdicts, rates and breaches (dead letters are not per table: a record that cannot be read
    has no table to count under, so the dead-letter gate applies to the whole report only)."""
    rows = []
    for table, verdicts in sorted(by_table.items()):
        rates = _rates(verdicts, 0)
        rows.append(
            {
                "table": table,
                "counts": dict(sorted(verdicts.items())),
                "compared": sum(verdicts.get(s, 0) for s in COMPARED),
                **{k: v for k, v in rates.items() if k != "dlq_rate"},
                "breaches": _breaches(rates, gates._replace(max_dlq_rate=None)),
            }
        )
    return rows


class AuditTally(NamedTuple):
    statuses: Counter[str]
    late: Counter[str]
    columns: Counter[str]
    rechecks: Counter[str]
    unreadable: int
    #: table → its on-time verdicts by status
    by_table: dict[str, Counter[str]]


def _audit_tally(audit: list[bytes | None], table: str | None = None, default_table: str = "default") -> AuditTally:
    """Verdicts by status (on time and late), differing columns and recheck outcomes, each audit id once; of
    ``table`` only when one is named."""
    tally = AuditTally(Counter(), Counter(), Counter(), Counter(), 0, {})
    seen: set[str] = set()
    unreadable = 0
    for raw in audit:
        record = load_object(raw)
        if record is None or "audit_id" not in record:
            unreadable += 1
            continue
        if record["audit_id"] in seen:  # a replay or a new owner's republication: the same verdict
            continue
        seen.add(record["audit_id"])
        own = record.get("table") or default_table
        if table is not None and own != table:
            continue
        verdict = record["status"]
        (tally.late if record.get("late") else tally.statuses)[verdict] += 1
        if not record.get("late"):
            tally.by_table.setdefault(own, Counter())[verdict] += 1
        tally.columns.update(record.get("differing_columns") or ())
        if record.get("rechecks"):
            tally.rechecks[f"{verdict} after {record['rechecks']} recheck(s)"] += 1
    return tally._replace(unreadable=unreadable)


def _newest_windows(windows: list[bytes | None]) -> dict[tuple[int, str], dict[str, Any]]:
    """Each (partition, window) at its newest revision."""
    newest: dict[tuple[int, str], dict[str, Any]] = {}
    for raw in windows:
        record = load_object(raw)
        if record is None or record.get("type") != "window":
            continue
        key = (record["partition"], record["window_start"])
        if key not in newest or record["revision"] >= newest[key]["revision"]:
            newest[key] = record
    return newest


def _window_tally(newest: dict[tuple[int, str], dict[str, Any]], table: str | None = None) -> tuple[Counter[str], int]:
    """Dead letters by reason, and duplicates, from the windows' counts (of ``table`` only, when one is named)."""
    dlq: Counter[str] = Counter()
    duplicates = 0
    for record in newest.values():
        counts = record["counts"] if table is None else record.get("tables", {}).get(table, {}).get("counts", {})
        for name, n in counts.items():
            if name.startswith("DLQ_"):
                dlq[name[4:]] += n
            elif name == "DUPLICATES":
                duplicates += n
    return dlq, duplicates


def _worker_problems(status: dict[str, Any] | None) -> list[str]:
    if status is None:
        return []
    if "error" in status:
        return [status["error"]]
    return [f"worker {w} did not answer its peers" for w in status.get("unreachable_workers", [])]


def _result(problems: list[str], breaches: list[str], gated: bool) -> str:
    """A breach fails; a problem makes the report incomplete, gates or not (no pass can rest on missing data);
    with neither, the gates passed, or there were none to pass."""
    if breaches:
        return FAILED
    if problems:
        return INCOMPLETE
    return PASSED if gated else NO_GATES


def render(report: dict[str, Any]) -> str:
    lines = [
        f"dqhash report {report['since']} .. {report['until']}"
        + (f", table {report['table']}" if report.get("table") else "")
    ]
    rate = report["match_rate"]
    lines.append(
        f"compared {report['compared']:,}, match rate "
        + (f"{rate:.4%}" if rate is not None else "n/a")
        + f"; {report['windows']} metrics windows"
    )
    lines.append(f"{'status':28s} {'verdicts':>10s}")
    for status, n in report["counts"].items():
        lines.append(f"{status:28s} {n:>10,}")
    for status, n in report["late"].items():
        lines.append(f"{status + ' (late)':28s} {n:>10,}")
    if report["top_differing_columns"]:
        lines.append("top differing columns: " + ", ".join(f"{c} {n}" for c, n in report["top_differing_columns"]))
    if report["dlq_reasons"]:
        lines.append("dead letters: " + ", ".join(f"{r} {n}" for r, n in report["dlq_reasons"].items()))
    if report["recheck_outcomes"]:
        lines.append("after rechecks: " + ", ".join(f"{o}: {n}" for o, n in report["recheck_outcomes"].items()))
    if len(report.get("tables", ())) > 1:
        lines.append(f"{'table':40s} {'compared':>10s} {'match rate':>11s} {'mismatch':>9s} {'missing':>9s}")
        for row in report["tables"]:
            lines.append(
                f"{row['table']:40s} {row['compared']:>10,} {_percent(row['match_rate']):>11s} "
                f"{_percent(row['mismatch_rate']):>9s} {_percent(row['missing_rate']):>9s}"
            )
    for run in report["snapshots"]:
        lines.append(f"snapshot {run['snapshot_id']}: {run['state']}, {run['counts']}")
    for table, entry in report.get("verified", {}).items():
        when = entry["verified_through"]
        lines.append(
            f"verified through: {table} "
            + (
                f"{when} ({entry['verified_age_s']:.0f} s ago)"
                if when
                else f"unknown, partitions {entry['unverified_partitions']}"
            )
        )
    for problem in report["problems"]:
        lines.append(f"PROBLEM: {problem}")
    for breach in report["breaches"]:
        lines.append(f"BREACH: {breach}")
    lines.append("RESULT: " + report["result"])
    return "\n".join(lines)


def _breaches(rates: dict[str, float | None], gates: Gates) -> list[str]:
    out = []
    for name, limit, rate in (
        ("mismatch rate", gates.max_mismatch_rate, rates["mismatch_rate"]),
        ("missing rate", gates.max_missing_rate, rates["missing_rate"]),
        ("dead-letter rate", gates.max_dlq_rate, rates["dlq_rate"]),
    ):
        if limit is not None and rate is not None and rate > limit:
            out.append(f"{name} {rate:.4%} is above {limit:.4%}")
    if gates.min_match_rate is not None:
        match = rates["match_rate"]
        if match is None:
            out.append("no pair was compared in the period: the match rate cannot be checked")
        elif match < gates.min_match_rate:
            out.append(f"match rate {match:.4%} is below {gates.min_match_rate:.4%}")
    return out


def _percent(rate: float | None) -> str:
    return f"{rate:.2%}" if rate is not None else "n/a"


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None
