"""``dqhash catalog``: write a starting catalog from a Cassandra keyspace, and check a catalog file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from dqhash.cli.common import (
    CASSANDRA,
    EXIT_BAD_INPUT,
    EXIT_OK,
    EXIT_USAGE,
    cassandra_unreachable,
    command,
    fail,
    load_settings,
)


def add(commands: Any) -> None:
    catalog = command(commands, "catalog", "the table catalog (docs/catalog.md): discover it, check it")
    actions = catalog.add_subparsers(title="catalog commands", metavar="ACTION")
    discover = command(
        actions,
        "discover",
        "write a starting catalog of every table of a Cassandra keyspace (keys, columns, types), to review",
        CASSANDRA,
        description="Reads the keyspace's schema (system_schema, through the driver's metadata) and prints a "
        "catalog with one [[table]] per table: its key columns in order, its columns and their CQL types. The "
        "on-prem names are guesses (--onprem-schema); review them, the hashed columns and renames before use.",
    )
    discover.add_argument("keyspace", help="the cloud keyspace")
    discover.add_argument(
        "--onprem-schema", default="", help="the on-prem schema the tables come from (default: the keyspace)"
    )
    discover.add_argument("--output", "-o", type=Path, help="write the catalog here (default: standard output)")
    discover.set_defaults(run=run_discover)
    check = command(actions, "check", "read a catalog file as a worker would, and list its tables", ())
    check.add_argument("path", type=Path)
    check.set_defaults(run=run_check)


def run_discover(args: argparse.Namespace) -> int:
    from dqhash.cloud.discover import DiscoveryError, discover
    from dqhash.cloud.factory import cassandra_session
    from dqhash.core.catalog import render_catalog

    settings = load_settings("catalog discover")
    if settings is None:
        return EXIT_USAGE
    try:
        session = cassandra_session(settings)
    except Exception as exc:
        return fail(
            "catalog discover",
            cassandra_unreachable(settings, exc),
        )
    try:
        specs, notes = discover(session.cluster.metadata, args.keyspace, args.onprem_schema)
    except DiscoveryError as exc:
        return fail("catalog discover", str(exc))
    finally:
        session.cluster.shutdown()
    text = render_catalog(specs, notes, f"Cassandra keyspace {args.keyspace}")
    if args.output:
        args.output.write_text(text)
        print(f"dqhash catalog discover: {len(specs)} table(s) written to {args.output}", file=sys.stderr)
    else:
        print(text, end="")
    for note in notes:
        print(f"dqhash catalog discover: review: {note}", file=sys.stderr)
    return EXIT_OK


def run_check(args: argparse.Namespace) -> int:
    from dqhash.core.catalog import CatalogError, parse_catalog

    try:
        catalog = parse_catalog(args.path.read_text(encoding="utf-8"), str(args.path))
    except OSError as exc:
        return fail("catalog check", f"cannot read {args.path} ({exc.strerror})")
    except CatalogError as exc:
        return fail("catalog check", str(exc), EXIT_BAD_INPUT)
    for spec in catalog.tables.values():
        key = ", ".join(spec.key) or "the cloud table's own"
        print(f"{spec.name:40s} -> {spec.cloud:40s} key ({key}), failure cap {spec.failure_cap or 'none'}")
    for pattern in catalog.patterns:
        print(f"{pattern.match:40s} -> {pattern.rules.get('cloud', '{schema}.{table}')} (pattern)")
    print(f"default table: {catalog.default or '(none: records must name their table)'}")
    return EXIT_OK
