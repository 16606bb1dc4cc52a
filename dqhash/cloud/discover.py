"""``dqhash catalog discover``: a starting catalog from a Cassandra keyspace's schema, for a person to review.

The driver's schema metadata (read from ``system_schema``: tables, key columns in order, column types) gives each
table's key (partition key, then clustering columns), its columns and their CQL types; the on-prem names are
guesses (``<schema>.<table>``) a person checks against the source before the catalog is used.
"""

from __future__ import annotations

from typing import Any

from dqhash.core.canonical import CanonicalError, parse_type
from dqhash.core.catalog import TableSpec


class DiscoveryError(LookupError):
    """The keyspace is not there, or holds no table: the message says what to check."""


def discover(metadata: Any, keyspace: str, onprem_schema: str = "") -> tuple[list[TableSpec], list[str]]:
    """Every table of ``keyspace`` as a catalog entry, and notes on what a person must look at."""
    space = metadata.keyspaces.get(keyspace)
    if space is None:
        known = ", ".join(sorted(metadata.keyspaces)[:20])
        raise DiscoveryError(f"no keyspace {keyspace!r} in the cluster's schema; it has: {known}")
    if not space.tables:
        raise DiscoveryError(f"keyspace {keyspace!r} has no tables")
    specs, notes = [], []
    for name in sorted(space.tables):
        table = space.tables[name]
        key = tuple(c.name for c in table.primary_key)
        types: dict[str, str] = {}
        for column in table.columns.values():
            cql = str(column.cql_type)
            try:
                parse_type(cql)
            except CanonicalError:
                notes.append(f"{keyspace}.{name}.{column.name}: type {cql} has no encoding in the spec; declare it")
                continue
            types[column.name] = cql
        columns = tuple(table.columns)
        specs.append(
            TableSpec(f"{onprem_schema or keyspace}.{name}", f"{keyspace}.{name}", key, columns, types, {}, (), "v2", 0)
        )
    return specs, notes
