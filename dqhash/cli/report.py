"""``dqhash report``: what a period's audit, metrics and snapshot records say, with gates."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import orjson

from dqhash.cli.common import (
    EXIT_BREACHED,
    EXIT_NO_GATES,
    EXIT_OK,
    EXIT_USAGE,
    KAFKA,
    command,
    fail,
    load_settings,
    period_seconds,
)

READS = (
    *KAFKA,
    "DQHASH_AUDIT_TOPIC",
    "DQHASH_METRICS_TOPIC",
    "DQHASH_SNAPSHOT_TOPIC",
    "DQHASH_PARTITIONS",
    "DQHASH_WEB_TOKEN",
    "DQHASH_CATALOG",
    "DQHASH_TABLE",
)


def add(commands: Any) -> None:
    report = command(
        commands,
        "report",
        "what a period's audit, metrics and snapshot records say; exits 3 when a gate is breached",
        READS,
        description="Reads the audit, metrics and snapshots topics for the period and prints counts by status, the "
        "match rate, the top differing columns, dead-letter reasons, recheck outcomes and snapshot runs. Anything "
        "incomplete is listed as a problem and makes the result 'incomplete': no gate passes on missing data. "
        "Rates are fractions (0.01) or percents with their sign (1%). Exit status: 0 every gate passed, "
        "3 a gate was breached or the report is incomplete, 4 no gate was given (nothing was checked), "
        "1 the topics could not be read, 2 a usage error.",
    )
    report.add_argument("--since", default="24h", help="the period: 90m, 24h, 7d ... (default 24h)")
    report.add_argument("--json", action="store_true", help="print JSON instead of text")
    report.add_argument(
        "--table",
        metavar="TABLE",
        help="the report of one table of the catalog (default: every table, each gated on its own and named "
        "when it breaches)",
    )
    for flag, meaning in (
        ("--max-mismatch-rate", "fail above this share of MISMATCH / CLOUD_DRIFT"),
        ("--max-missing-rate", "fail above this share of MISSING_CLOUD / CLOUD_VANISHED"),
        ("--max-dlq-rate", "fail above this share of dead-lettered records"),
        ("--min-match-rate", "fail below this match rate"),
    ):
        report.add_argument(flag, type=_rate, metavar="RATE", help=f"{meaning} (0.01 or 1%%)")
    report.add_argument(
        "--verified-within",
        metavar="DURATION",
        help="fail when a table's verified-through time (every change committed before it has a final verdict) is "
        "unknown or older than this: 90s, 5m, 1h (docs/debezium.md)",
    )
    report.add_argument(
        "--web",
        metavar="URL",
        help="also ask a worker's GET /dq/status (e.g. http://worker:6066): lag, and workers that do not answer",
    )
    report.set_defaults(run=run)


def _rate(text: str) -> float:
    from dqhash.core.run_report import RateError, parse_rate

    try:
        return parse_rate(text)
    except RateError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    from dqhash.core import run_report
    from dqhash.core.snapshot_report import summaries
    from dqhash.core.timeutil import now_ms

    period = period_seconds(args.since, "report")
    settings = load_settings("report") if period is not None else None
    if period is None or settings is None:
        return EXIT_USAGE
    now = now_ms()
    since = now - period * 1000
    status = _worker_status(args.web.rstrip("/"), settings.web_token.reveal()) if args.web else None
    try:
        audit, windows, snapshots = asyncio.run(_read(settings, since))
    except Exception as exc:
        return fail("report", f"cannot read the topics ({type(exc).__name__}: {exc}); is DQHASH_BROKER right?")
    within = period_seconds(args.verified_within, "report", "--verified-within") if args.verified_within else None
    if args.verified_within and within is None:
        return EXIT_USAGE
    gates = run_report.Gates(
        args.max_mismatch_rate, args.max_missing_rate, args.max_dlq_rate, args.min_match_rate, within
    )
    if args.table is not None and settings.catalog.get(args.table) is None:
        known = ", ".join(settings.catalog.known()[:10])
        return fail("report", f"no table {args.table!r} in the catalog (DQHASH_CATALOG); known: {known}", EXIT_USAGE)
    report = run_report.build(
        audit,
        windows,
        summaries(snapshots, settings.partitions, now),
        settings.partitions,
        since,
        now,
        gates,
        status,
        args.table,
        settings.catalog.default or "default",
    )
    print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() if args.json else run_report.render(report))
    return {run_report.PASSED: EXIT_OK, run_report.NO_GATES: EXIT_NO_GATES}.get(report["result"], EXIT_BREACHED)


async def _read(settings: Any, since: int) -> tuple[list, list, list]:
    from dqhash.kafka.snapshot_log import read_snapshot_records
    from dqhash.kafka.topic_reader import read_records

    audit, windows = await asyncio.gather(
        read_records(settings, settings.audit_topic, since), read_records(settings, settings.metrics_topic, since)
    )
    return [r.value for r in audit.records], [r.value for r in windows.records], await read_snapshot_records(settings)


def _worker_status(url: str, token: str) -> dict[str, Any]:
    """A worker's ``GET /dq/status``, or why it could not be had (the report shows it as a problem)."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"{url}/dq/status", headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return dict(orjson.loads(response.read()))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return {"error": f"the worker at {url} did not answer GET /dq/status ({exc})"}
