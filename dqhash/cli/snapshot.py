"""``dqhash snapshot``: prove the whole table. Publish the on-prem side, scan the cloud side, report, list, abandon."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import orjson

from dqhash.cli.common import (
    CLOUD_STORE,
    EXIT_BAD_INPUT,
    EXIT_OK,
    EXIT_USAGE,
    HASHING,
    KAFKA,
    Interrupted,
    command,
    fail,
    load_settings,
    run_until_signal,
    split,
)
from dqhash.core.canonical import CanonicalError
from dqhash.core.hashing import HashConfigError, RowHasher, parse_type_declarations
from dqhash.core.range_digests import MAX_CHUNKS_PER_RANGE

REPORTS = (*KAFKA, "DQHASH_SNAPSHOT_TOPIC", "DQHASH_PARTITIONS", "DQHASH_CATALOG")
PUBLISHES = (*REPORTS, "DQHASH_ONPREM_TOPIC", *HASHING, "DQHASH_SOURCE_URL", "DQHASH_SOURCE_PASSWORD")
SCANS = (*REPORTS, "DQHASH_CLOUD_TOPIC", *HASHING, *CLOUD_STORE)


def add(commands: Any) -> None:
    snapshot = command(
        commands,
        "snapshot",
        "prove the whole table: publish the on-prem side, scan the cloud side, report (docs/snapshots.md)",
    )
    actions = snapshot.add_subparsers(title="snapshot commands", metavar="ACTION")

    publish = command(
        actions,
        "publish",
        "hash the on-prem table (an export, or the source database) by the spec and publish it to Topic-1",
        PUBLISHES,
    )
    publish.add_argument(
        "export", nargs="?", help="the export file (JSON Lines, or CSV with a header); - for stdin; or give --source"
    )
    publish.add_argument(
        "--source",
        help="read the --table from this database instead (postgresql://user@host:5432/db; default "
        "DQHASH_SOURCE_URL; the password from DQHASH_SOURCE_PASSWORD; docs/source.md)",
    )
    publish.add_argument(
        "--source-table", help="with --source: the table in the source database (default: the --table's name)"
    )
    publish.add_argument("--fetch-rows", type=int, default=2000, help="with --source: rows per fetch (default 2000)")
    publish.add_argument("--format", choices=("jsonl", "csv"), help="default: from the file name (.csv), else jsonl")
    publish.add_argument("--key-columns", help="the primary key columns, in key order (default: the --table's key)")
    publish.add_argument(
        "--partition-key", help="the Cassandra partition key columns (default: the key columns), for token ranges"
    )
    publish.add_argument("--as-of", help="when the export was taken (ISO-8601 or epoch ms; default now)")
    _hashing_options(publish)
    publish.set_defaults(run=run_publish)

    scan = command(
        actions, "scan", "read the whole cloud table by token range, hash it and publish it to Topic-2", SCANS
    )
    _hashing_options(scan)
    scan.add_argument("--parallel", type=int, default=4, help="token ranges read at once (default 4)")
    scan.add_argument("--fetch-size", type=int, default=1000, help="rows per page (default 1000)")
    scan.add_argument(
        "--rows-per-second", type=float, default=5000, help="most rows read a second, all ranges together (0: no limit)"
    )
    scan.add_argument("--checkpoint", help="file of finished ranges (default ./dqhash-scan-<id>.json): resumes a scan")
    scan.add_argument(
        "--all-tables",
        action="store_true",
        help="scan every table of the catalog, each as the run <snapshot-id>:<table>, under one rows/s budget "
        "and one checkpoint; with --ranges-from, only the tables and ranges that differed",
    )
    scan.set_defaults(run=run_scan)

    report = command(actions, "report", "a run's report (from the snapshots topic)", REPORTS)
    report.add_argument("snapshot_id", nargs="?", help="the run (default: list every run)")
    report.add_argument("--json", action="store_true", help="print JSON instead of a table")
    report.set_defaults(run=run_report)

    listing = command(
        actions, "list", "every run with its state: running, stalled, complete, failed, abandoned", REPORTS
    )
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.set_defaults(run=run_report, snapshot_id=None)

    abandon = command(
        actions,
        "abandon",
        "end a run that will not complete: shown as abandoned, no longer counted against dqhash report's gates",
        REPORTS,
    )
    abandon.add_argument("snapshot_id", help="the run to abandon")
    abandon.add_argument("--reason", required=True, help="why, for whoever reads the report later")
    abandon.set_defaults(run=run_abandon)


def _hashing_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--snapshot-id", required=True, help="the run's id (letters, digits, . _ : -)")
    parser.add_argument("--splits", type=int, default=256, help="token ranges the ring is split into (default 256)")
    parser.add_argument(
        "--ranges-from",
        metavar="SNAPSHOT_ID",
        help="cover only the token ranges in which that earlier run found differences",
    )
    parser.add_argument(
        "--chunks-per-range",
        type=int,
        default=0,
        help="prove the run chunk by chunk: cut each token range into this many chunks, digest every row once, and "
        "publish row by row only the chunks whose digests differ (give both sides the same; default 0: every row "
        "row by row; docs/snapshots.md)",
    )
    parser.add_argument(
        "--digest-wait",
        type=float,
        default=600.0,
        help="with --chunks-per-range: seconds to wait for the other side's digests (default 600)",
    )
    parser.add_argument(
        "--table",
        help="the catalog table of this side (DQHASH_CATALOG): its rows name it, are hashed by its rules, and "
        "form the run <snapshot-id>:<table>",
    )
    parser.add_argument("--strategy", default=None, help="hash strategy (default DQHASH_HASH_STRATEGY)")
    parser.add_argument("--fields", help="columns to hash (default DQHASH_HASH_COLUMNS, else every column)")
    parser.add_argument("--types", help="column=cqltype declarations (default DQHASH_HASH_TYPES)")


def _setup(args: argparse.Namespace) -> tuple[Any, RowHasher, set[int] | None] | int:
    """Settings, hasher and the ranges to cover, or an exit status after saying what is wrong. With ``--table``,
    ``args.spec`` is the table's catalog entry, and its rules are the defaults of the hashing options."""
    from dqhash.core.contracts import check_snapshot_id
    from dqhash.core.input_records import Rejection
    from dqhash.tools.snapshot.common import table_run

    settings = load_settings("snapshot")
    if settings is None:
        return EXIT_USAGE
    checked = check_snapshot_id(table_run(args.snapshot_id, args.table))
    if isinstance(checked, Rejection):
        return fail("snapshot", f"--snapshot-id (with --table): {checked.message}", EXIT_USAGE)
    if args.splits < 1 or args.splits > 1_000_000:
        return fail("snapshot", "--splits must be between 1 and 1000000", EXIT_USAGE)
    if not 0 <= args.chunks_per_range <= MAX_CHUNKS_PER_RANGE or args.digest_wait <= 0:
        return fail(
            "snapshot",
            f"--chunks-per-range must be between 0 and {MAX_CHUNKS_PER_RANGE}, --digest-wait above 0",
            EXIT_USAGE,
        )
    from dqhash.tools.snapshot.digests import DigestPlan

    args.digests = DigestPlan(args.chunks_per_range, args.digest_wait) if args.chunks_per_range else None
    args.spec = settings.catalog.get(args.table) if args.table else None
    if args.table and args.spec is None:
        return fail("snapshot", f"no table {args.table!r} in the catalog (DQHASH_CATALOG)", EXIT_USAGE)
    try:
        hasher = _hasher(args, settings)
    except (HashConfigError, CanonicalError) as exc:
        return fail("snapshot", str(exc), EXIT_USAGE)
    if not args.ranges_from or getattr(args, "all_tables", False):
        return settings, hasher, None
    only = _ranges_with_differences(settings, table_run(args.ranges_from, args.table), args.splits)
    return only if isinstance(only, int) else (settings, hasher, only)


