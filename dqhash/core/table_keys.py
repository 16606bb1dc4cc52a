"""Pair keys: a row's identity across every table of a deployment, ``(table, pk)`` as one string.

The pair key is ``<table>`` U+001F ``<pk>``, and for the catalog's default table (the table of records that name
none) the bare ``<pk>``, so a deployment of one table keys its pairs, its Kafka records and its partitions exactly
as before tables existed. Neither a table name nor a PK may contain U+001F, so the two never run together: the same
PK value in two tables is two pairs, in (usually) different partitions.

Its UTF-8 bytes are the Kafka key of every record about the pair, and murmur2 of them its partition, on both sides
(docs/contracts.md, "Keys and partitions"): an external producer that keys by it saves the re-key hop.
"""

from __future__ import annotations

#: between the table and the PK in a pair key (ASCII's unit separator: never in a name, refused in a PK)
SEPARATOR = "\x1f"


def pair_key(table: str | None, pk: str, default: str) -> str:
    """The pair key of ``pk`` in ``table`` (None or ``default``: the default table)."""
    if table is None or table == default:
        return pk
    return f"{table}{SEPARATOR}{pk}"


def split_key(key: str, default: str) -> tuple[str, str]:
    """(table, pk) of a pair key: the inverse of :func:`pair_key`."""
    table, sep, pk = key.partition(SEPARATOR)
    return (table, pk) if sep else (default, key)


def table_of(key: str, default: str) -> str:
    table, sep, _ = key.partition(SEPARATOR)
    return table if sep else default


def table_prefix(key: str) -> str:
    """``<table>`` U+001F of a pair key, "" for the default table's: what its window counters begin with."""
    at = key.find(SEPARATOR)
    return key[: at + 1] if at >= 0 else ""
