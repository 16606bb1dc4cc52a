"""``dqhash cassandra migrate``: the audit tables gain the columns the audit record has gained."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from dqhash.cli.common import CASSANDRA, EXIT_OK, EXIT_USAGE, cassandra_unreachable, command, fail, load_settings

READS = (*CASSANDRA, "DQHASH_CASSANDRA_AUDIT_KEYSPACE")


def add(commands: Any) -> None:
    cassandra = command(commands, "cassandra", "the Cassandra audit tables (docs/cassandra-audit.cql)")
    actions = cassandra.add_subparsers(title="cassandra commands", metavar="ACTION")
    migrate = command(
        actions,
        "migrate",
        "add to existing audit tables the columns the audit record has gained (ALTER TABLE ... ADD); idempotent",
        READS,
    )
    migrate.set_defaults(run=run_migrate)


def run_migrate(args: argparse.Namespace) -> int:
    from dqhash.cloud.audit_sink import migrate
    from dqhash.cloud.factory import cassandra_session

    settings = load_settings("cassandra migrate")
    if settings is None:
        return EXIT_USAGE
    keyspace = settings.cassandra_audit_keyspace
    try:
        session = cassandra_session(settings)
    except Exception as exc:
        return fail(
            "cassandra migrate",
            cassandra_unreachable(settings, exc),
        )
    try:
        ran = migrate(session, keyspace)
    except LookupError as exc:
        return fail("cassandra migrate", str(exc))
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