def _hasher(args: argparse.Namespace, settings: Any) -> RowHasher:
    """The options' hasher; their defaults are the --table's catalog rules, else the DQHASH_HASH_* settings."""
    spec = args.spec
    if spec is not None:
        fields = split(args.fields) if args.fields else spec.columns
        types = parse_type_declarations(args.types) if args.types is not None else dict(spec.types)
        return RowHasher(args.strategy or spec.hash_strategy, fields, types)
    fields = split(args.fields) if args.fields else settings.hash_columns
    types = parse_type_declarations(args.types if args.types is not None else settings.hash_types)
    return RowHasher(args.strategy or settings.hash_strategy, fields, types)


def _ranges_with_differences(settings: Any, snapshot_id: str, splits: int) -> set[int] | int:
    from dqhash.core.snapshot_report import build_report
    from dqhash.core.timeutil import now_ms
    from dqhash.kafka.snapshot_log import read_snapshot_records

    records = asyncio.run(read_snapshot_records(settings))
    earlier = build_report(records, snapshot_id, settings.partitions, now_ms())
    if earlier["splits"] not in (None, splits):
        return fail("snapshot", f"run {snapshot_id} used --splits {earlier['splits']}; give the same", EXIT_USAGE)
    only = set(earlier["ranges_with_differences"])
    print(f"dqhash snapshot: covering the {len(only)} token ranges {sorted(only)} of {snapshot_id}", file=sys.stderr)
    return only


