"""A snapshot run's report, folded from the snapshots topic: both sides' progress, every partition's counts.

Pure: the caller reads the records (``kafka.snapshot_log``) and passes the clock. The report never hides a
gap: a partition with no reconciliation record, a side still running or failed, a partition whose rows fall
short of its end marker, all show in ``problems`` and keep ``state`` from saying ``complete``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from dqhash.core import range_digests, statuses
from dqhash.core.timeutil import format_ms, parse_timestamp

#: statuses that mean the two sides differ (a rerun covers the token ranges that have any): ``core.statuses``
DIFFERENCES = statuses.DIFFERENCES
#: the first verdicts an on-prem snapshot row can get (late revisions and cloud-only rows aside)
ON_PREM_VERDICTS = statuses.ON_PREM_VERDICTS


def snapshot_ids(records: list[dict[str, Any]]) -> list[str]:
    return sorted({r["snapshot_id"] for r in records if isinstance(r.get("snapshot_id"), str)})


#: a run with no new progress record for this long, and not finished, is reported as stalled
STALLED_AFTER_MS = 15 * 60_000


def build_report(records: list[dict[str, Any]], snapshot_id: str, partitions: int, now_ms: int) -> dict[str, Any]:
    mine = [r for r in records if r.get("snapshot_id") == snapshot_id]
    sides, recon, abandoned = _by_type(mine)
    counts: Counter[str] = Counter()
    ranges: dict[int, Counter[str]] = {}
    per_partition = [_partition_entry(recon.get(p), p, counts, ranges) for p in range(partitions)]
    proven, digest_problems = _proven_by_digests(mine, counts, ranges)
    problems = _partition_problems(recon, sides, per_partition) + _side_problems(sides) + digest_problems
    judged = sum(1 for p in per_partition if p["state"] == "judged")
    compared = sum(counts.get(s, 0) for s in ("MATCH", *DIFFERENCES))
    state = _state(judged == partitions, problems, sides, abandoned)
    if state == "running" and _quiet_since(mine, now_ms) >= STALLED_AFTER_MS:
        state = "stalled"
        problems.append(_stalled_because(sides, per_partition))
    onprem, cloud = sides.get("onprem", {}), sides.get("cloud", {})
    return {
        "snapshot_id": snapshot_id,
        "state": state,
        "abandoned": {k: abandoned.get(k) for k in ("reason", "by", "abandoned_at")} if abandoned else None,
        "rows": {**_rows(per_partition, onprem, cloud), "proven_by_digests": proven},
        "counts": dict(sorted(counts.items())),
        "match_rate": round(counts.get("MATCH", 0) / compared, 6) if compared else None,
        "progress": {
            "partitions_judged": judged,
            "partitions": partitions,
            "onprem": _progress(onprem),
            "cloud": _progress(cloud),
        },
        "duration_s": _duration_s(sides, recon, state, now_ms),
        "partitions": per_partition,
        **_ranges(ranges),
        "splits": cloud.get("splits") or onprem.get("splits"),
        "problems": problems,
        "reported_at": format_ms(now_ms),
    }


def _rows(per_partition: list[dict[str, Any]], onprem: dict[str, Any], cloud: dict[str, Any]) -> dict[str, Any]:
    """Rows each side delivered to the reconciler, and what each publisher says it sent."""
    return {
        "onprem": sum(p.get("onprem_rows", 0) for p in per_partition),
        "cloud": sum(p.get("cloud_rows", 0) for p in per_partition),
        "onprem_published": onprem.get("rows"),
        "cloud_scanned": cloud.get("rows"),
    }


def _ranges(ranges: dict[int, Counter[str]]) -> dict[str, Any]:
    """Per token range, its rows and verdicts, and the ranges with differences (what ``--ranges-from`` reruns)."""
    return {
        "ranges": [{"range": r, **dict(sorted(tally.items()))} for r, tally in sorted(ranges.items())],
        "ranges_with_differences": sorted(r for r, tally in ranges.items() if any(tally.get(s) for s in DIFFERENCES)),
    }


def _proven_by_digests(
    mine: list[dict[str, Any]], counts: Counter[str], ranges: dict[int, Counter[str]]
) -> tuple[int, list[str]]:
    """The rows of the chunks both sides' digests prove (``core.range_digests``), folded in as MATCH rows of each
    side; 0 until both sides' digests are on the topic. A run with digests never shows a chunk's rows twice: the
    rows of a proven chunk are not published row by row."""
    comparison = range_digests.proven(mine, mine[0]["snapshot_id"]) if mine else None
    if comparison is None:
        return 0, []
    if isinstance(comparison, str):
        return 0, [comparison]
    for token_range, rows in comparison.proven_rows.items():
        ranges.setdefault(token_range, Counter()).update({"MATCH": rows, "onprem": rows, "cloud": rows})
    counts["MATCH"] += comparison.rows_proven
    return comparison.rows_proven, []


def abandon_record(snapshot_id: str, reason: str, by: str, now_ms: int) -> dict[str, Any]:
    """What ``dqhash snapshot abandon`` writes to the snapshots topic (key ``abandon:<id>``): the run is shown as
    abandoned, with why, and no longer counts against ``dqhash report``'s gates."""
    return {
        "type": "abandon",
        "snapshot_id": snapshot_id,
        "reason": reason,
        "by": by,
        "abandoned_at": format_ms(now_ms),
    }


