"""The ``dqhash`` command: thin shells over the library, one subcommand each."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any, BinaryIO, TextIO

import orjson

from dqhash.core.canonical import CanonicalError
from dqhash.core.hashing import ALGORITHMS, STRATEGIES, HashConfigError, RowHasher, parse_type_declarations
from dqhash.core.jsontext import loads_exact

EXIT_OK, EXIT_BAD_INPUT, EXIT_USAGE = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    # SIGTERM (docker stop, kill, a test harness) unwinds like Ctrl-C, so every command
    # cleans up what it started (the embedded broker, workers, temporary state).
    signal.signal(signal.SIGTERM, _terminate)
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    return int(args.run(args) or 0)


def _terminate(signum, frame) -> None:
    raise KeyboardInterrupt


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dqhash", description=__doc__)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    hash_cmd = commands.add_parser(
        "hash",
        help="hash JSON Lines rows from stdin with the canonical row hash",
        description="Read one JSON object (a row) per line on stdin; print one hash per line "
        "(strategy:hex), or with --columns one JSON object with per-column digests. "
        "A bad line is reported on stderr by number, printed as an empty line, and makes "
        "the exit status 1 once every other line is hashed.",
    )
    hash_cmd.add_argument("--strategy", default="v2", help=f"hash strategy: {' | '.join(STRATEGIES)} (default v2)")
    hash_cmd.add_argument("--algorithm", default="sha256", help=f"digest algorithm: {' | '.join(ALGORITHMS)}")
    hash_cmd.add_argument("--fields", help="comma-separated columns to hash (default: every column of the row)")
    hash_cmd.add_argument(
        "--types",
        help="comma-separated column=cqltype declarations, e.g. ts=timestamp,amount=decimal "
        "(JSON has no timestamp or decimal type; declare such columns so both sides agree)",
    )
    hash_cmd.add_argument("--columns", action="store_true", help="print JSON with per-column digests")
    hash_cmd.add_argument(
        "--allow-absent",
        action="store_true",
        help="hash a column named in --fields or --types that the first row lacks as null, rather than refusing "
        "to start (for rows that omit null columns)",
    )
    hash_cmd.set_defaults(run=_run_hash)

    demo = commands.add_parser(
        "demo",
        help="run the whole pipeline on a mixed workload and check every outcome (embedded broker "
        "unless DQHASH_BROKER is set)",
    )
    demo.add_argument("--events", type=int, default=10_000, help="on-prem records to send (default 10000)")
    demo.set_defaults(run=lambda args: _demo(args.events))

    broker = commands.add_parser("broker", help="run the embedded Kafka-compatible broker in the foreground")
    broker.add_argument("--port", type=int, default=9092, help="loopback port (default 9092)")
    broker.set_defaults(run=lambda args: _broker(args.port))

    topics = commands.add_parser("topics", help="manage dqhash's Kafka topics")
    topic_commands = topics.add_subparsers(title="topics commands", metavar="ACTION")
    create = topic_commands.add_parser(
        "create", help="create every topic with co-partitioned counts and configs; verify existing ones"
    )
    create.set_defaults(run=lambda args: _topics_create())

    bench = commands.add_parser(
        "bench", help="one worker end to end on the embedded broker (or DQHASH_BROKER), with same-run floors"
    )
    bench.add_argument("--pairs", type=int, default=200_000, help="on-prem events to pre-load (default 200,000)")
    bench.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    bench.add_argument(
        "--snapshot-rows",
        type=int,
        help="instead: a whole-table snapshot run of this many rows (rows/s, peak RSS; docs/snapshots.md)",
    )
    bench.add_argument(
        "--workers", type=int, default=1, help="also run on this many workers, as a ratio to one (default 1)"
    )
    bench.set_defaults(run=lambda args: _bench(args.pairs, args.json, args.snapshot_rows, args.workers))

    _snapshot_parser(commands)

    cassandra = commands.add_parser("cassandra", help="the Cassandra audit tables (docs/cassandra-audit.cql)")
    cassandra_actions = cassandra.add_subparsers(title="cassandra commands", metavar="ACTION")
    migrate = cassandra_actions.add_parser(
        "migrate",
        help="add to existing audit tables the columns the audit record has gained (ALTER TABLE ... ADD); "
        "idempotent. Reads DQHASH_CASSANDRA_* and DQHASH_CASSANDRA_AUDIT_KEYSPACE",
    )
    migrate.set_defaults(run=_cassandra_migrate)

    report = commands.add_parser(
        "report",
        help="what a period's audit, metrics and snapshot records say; exits 3 when a gate is breached",
        description="Reads the audit, metrics and snapshots topics for the period and prints counts by status, the "
        "match rate, the top differing columns, dead-letter reasons, recheck outcomes and snapshot runs. Anything "
        "incomplete is listed as a problem and makes the result 'incomplete': no gate passes on missing data. "
        "Rates are fractions (0.01) or percents with their sign (1%%). Exit status: 0 every gate passed, "
        "3 a gate was breached or the report is incomplete, 4 no gate was given (nothing was checked), "
        "1 the topics could not be read, 2 a usage error.",
    )
    report.add_argument("--since", default="24h", help="the period: 90m, 24h, 7d ... (default 24h)")
    report.add_argument("--json", action="store_true", help="print JSON instead of text")
    for flag, meaning in (
        ("--max-mismatch-rate", "fail above this share of MISMATCH / CLOUD_DRIFT"),
        ("--max-missing-rate", "fail above this share of MISSING_CLOUD / CLOUD_VANISHED"),
        ("--max-dlq-rate", "fail above this share of dead-lettered records"),
        ("--min-match-rate", "fail below this match rate"),
    ):
        report.add_argument(flag, type=_rate, metavar="RATE", help=f"{meaning} (0.01 or 1%%)")
    report.add_argument(
        "--web",
        metavar="URL",
        help="also ask a worker's GET /dq/status (e.g. http://worker:6066): lag, and workers that do not answer",
    )
    report.set_defaults(run=_report)

    bench_domain = commands.add_parser(
        "bench-domain", help="throughput of parse, hash and classify on one core, next to a bare orjson+sha256 floor"
    )
    bench_domain.add_argument("--records", type=int, default=100_000, help="records per measurement (default 100000)")
    bench_domain.add_argument("--json", action="store_true", help="print one JSON object")
    bench_domain.set_defaults(run=lambda args: _bench_domain(args.records, args.json))
    return parser


def _snapshot_parser(commands: Any) -> None:
    snapshot = commands.add_parser(
        "snapshot",
        help="prove the whole table: publish the on-prem side, scan the cloud side, report (docs/snapshots.md)",
    )
    actions = snapshot.add_subparsers(title="snapshot commands", metavar="ACTION")

    def hashing(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--snapshot-id", required=True, help="the run's id (letters, digits, . _ : -)")
        parser.add_argument("--splits", type=int, default=256, help="token ranges the ring is split into (default 256)")
        parser.add_argument(
            "--ranges-from",
            metavar="SNAPSHOT_ID",
            help="cover only the token ranges in which that earlier run found differences",
        )
        parser.add_argument("--strategy", default=None, help="hash strategy (default DQHASH_HASH_STRATEGY)")
        parser.add_argument("--fields", help="columns to hash (default DQHASH_HASH_COLUMNS, else every column)")
        parser.add_argument("--types", help="column=cqltype declarations (default DQHASH_HASH_TYPES)")

    publish = actions.add_parser(
        "publish", help="hash an on-prem export (JSON Lines or CSV) by the spec and publish it to Topic-1"
    )
    publish.add_argument("export", help="the export file (JSON Lines, or CSV with a header); - for stdin")
    publish.add_argument("--format", choices=("jsonl", "csv"), help="default: from the file name (.csv), else jsonl")
    publish.add_argument("--key-columns", required=True, help="the primary key columns, in key order")
    publish.add_argument(
        "--partition-key", help="the Cassandra partition key columns (default: the key columns), for token ranges"
    )
    publish.add_argument("--as-of", help="when the export was taken (ISO-8601 or epoch ms; default now)")
    hashing(publish)
    publish.set_defaults(run=_snapshot_publish)

    scan = actions.add_parser(
        "scan", help="read the whole cloud table by token range, hash it and publish it to Topic-2"
    )
    hashing(scan)
    scan.add_argument("--parallel", type=int, default=4, help="token ranges read at once (default 4)")
    scan.add_argument("--fetch-size", type=int, default=1000, help="rows per page (default 1000)")
    scan.add_argument(
        "--rows-per-second", type=float, default=5000, help="most rows read a second, all ranges together (0: no limit)"
    )
    scan.add_argument("--checkpoint", help="file of finished ranges (default ./dqhash-scan-<id>.json): resumes a scan")
    scan.set_defaults(run=_snapshot_scan)

    report = actions.add_parser("report", help="a run's report (from the snapshots topic)")
    report.add_argument("snapshot_id", nargs="?", help="the run (default: list every run)")
    report.add_argument("--json", action="store_true", help="print JSON instead of a table")
    report.set_defaults(run=_snapshot_report)

    listing = actions.add_parser("list", help="every run with its state: running, stalled, complete, failed, abandoned")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.set_defaults(run=_snapshot_report, snapshot_id=None)

    abandon = actions.add_parser(
        "abandon",
        help="end a run that will not complete: shown as abandoned, no longer counted against dqhash report's gates",
    )
    abandon.add_argument("snapshot_id", help="the run to abandon")
    abandon.add_argument("--reason", required=True, help="why, for whoever reads the report later")
    abandon.set_defaults(run=_snapshot_abandon)


#: ``dqhash report``: a gate breached or the report incomplete; no gate given (nothing was checked)
EXIT_BREACHED, EXIT_NO_GATES = 3, 4
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _rate(text: str) -> float:
    from dqhash.core.run_report import RateError, parse_rate

    try:
        return parse_rate(text)
    except RateError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _report(args: argparse.Namespace) -> int:
    import asyncio

    from dqhash import settings as settings_module
    from dqhash.core import run_report
    from dqhash.core.snapshot_report import summaries
    from dqhash.core.timeutil import now_ms
    from dqhash.kafka.snapshot_log import read_snapshot_records
    from dqhash.kafka.topic_reader import read_records

    text = args.since.strip().lower()
    if len(text) < 2 or text[-1] not in _UNITS or not text[:-1].isdigit() or int(text[:-1]) <= 0:
        print(f"dqhash report: --since {args.since!r}: expected a duration such as 90m, 24h or 7d", file=sys.stderr)
        return EXIT_USAGE
    try:
        settings = settings_module.load()
    except settings_module.SettingsError as exc:
        print(f"dqhash report: {exc}", file=sys.stderr)
        return EXIT_USAGE
    now = now_ms()
    since = now - int(text[:-1]) * _UNITS[text[-1]] * 1000

    async def read() -> tuple[list, list, list]:
        audit, windows = await asyncio.gather(
            read_records(settings, settings.audit_topic, since), read_records(settings, settings.metrics_topic, since)
        )
        return (
            [r.value for r in audit.records],
            [r.value for r in windows.records],
            await read_snapshot_records(settings),
        )

    status = None
    if args.web:
        status = _worker_status(args.web.rstrip("/"), settings.web_token.reveal())
    try:
        audit, windows, snapshots = asyncio.run(read())
    except Exception as exc:
        print(
            f"dqhash report: cannot read the topics ({type(exc).__name__}: {exc}); is DQHASH_BROKER right?",
            file=sys.stderr,
        )
        return 1
    gates = run_report.Gates(args.max_mismatch_rate, args.max_missing_rate, args.max_dlq_rate, args.min_match_rate)
    report = run_report.build(
        audit, windows, summaries(snapshots, settings.partitions, now), settings.partitions, since, now, gates, status
    )
    print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() if args.json else run_report.render(report))
    return {run_report.PASSED: EXIT_OK, run_report.NO_GATES: EXIT_NO_GATES}.get(report["result"], EXIT_BREACHED)


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


def _snapshot_setup(args: argparse.Namespace) -> tuple[Any, Any, set[int] | None] | int:
    """Settings, hasher and the ranges to cover, or an exit status after saying what is wrong."""
    import asyncio

    from dqhash import settings as settings_module
    from dqhash.core.contracts import Rejection, check_snapshot_id

    try:
        settings = settings_module.load()
    except settings_module.SettingsError as exc:
        print(f"dqhash snapshot: {exc}", file=sys.stderr)
        return EXIT_USAGE
    checked = check_snapshot_id(args.snapshot_id)
    if isinstance(checked, Rejection):
        print(f"dqhash snapshot: --snapshot-id: {checked.message}", file=sys.stderr)
        return EXIT_USAGE
    if args.splits < 1 or args.splits > 1_000_000:
        print("dqhash snapshot: --splits must be between 1 and 1000000", file=sys.stderr)
        return EXIT_USAGE
    fields = _split(args.fields) if args.fields else settings.hash_columns
    types = args.types if args.types is not None else settings.hash_types
    try:
        hasher = RowHasher(args.strategy or settings.hash_strategy, fields, parse_type_declarations(types))
    except (HashConfigError, CanonicalError) as exc:
        print(f"dqhash snapshot: {exc}", file=sys.stderr)
        return EXIT_USAGE
    only = None
    if args.ranges_from:
        from dqhash.core.snapshot_report import build_report
        from dqhash.core.timeutil import now_ms
        from dqhash.kafka.snapshot_log import read_snapshot_records

        records = asyncio.run(read_snapshot_records(settings))
        earlier = build_report(records, args.ranges_from, settings.partitions, now_ms())
        if earlier["splits"] not in (None, args.splits):
            print(
                f"dqhash snapshot: run {args.ranges_from} used --splits {earlier['splits']}; give the same",
                file=sys.stderr,
            )
            return EXIT_USAGE
        only = set(earlier["ranges_with_differences"])
        print(
            f"dqhash snapshot: covering the {len(only)} token ranges {sorted(only)} of {args.ranges_from}",
            file=sys.stderr,
        )
    return settings, hasher, only


def _snapshot_publish(args: argparse.Namespace) -> int:
    import asyncio
    from pathlib import Path

    from dqhash.core.timeutil import TimestampError, now_ms, parse_timestamp
    from dqhash.tools.snapshot.publish import publish

    setup = _snapshot_setup(args)
    if isinstance(setup, int):
        return setup
    settings, hasher, only = setup
    try:
        as_of = parse_timestamp(args.as_of) if args.as_of else now_ms()
    except TimestampError as exc:
        print(f"dqhash snapshot publish: --as-of: {exc}", file=sys.stderr)
        return EXIT_USAGE
    key_columns = _split(args.key_columns) or []
    partition_key = _split(args.partition_key) if args.partition_key else key_columns
    path = None if args.export == "-" else Path(args.export)
    if path is not None and not path.is_file():
        print(f"dqhash snapshot publish: no such file: {path}", file=sys.stderr)
        return EXIT_USAGE
    fmt = args.format or ("csv" if path is not None and path.suffix.lower() == ".csv" else "jsonl")
    types = dict(parse_type_declarations(args.types if args.types is not None else settings.hash_types) or {})
    from dqhash.tools.snapshot.publish import ColumnsError

    with open(path, "rb") if path is not None else os.fdopen(os.dup(0), "rb") as stream:
        try:
            run = publish(
                settings,
                path,
                stream,
                fmt,
                args.snapshot_id,
                hasher,
                key_columns,
                partition_key or [],
                types,
                args.splits,
                only,
                as_of,
            )
            errors = asyncio.run(run)
        except ColumnsError as exc:
            print(f"dqhash snapshot publish: {exc}. Nothing was published.", file=sys.stderr)
            return EXIT_USAGE
    return EXIT_BAD_INPUT if errors else EXIT_OK


def _snapshot_scan(args: argparse.Namespace) -> int:
    import asyncio
    from pathlib import Path

    from dqhash.cloud.scanner import CassandraRangeScan, SQLiteRangeScan
    from dqhash.tools.snapshot.scan import Checkpoint, scan

    setup = _snapshot_setup(args)
    if isinstance(setup, int):
        return setup
    settings, hasher, only = setup
    try:
        checkpoint = Checkpoint(
            Path(args.checkpoint or f"dqhash-scan-{args.snapshot_id}.json"), args.snapshot_id, args.splits
        )
        if settings.cloud_store == "sqlite":
            types = dict(parse_type_declarations(args.types if args.types is not None else settings.hash_types) or {})
            source = SQLiteRangeScan(
                settings.sqlite_path, settings.sqlite_table, settings.sqlite_key_columns, types, args.fetch_size
            )
        else:
            from dqhash.cloud.factory import cassandra_session

            source = CassandraRangeScan(
                cassandra_session(settings),
                settings.cassandra_keyspace,
                settings.cassandra_table,
                settings.cassandra_consistency,
                args.fetch_size,
                max(settings.cassandra_timeout_s, 10.0),
                settings.cassandra_retries,
            )
    except Exception as exc:
        print(f"dqhash snapshot scan: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        failed = asyncio.run(
            scan(
                settings,
                source,
                hasher,
                args.snapshot_id,
                args.splits,
                only,
                args.parallel,
                args.rows_per_second,
                checkpoint,
            )
        )
    finally:
        source.close()
    if failed:
        print(
            f"dqhash snapshot scan: {failed} token range(s) failed; run the same command again to read them",
            file=sys.stderr,
        )
        return 1
    return EXIT_OK


def _snapshot_report(args: argparse.Namespace) -> int:
    import asyncio

    from dqhash import settings as settings_module
    from dqhash.core.snapshot_report import build_report, render_table, summaries
    from dqhash.core.timeutil import now_ms
    from dqhash.kafka.snapshot_log import read_snapshot_records

    try:
        settings = settings_module.load()
        records = asyncio.run(read_snapshot_records(settings))
    except settings_module.SettingsError as exc:
        print(f"dqhash snapshot report: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:
        print(f"dqhash snapshot report: cannot read the snapshots topic ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 1
    if not args.snapshot_id:
        listing = summaries(records, settings.partitions, now_ms())
        if args.json:
            print(orjson.dumps(listing, option=orjson.OPT_INDENT_2).decode())
        else:
            for row in listing:
                print(
                    f"{row['snapshot_id']:32s} {row['state']:9s} {row['rows']['onprem']:>10,} on-prem "
                    f"{row['rows']['cloud']:>10,} cloud  {row['counts']}"
                )
        return EXIT_OK
    report = build_report(records, args.snapshot_id, settings.partitions, now_ms())
    if not any(r.get("snapshot_id") == args.snapshot_id for r in records):
        print(
            f"dqhash snapshot report: no records of snapshot {args.snapshot_id!r} on {settings.snapshot_topic}",
            file=sys.stderr,
        )
        return 1
    print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() if args.json else render_table(report))
    return EXIT_OK


def _cassandra_migrate(args: argparse.Namespace) -> int:
    from dqhash import settings as settings_module
    from dqhash.cloud.audit_sink import migrate
    from dqhash.cloud.factory import cassandra_session

    try:
        settings = settings_module.load()
    except settings_module.SettingsError as exc:
        print(f"dqhash cassandra migrate: {exc}", file=sys.stderr)
        return EXIT_USAGE
    keyspace = settings.cassandra_audit_keyspace
    try:
        session = cassandra_session(settings)
    except Exception as exc:
        print(
            f"dqhash cassandra migrate: cannot reach Cassandra at {','.join(settings.cassandra_contact_points)}:"
            f"{settings.cassandra_port} ({type(exc).__name__}); check DQHASH_CASSANDRA_CONTACT_POINTS, "
            "DQHASH_CASSANDRA_PORT and the DQHASH_CASSANDRA_USERNAME / PASSWORD / TLS settings",
            file=sys.stderr,
        )
        return 1
    try:
        ran = migrate(session, keyspace)
    except LookupError as exc:
        print(f"dqhash cassandra migrate: {exc}", file=sys.stderr)
        return 1
    finally:
        session.cluster.shutdown()
    for statement in ran:
        print(statement)
    print(
        f"dqhash cassandra migrate: {len(ran)} column(s) added in {keyspace}"
        if ran
        else f"dqhash cassandra migrate: the audit tables in {keyspace} are current",
        file=sys.stderr,
    )
    return EXIT_OK


def _snapshot_abandon(args: argparse.Namespace) -> int:
    import asyncio
    import getpass

    from dqhash import settings as settings_module
    from dqhash.core.snapshot_report import abandon_record
    from dqhash.core.timeutil import now_ms
    from dqhash.kafka.security import connect_args
    from dqhash.kafka.snapshot_log import read_snapshot_records
    from dqhash.tools.runner import produce

    if not args.reason.strip():
        print("dqhash snapshot abandon: --reason must say why", file=sys.stderr)
        return EXIT_USAGE
    try:
        settings = settings_module.load()
        records = asyncio.run(read_snapshot_records(settings))
        if not any(r.get("snapshot_id") == args.snapshot_id for r in records):
            print(f"dqhash snapshot abandon: no run {args.snapshot_id!r} on {settings.snapshot_topic}", file=sys.stderr)
            return 1
        record = abandon_record(args.snapshot_id, args.reason.strip(), getpass.getuser(), now_ms())
        key = f"abandon:{args.snapshot_id}".encode()
        asyncio.run(produce(connect_args(settings), settings.snapshot_topic, [(key, orjson.dumps(record))]))
    except settings_module.SettingsError as exc:
        print(f"dqhash snapshot abandon: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:
        print(
            f"dqhash snapshot abandon: cannot reach the snapshots topic ({type(exc).__name__}: {exc}); is DQHASH_BROKER right?",
            file=sys.stderr,
        )
        return 1
    print(f"dqhash snapshot abandon: {args.snapshot_id} is abandoned ({record['reason']})", file=sys.stderr)
    return EXIT_OK


def _run_hash(args: argparse.Namespace, stdin: BinaryIO | None = None, stdout: TextIO | None = None) -> int:
    stdin = stdin or sys.stdin.buffer  # bytes: invalid UTF-8 is one line's error, not the end of the input
    stdout = stdout or sys.stdout
    try:
        hasher = RowHasher(
            strategy=args.strategy,
            fields=_split(args.fields),
            types=parse_type_declarations(args.types),
            algorithm=args.algorithm,
        )
    except (HashConfigError, CanonicalError) as exc:
        print(f"dqhash hash: {exc}", file=sys.stderr)
        return EXIT_USAGE
    bad = 0
    checked = args.allow_absent
    for number, line in enumerate(stdin, start=1):
        try:
            if not checked:  # the first row says whether the named columns exist: before any output
                checked = _first_row_columns(line, hasher, args)
            out = _hash_line(hasher, line, number, args.columns)
        except _AbsentColumns as exc:
            print(
                f"dqhash hash: {exc}. Nothing was hashed (--allow-absent hashes absent columns as null).",
                file=sys.stderr,
            )
            return EXIT_USAGE
        except RecursionError:  # defensive: the hasher reaches every depth the spec allows (512)
            bad += 1
            print(f"dqhash hash: line {number}: nested too deeply to hash", file=sys.stderr)
            out = ""
        except Exception as exc:  # JsonTextError and CanonicalError are ValueErrors; nothing may stop the lines
            bad += 1
            print(f"dqhash hash: line {number}: {exc}", file=sys.stderr)
            out = ""  # every input line has its output line, so the two stay aligned
        stdout.write(out + "\n")
    if bad:
        print(f"dqhash hash: {bad} bad line(s); the others were hashed", file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_OK


class _AbsentColumns(ValueError):
    """Columns named in --fields or --types that the first row does not have."""


def _first_row_columns(line: bytes, hasher: RowHasher, args: argparse.Namespace) -> bool:
    """Check --fields and --types against the first row that is a JSON object; True once checked."""
    from dqhash.core.input_columns import absent_columns

    try:
        row = loads_exact(line)
    except ValueError:
        return False  # its own error is reported as that line's; the next row is checked
    if not isinstance(row, dict):
        return False
    named = {"--fields": hasher.fields, "--types": list(hasher.types)}
    problem = absent_columns(row, named, "the first row")
    if problem is not None:
        raise _AbsentColumns(problem)
    return True


def _hash_line(hasher: RowHasher, line: bytes, number: int, with_columns: bool) -> str:
    if not line.strip(b" \t\r\n"):
        raise ValueError("blank line; expected a JSON object")
    row = loads_exact(line)
    if not isinstance(row, dict):
        raise ValueError(f"expected a JSON object, got {type(row).__name__}")
    digest = hasher.hash(row)
    if not with_columns:
        return str(digest)
    return orjson.dumps({"line": number, "hash": str(digest), "columns": hasher.column_digests(row)}).decode()


def _demo(events: int) -> int:
    if events < 100:
        print("dqhash demo: --events must be at least 100 (every scenario needs a share)", file=sys.stderr)
        return EXIT_USAGE
    from dqhash.tools import demo

    return demo.main(events)


def _broker(port: int) -> int:
    from dqhash.kafka.embedded_broker import BrokerError, EmbeddedBroker

    broker = EmbeddedBroker(port=port)
    try:
        broker.start()
    except BrokerError as exc:
        print(f"dqhash broker: {exc}", file=sys.stderr)
        return 1
    print(f"embedded broker listening: DQHASH_BROKER={broker.url}  (Ctrl-C to stop; memory only)", flush=True)
    try:
        broker.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        broker.stop()
    return 0


def _topics_create() -> int:
    import asyncio

    from dqhash import settings as settings_module
    from dqhash.kafka.topics import TopicMismatch, create_topics, topic_plan

    try:
        settings = settings_module.load()
        created = asyncio.run(create_topics(settings))
    except (settings_module.SettingsError, TopicMismatch) as exc:
        print(f"dqhash topics create: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # broker unreachable and the like
        print(
            f"dqhash topics create: cannot reach the broker at {os.environ.get('DQHASH_BROKER', 'kafka://127.0.0.1:9092')}"
            f" ({type(exc).__name__}: {exc}); is DQHASH_BROKER right?",
            file=sys.stderr,
        )
        return 1
    for spec in topic_plan(settings):
        state = "created" if spec.name in created else "exists"
        print(f"{state:8s} {spec.name:40s} partitions={spec.partitions} {spec.role}")
    return EXIT_OK


def _bench(pairs: int, as_json: bool, snapshot_rows: int | None = None, workers: int = 1) -> int:
    if not 1 <= workers <= 8:
        print("dqhash bench: --workers must be between 1 and 8", file=sys.stderr)
        return EXIT_USAGE
    if snapshot_rows is not None:
        if snapshot_rows < 1000:
            print("dqhash bench: --snapshot-rows must be at least 1000", file=sys.stderr)
            return EXIT_USAGE
        from dqhash.tools.bench import snapshot

        return snapshot.main(snapshot_rows, workers, as_json)
    if pairs < 1000:
        print("dqhash bench: --pairs must be at least 1000", file=sys.stderr)
        return EXIT_USAGE
    from dqhash.tools.bench import pipeline

    return pipeline.main(pairs, as_json, workers)


def _bench_domain(records: int, as_json: bool) -> int:
    from dqhash.tools.bench import domain  # imported on use: it builds large sample data

    return domain.main(records, as_json)


def _split(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [part.strip() for part in text.split(",")]


if __name__ == "__main__":
    sys.exit(main())