def run_publish(args: argparse.Namespace) -> int:
    from dqhash.core.timeutil import TimestampError, now_ms, parse_timestamp

    setup = _setup(args)
    if isinstance(setup, int):
        return setup
    settings, hasher, only = setup
    try:
        as_of = parse_timestamp(args.as_of) if args.as_of else now_ms()
    except TimestampError as exc:
        return fail("snapshot publish", f"--as-of: {exc}", EXIT_USAGE)
    if args.source or (settings.source_url and args.export is None):
        return _publish_source(args, settings, hasher, only, as_of)
    if args.export is None:
        return fail(
            "snapshot publish", "give an export file (- for stdin), or --source to read the database", EXIT_USAGE
        )
    return _publish_export(args, settings, hasher, only, as_of)


def _publish_export(args: argparse.Namespace, settings: Any, hasher: RowHasher, only: Any, as_of: int) -> int:
    """An export file (JSON Lines or CSV, ``-`` for stdin): its key columns from the command line or the catalog."""
    from dqhash.tools.snapshot.common import table_run
    from dqhash.tools.snapshot.publish import ColumnsError, publish

    key_columns = split(args.key_columns) if args.key_columns else list(args.spec.key if args.spec else ())
    if not key_columns:
        return fail("snapshot publish", "give --key-columns (or a --table whose catalog entry has a key)", EXIT_USAGE)
    partition_key = split(args.partition_key) if args.partition_key else key_columns
    path = None if args.export == "-" else Path(args.export)
    if path is not None and not path.is_file():
        return fail("snapshot publish", f"no such file: {path}", EXIT_USAGE)
    fmt = args.format or ("csv" if path is not None and path.suffix.lower() == ".csv" else "jsonl")
    types = _declared_types(args, settings)
    with open(path, "rb") if path is not None else os.fdopen(os.dup(0), "rb") as stream:
        run = publish(
            settings,
            path,
            stream,
            fmt,
            table_run(args.snapshot_id, args.table),
            hasher,
            key_columns,
            partition_key or [],
            types,
            args.splits,
            only,
            as_of,
            args.table,
            args.digests,
        )
        return _published(settings, run, ColumnsError)