def _partition_entry(
    record: dict[str, Any] | None, partition: int, counts: Counter[str], ranges: dict[int, Counter[str]]
) -> dict[str, Any]:
    """One partition's line, its counts folded into the run's (``counts``, ``ranges``)."""
    if record is None:
        return {"partition": partition, "state": "no record"}
    counts.update(record["counts"])
    for token_range, tally in record["ranges"].items():
        ranges.setdefault(int(token_range), Counter()).update(tally)
    # every on-prem row has its verdict once the sweep is over and its rechecks are answered
    decided = sum(n for status, n in record["counts"].items() if status in ON_PREM_VERDICTS)
    if record["judged"]:
        state = "judged" if decided >= record["onprem"]["rows"] else "rechecking"
    else:
        state = "judging" if record["complete"] else "receiving"
    return {
        "partition": partition,
        "state": state,
        "onprem_rows": record["onprem"]["rows"],
        "onprem_expected": record["onprem"]["expected"],
        "cloud_rows": record["cloud"]["rows"],
        "cloud_expected": record["cloud"]["expected"],
        "counts": record["counts"],
    }


def _by_type(mine: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[int, Any], dict[str, Any] | None]:
    """A run's records: each side's progress, each partition's reconciliation, its abandonment if any."""
    sides = {r["side"]: r for r in mine if r.get("type") == "side"}
    recon = {r["partition"]: r for r in mine if r.get("type") == "reconcile"}
    abandoned = next((r for r in mine if r.get("type") == "abandon"), None)
    return sides, recon, abandoned


def _partition_problems(
    recon: dict[int, dict[str, Any]], sides: dict[str, dict[str, Any]], per_partition: list[dict[str, Any]]
) -> list[str]:
    problems = []
    missing = [p["partition"] for p in per_partition if p["state"] == "no record"]
    for partition, record in sorted(recon.items()):
        for side in ("onprem", "cloud"):
            expected, rows = record[side]["expected"], record[side]["rows"]
            if expected is not None and rows < expected and sides.get(side, {}).get("state") == "done":
                problems.append(
                    f"partition {partition}: {rows} of the {expected} {side} rows its end marker names have arrived"
                )
    if missing and sides:
        problems.append(f"partitions {missing} have published no reconciliation yet")
    return problems


def _side_problems(sides: dict[str, dict[str, Any]]) -> list[str]:
    problems = []
    for side in ("onprem", "cloud"):
        info = sides.get(side)
        if info is None:
            scan_with = sides.get("onprem", {}).get("scan_with") if side == "cloud" else None
            problems.append(
                f"the cloud side has not started: run `{scan_with}`"  # a run Debezium's snapshot made
                if scan_with
                else f"no {side} progress record: has its publisher run for this snapshot?"
            )
        elif info.get("ranges_failed"):
            problems.append(
                f"the {side} side could not read token ranges {info['ranges_failed']}: run the same command again "
                "to read them"
            )
        elif info["state"] == "failed":
            problems.append(f"the {side} side failed: {info.get('error', 'see its log')}")
    return problems


def _state(all_judged: bool, problems: list[str], sides: dict[str, dict[str, Any]], abandoned: Any) -> str:
    if abandoned is not None:
        return "abandoned"
    if any(s.get("state") == "failed" for s in sides.values()):
        return "failed"
    return "complete" if all_judged and not problems else "running"


def _quiet_since(mine: list[dict[str, Any]], now_ms: int) -> int:
    """Milliseconds since the run's newest progress record (a side's or a partition's)."""
    stamps = [r.get("updated_at") or r.get("emitted_at") for r in mine]
    newest = max((parse_timestamp(s) for s in stamps if s), default=None)
    return 0 if newest is None else now_ms - newest


def _stalled_because(sides: dict[str, dict[str, Any]], per_partition: list[dict[str, Any]]) -> str:
    waiting = [
        f"the {side} side ({info['state']})" for side, info in sorted(sides.items()) if info["state"] == "running"
    ]
    waiting += [f"partition {p['partition']} ({p['state']})" for p in per_partition if p["state"] != "judged"]
    return (
        f"stalled: no progress for {STALLED_AFTER_MS // 60_000} minutes; waiting for "
        + (", ".join(waiting[:8]) + (f" and {len(waiting) - 8} more" if len(waiting) > 8 else "") or "nothing known")
        + ". Rerun the side that stopped, or end the run: dqhash snapshot abandon <id> --reason ..."
    )