def _publish_source(args: argparse.Namespace, settings: Any, hasher: RowHasher, only: Any, as_of: int) -> int:
    """``--source``: the --table read from the source database, its key and types from the database's catalog
    where the table catalog does not declare them."""
    from dqhash.source.database import SourceError, SourceTable, source_url
    from dqhash.tools.snapshot.common import table_run
    from dqhash.tools.snapshot.publish import ColumnsError, publish_rows, source_input

    if args.export is not None:
        return fail("snapshot publish", "give an export file or --source, not both", EXIT_USAGE)
    name = args.source_table or args.table
    if not name:
        return fail(
            "snapshot publish", "--source reads one table: give --table (a catalog table) or --source-table", EXIT_USAGE
        )
    try:
        url = source_url(args.source or settings.source_url, settings.source_password.reveal())
        table = SourceTable(url, name, args.spec, max(1, args.fetch_rows)).open()
    except SourceError as exc:
        return fail("snapshot publish", str(exc), EXIT_USAGE)
    try:
        key = split(args.key_columns) if args.key_columns else list(table.key)
        types = {**table.types(), **_declared_types(args, settings)}
        excluded = set(args.spec.exclude) if args.spec is not None else set()
        fields = hasher.fields or [c for c in table.columns if c not in excluded]
        hasher = RowHasher(hasher.strategy, fields, types)
        partition_key = split(args.partition_key) if args.partition_key else key
        run = publish_rows(
            settings,
            source_input(table),
            table_run(args.snapshot_id, args.table),
            hasher,
            (key, partition_key, types),
            args.splits,
            only,
            as_of,
            args.table,
            args.digests,
        )
        return _published(settings, run, (ColumnsError, SourceError))
    finally:
        table.close()


def _published(settings: Any, run: Any, columns_error: type[Exception] | tuple[type[Exception], ...]) -> int:
    """Runs the publisher; its exit status, with one line saying what went wrong when something did."""
    from dqhash.tools.snapshot.digests import NOT_PROVEN

    try:
        errors = run_until_signal(run)
    except columns_error as exc:
        return fail("snapshot publish", f"{exc}. Nothing was published.", EXIT_USAGE)
    except NOT_PROVEN as exc:  # the digests of a run proven chunk by chunk: the message says what to do
        return fail("snapshot publish", str(exc))
    except Interrupted as stopped:
        return fail("snapshot publish", f"interrupted by {stopped}; run the same command again", stopped.exit_status)
    except Exception as exc:  # the broker, mostly: one line that names what to check, not a traceback
        return fail("snapshot publish", _broker_hint(settings, exc))
    return EXIT_BAD_INPUT if errors else EXIT_OK


def run_scan(args: argparse.Namespace) -> int:
    from dqhash.tools.snapshot.common import table_run
    from dqhash.tools.snapshot.digests import NOT_PROVEN
    from dqhash.tools.snapshot.scan import Checkpoint, scan

    if args.all_tables and args.table:
        return fail("snapshot scan", "give --table or --all-tables, not both", EXIT_USAGE)
    setup = _setup(args)
    if isinstance(setup, int):
        return setup
    settings, hasher, only = setup
    run_id = table_run(args.snapshot_id, args.table)
    try:
        checkpoint = Checkpoint(Path(args.checkpoint or f"dqhash-scan-{run_id}.json"), run_id, args.splits)
        if args.all_tables:
            return _scan_tables(settings, args, checkpoint)
        source = _cloud_source(settings, args, args.spec)
    except ValueError as exc:  # the checkpoint belongs to another run
        return fail("snapshot scan", str(exc), EXIT_USAGE)
    except Exception as exc:  # the cloud store cannot be reached or opened
        return fail("snapshot scan", _cloud_hint(settings, exc))
    try:
        failed = run_until_signal(
            scan(
                settings,
                source,
                hasher,
                run_id,
                args.splits,
                only,
                args.parallel,
                args.rows_per_second,
                checkpoint,
                args.spec,
                args.digests,
            )
        )
    except Interrupted as stopped:
        return fail(
            "snapshot scan",
            f"interrupted by {stopped}: the run is marked failed on the snapshots topic; run the same command "
            "again to resume from its checkpoint",
            stopped.exit_status,
        )
    except NOT_PROVEN as exc:  # the digests of a run proven chunk by chunk: the message says what to do
        return fail("snapshot scan", str(exc))
    except Exception as exc:
        return fail("snapshot scan", _broker_hint(settings, exc))
    finally:
        source.close()
    if failed:
        return fail("snapshot scan", f"{failed} token range(s) failed; run the same command again to read them")
    return EXIT_OK