def _duration_s(
    sides: dict[str, dict[str, Any]], recon: dict[int, dict[str, Any]], state: str, now_ms: int
) -> float | None:
    started = [parse_timestamp(s["started_at"]) for s in sides.values() if s.get("started_at")]
    ended = [parse_timestamp(p["judged_at"]) for p in recon.values() if p.get("judged_at")]
    if started and ended and state == "complete":
        return round((max(ended) - min(started)) / 1000, 3)
    return round((now_ms - min(started)) / 1000, 3) if started else None


def summaries(records: list[dict[str, Any]], partitions: int, now_ms: int) -> list[dict[str, Any]]:
    """One line per snapshot run, newest first (``GET /dq/snapshots``)."""
    rows = []
    for snapshot_id in snapshot_ids(records):
        report = build_report(records, snapshot_id, partitions, now_ms)
        rows.append(
            {
                "snapshot_id": snapshot_id,
                "table": next(
                    (r["table"] for r in records if r.get("snapshot_id") == snapshot_id and r.get("table")), None
                ),
                "state": report["state"],
                "rows": report["rows"],
                "counts": report["counts"],
                "match_rate": report["match_rate"],
                "duration_s": report["duration_s"],
                "problems": len(report["problems"]),
                "started_at": min(
                    (r["started_at"] for r in records if r.get("snapshot_id") == snapshot_id and r.get("started_at")),
                    default=None,
                ),
            }
        )
    return sorted(rows, key=lambda r: r["started_at"] or "", reverse=True)


#: token ranges a report's text lists by number (all of them are in its JSON)
RANGES_SHOWN = 32


def render_table(report: dict[str, Any]) -> str:
    """The report as text, for ``dqhash snapshot report``."""
    rows = report["rows"]
    abandoned = report.get("abandoned")
    lines = [
        f"snapshot {report['snapshot_id']}: {report['state']}"
        + (f" in {report['duration_s']:.1f}s" if report["duration_s"] is not None else "")
        + (f" ({abandoned['abandoned_at']} by {abandoned['by']}: {abandoned['reason']})" if abandoned else ""),
        f"rows: on-prem {rows['onprem']:,} received ({rows['onprem_published'] or 0:,} published), "
        f"cloud {rows['cloud']:,} received ({rows['cloud_scanned'] or 0:,} scanned)"
        + (
            f"; {rows['proven_by_digests']:,} more on each side proven by their chunks' digests"
            if rows.get("proven_by_digests")
            else ""
        ),
    ]
    progress = report["progress"]
    for side in ("onprem", "cloud"):
        info = progress[side]
        if info:
            eta = f", ETA {info['eta_s']:.0f}s" if info.get("eta_s") is not None else ""
            pct = f"{info['percent']:.1f}%" if info.get("percent") is not None else "?"
            lines.append(f"{side:7s} {info['state']:8s} {pct:>6s} {info['rows_per_s']:>10,.0f} rows/s{eta}")
    lines.append(f"partitions judged: {progress['partitions_judged']}/{progress['partitions']}")
    rate = report["match_rate"]
    lines.append("match rate: " + (f"{rate:.4%}" if rate is not None else "n/a"))
    lines.append(f"{'status':24s} {'rows':>10s}")
    for status, n in report["counts"].items():
        lines.append(f"{status:24s} {n:>10,}")
    lines.append(f"{'partition':>9s} {'state':10s} {'on-prem':>15s} {'cloud':>15s}  counts")
    lines += [_partition_line(p) for p in report["partitions"]]
    differing = report["ranges_with_differences"]
    if differing:
        shown = ", ".join(str(r) for r in differing[:RANGES_SHOWN]) + (", ..." if len(differing) > RANGES_SHOWN else "")
        lines.append(
            f"token ranges with a difference: {len(differing)} of {report['splits']} ({shown}); "
            "`--ranges-from` reruns only these"
        )
    for problem in report["problems"]:
        lines.append(f"PROBLEM: {problem}")
    return "\n".join(lines)


def _partition_line(p: dict[str, Any]) -> str:
    if "onprem_rows" not in p:
        return f"{p['partition']:>9d} {p['state']:10s}"
    onprem = f"{p['onprem_rows']}/{p['onprem_expected'] if p['onprem_expected'] is not None else '?'}"
    cloud = f"{p['cloud_rows']}/{p['cloud_expected'] if p['cloud_expected'] is not None else '?'}"
    counts = ", ".join(f"{k} {v}" for k, v in sorted(p["counts"].items()))
    return f"{p['partition']:>9d} {p['state']:10s} {onprem:>15s} {cloud:>15s}  {counts}"


def _progress(side: dict[str, Any]) -> dict[str, Any]:
    if not side:
        return {}
    return {
        "state": side["state"],
        "rows": side["rows"],
        "rows_per_s": side.get("rows_per_s", 0.0),
        "percent": side.get("percent"),
        "eta_s": side.get("eta_s"),
        "elapsed_s": side.get("elapsed_s"),
        "digests": side.get("digests"),  # a run proven chunk by chunk: what this side's comparison proved
    }