def _broker_hint(settings: Any, exc: Exception) -> str:
    return (
        f"could not publish to the broker at {settings.broker} ({type(exc).__name__}: {exc}); is DQHASH_BROKER "
        "right, and are the DQHASH_KAFKA_* security settings the broker's? The same command resumes the run"
    )


def _cloud_hint(settings: Any, exc: Exception) -> str:
    if settings.cloud_store == "sqlite":
        where = f"the SQLite cloud copy {settings.sqlite_path} (DQHASH_SQLITE_PATH, DQHASH_SQLITE_TABLE)"
    else:
        where = (
            f"Cassandra at {','.join(settings.cassandra_contact_points)}:{settings.cassandra_port} "
            "(DQHASH_CASSANDRA_CONTACT_POINTS, DQHASH_CASSANDRA_PORT, DQHASH_CASSANDRA_USERNAME / PASSWORD / TLS_CA)"
        )
    return (
        f"cannot read the cloud table from {where}: {type(exc).__name__}: {exc}. Check those settings, or "
        "DQHASH_CLOUD_STORE (cassandra | sqlite)"
    )


def _declared_types(args: argparse.Namespace, settings: Any, spec: Any = None) -> dict[str, str]:
    spec = spec or getattr(args, "spec", None)
    if args.types is not None:
        return dict(parse_type_declarations(args.types) or {})
    return dict(spec.types) if spec is not None else dict(parse_type_declarations(settings.hash_types) or {})


def _cloud_source(settings: Any, args: argparse.Namespace, spec: Any = None, session: Any = None) -> Any:
    """The cloud table read by token range: Cassandra, or the SQLite stand-in (DQHASH_CLOUD_STORE); a catalog
    table's (``spec``) or the DQHASH_SQLITE_* / DQHASH_CASSANDRA_* settings' one table."""
    from dqhash.cloud.scanner import CassandraRangeScan, SQLiteRangeScan

    if settings.cloud_store == "sqlite":
        table, key = (spec.cloud_table, spec.key) if spec is not None else (settings.sqlite_table, None)
        key = key or settings.sqlite_key_columns
        return SQLiteRangeScan(settings.sqlite_path, table, key, _declared_types(args, settings, spec), args.fetch_size)
    from dqhash.cloud.factory import cassandra_session

    keyspace, table = (
        (spec.cloud_keyspace, spec.cloud_table)
        if spec is not None
        else (settings.cassandra_keyspace, settings.cassandra_table)
    )
    return CassandraRangeScan(
        session or cassandra_session(settings),
        keyspace,
        table,
        settings.cassandra_consistency,
        args.fetch_size,
        max(settings.cassandra_timeout_s, 10.0),
        settings.cassandra_retries,
    )


def _scan_tables(settings: Any, args: argparse.Namespace, checkpoint: Any) -> int:
    """``scan --all-tables``: every declared table of the catalog (or those that differed in --ranges-from)."""
    from dqhash.core.catalog_runs import catalog_report
    from dqhash.core.timeutil import now_ms
    from dqhash.tools.snapshot.digests import NOT_PROVEN
    from dqhash.tools.snapshot.tables import scan_tables

    specs = list(settings.catalog.tables.values())
    only = None
    if args.ranges_from:
        records = _read_records(settings, "snapshot scan")
        if isinstance(records, int):
            return records
        earlier = catalog_report(records, args.ranges_from, settings.partitions, now_ms())
        only = {table: set(ranges) for table, ranges in earlier["ranges_with_differences"].items()}
        print(
            f"dqhash snapshot scan: rescanning the {len(only)} table(s) that differed: {sorted(only)}", file=sys.stderr
        )
    shared: dict[str, Any] = {}

    def open_source(spec: Any) -> Any:
        if settings.cloud_store != "sqlite" and "session" not in shared:
            from dqhash.cloud.factory import cassandra_session

            shared["session"] = cassandra_session(settings)
        return _cloud_source(settings, args, spec, shared.get("session"))

    try:
        failed = run_until_signal(
            scan_tables(
                settings, specs, open_source, args.snapshot_id, args.splits, only, args.parallel,
                args.rows_per_second, checkpoint, args.digests,
            )
        )  # fmt: skip
    except Interrupted as stopped:
        return fail(
            "snapshot scan", f"interrupted by {stopped}: run the same command again to resume", stopped.exit_status
        )
    except NOT_PROVEN as exc:
        return fail("snapshot scan", str(exc))
    except Exception as exc:
        return fail("snapshot scan", _broker_hint(settings, exc))
    broken = {table: n for table, n in failed.items() if n}
    if broken:
        return fail("snapshot scan", f"token ranges failed in {broken}; run the same command again to read them")
    return EXIT_OK


def run_report(args: argparse.Namespace) -> int:
    from dqhash.core.snapshot_report import build_report, render_table
    from dqhash.core.timeutil import now_ms

    settings = load_settings("snapshot report")
    if settings is None:
        return EXIT_USAGE
    records = _read_records(settings, "snapshot report")
    if isinstance(records, int):
        return records
    if not args.snapshot_id:
        return _print_runs(records, settings.partitions, args.json)
    if not any(r.get("snapshot_id") == args.snapshot_id for r in records):
        from dqhash.core.catalog_runs import catalog_report, render_catalog_report, table_runs

        if not table_runs(records, args.snapshot_id):
            return fail("snapshot report", f"no records of snapshot {args.snapshot_id!r} on {settings.snapshot_topic}")
        several = catalog_report(records, args.snapshot_id, settings.partitions, now_ms())
        print(
            orjson.dumps(several, option=orjson.OPT_INDENT_2).decode() if args.json else render_catalog_report(several)
        )
        return EXIT_OK
    report = build_report(records, args.snapshot_id, settings.partitions, now_ms())
    print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() if args.json else render_table(report))
    return EXIT_OK


def _read_records(settings: Any, command_name: str) -> list[dict] | int:
    from dqhash.kafka.snapshot_log import read_snapshot_records

    try:
        return asyncio.run(read_snapshot_records(settings))
    except Exception as exc:
        return fail(
            command_name,
            f"cannot read the snapshots topic ({type(exc).__name__}: {exc}); is DQHASH_BROKER right?",
        )


def _print_runs(records: list[dict], partitions: int, as_json: bool) -> int:
    from dqhash.core.snapshot_report import summaries
    from dqhash.core.timeutil import now_ms

    listing = summaries(records, partitions, now_ms())
    if as_json:
        print(orjson.dumps(listing, option=orjson.OPT_INDENT_2).decode())
        return EXIT_OK
    for row in listing:
        print(
            f"{row['snapshot_id']:32s} {row['state']:9s} {row['rows']['onprem']:>10,} on-prem "
            f"{row['rows']['cloud']:>10,} cloud  {row['counts']}"
        )
    return EXIT_OK


def run_abandon(args: argparse.Namespace) -> int:
    import getpass

    from dqhash.core.snapshot_report import abandon_record
    from dqhash.core.timeutil import now_ms
    from dqhash.kafka.security import connect_args
    from dqhash.tools.runner import produce

    if not args.reason.strip():
        return fail("snapshot abandon", "--reason must say why", EXIT_USAGE)
    settings = load_settings("snapshot abandon")
    if settings is None:
        return EXIT_USAGE
    records = _read_records(settings, "snapshot abandon")
    if isinstance(records, int):
        return records
    if not any(r.get("snapshot_id") == args.snapshot_id for r in records):
        return fail("snapshot abandon", f"no run {args.snapshot_id!r} on {settings.snapshot_topic}")
    record = abandon_record(args.snapshot_id, args.reason.strip(), getpass.getuser(), now_ms())
    key = f"abandon:{args.snapshot_id}".encode()
    try:
        asyncio.run(produce(connect_args(settings), settings.snapshot_topic, [(key, orjson.dumps(record))]))
    except Exception as exc:
        return fail(
            "snapshot abandon",
            f"cannot reach the snapshots topic ({type(exc).__name__}: {exc}); is DQHASH_BROKER right?",
        )
    print(f"dqhash snapshot abandon: {args.snapshot_id} is abandoned ({record['reason']})", file=sys.stderr)
    return EXIT_OK
