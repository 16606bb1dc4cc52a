"""A source column's type as the cloud sees it: the CQL type it is hashed as, and how its value is read.

The mapping follows Debezium's for PostgreSQL (connectors/postgresql.adoc, default modes: ``time.precision.mode``
adaptive, ``decimal.handling.mode`` precise, ``interval.handling.mode`` numeric), so a table proved from the
database and the same table proved from its change topic hash alike (docs/source.md has the table). It reads
SQLAlchemy's reflected types, not PostgreSQL's names, so that another database plugs in with its dialect.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import Text, cast
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import (
    ARRAY,
    JSON,
    REAL,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Enum,
    Float,
    Integer,
    Interval,
    LargeBinary,
    Numeric,
    SmallInteger,
    String,
    Time,
    TypeEngine,
    Uuid,
)

#: a value as the driver returns it → the value hashed (None stays None)
Convert = Callable[[Any], Any]


class UnmappedType(ValueError):
    """A source column whose type has no CQL counterpart here; the message says what to declare."""


@dataclass(frozen=True)
class SourceType:
    cql: str  # the CQL type name it is hashed as (``core.canonical``)
    convert: Convert | None = None  # the driver's value → the spec's value; None: as it comes
    read_as: type[TypeEngine[Any]] | None = None  # read through ``CAST(column AS ...)``: JSON as its text

    @property
    def as_text(self) -> bool:
        return self.read_as is Text


def utc_naive(value: datetime) -> datetime:
    """An aware timestamp as the naive UTC one Cassandra's driver returns (naive ones are UTC already)."""
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo is not None else value


def utc_time(value: time) -> time:
    """A ``time with time zone`` at UTC, as Debezium's ZonedTime gives it."""
    offset = value.utcoffset()
    if offset is None:
        return value
    moment = datetime.combine(datetime(2000, 1, 1), value.replace(tzinfo=None)) - offset
    return moment.time()


def interval_micros(value: timedelta) -> int:
    """An interval as Debezium's MicroDuration (``interval.handling.mode`` numeric): microseconds."""
    return (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds


def _blob(value: Any) -> bytes:
    return bytes(value)


def inet_address(value: Any) -> Any:
    """An ``inet`` as an address: a host's own (full-length prefix); a network stays as it is and is refused
    when hashed (a CQL inet holds no prefix)."""
    if isinstance(value, (ipaddress.IPv4Interface, ipaddress.IPv6Interface)):
        return value.ip if value.network.prefixlen == value.max_prefixlen else str(value)
    return value


#: (type class, CQL type, convert, read as), first match wins: subclasses before their bases
_SIMPLE: tuple[tuple[type[TypeEngine[Any]], str, Convert | None, type[TypeEngine[Any]] | None], ...] = (
    (Boolean, "boolean", None, None),
    (SmallInteger, "smallint", None, None),
    (BigInteger, "bigint", None, None),
    (Integer, "int", None, None),
    (REAL, "float", None, None),
    (Float, "double", None, None),
    (Numeric, "decimal", None, None),
    (postgresql.MONEY, "decimal", None, Numeric),  # its text carries a currency sign
    (JSON, "text", None, Text),
    (postgresql.CIDR, "text", None, Text),
    (postgresql.INET, "inet", inet_address, None),
    (Enum, "text", None, None),
    (String, "text", None, None),
    (LargeBinary, "blob", _blob, None),
    (Uuid, "uuid", None, None),
    (DateTime, "timestamp", utc_naive, None),
    (Date, "date", None, None),
    (Interval, "bigint", interval_micros, None),
    (postgresql.INTERVAL, "bigint", interval_micros, None),
)


def _each(convert: Convert) -> Convert:
    return lambda values: [None if value is None else convert(value) for value in values]


def source_type(column: str, sql_type: TypeEngine[Any]) -> SourceType:
    """The CQL type and reading of one reflected column; raises :class:`UnmappedType` for one it cannot map."""
    if isinstance(sql_type, ARRAY):
        element = source_type(column, sql_type.item_type)
        if element.as_text:
            raise UnmappedType(f"column {column!r}: an array of {sql_type.item_type} has no CQL list type here")
        return SourceType(f"list<{element.cql}>", _each(element.convert) if element.convert else None)
    if isinstance(sql_type, Time):
        return SourceType("time", utc_time if sql_type.timezone else None)
    for kind, cql, convert, read_as in _SIMPLE:
        if isinstance(sql_type, kind):
            return SourceType(cql, convert, read_as)
    raise UnmappedType(
        f"column {column!r} has type {sql_type}, which has no CQL type here: declare its cloud type in the "
        "catalog's types (it is then read as text), or exclude it"
    )


def declared(cql: str) -> SourceType:
    """A column whose CQL type the catalog declares and whose source type has no mapping: read as text."""
    return SourceType(cql, None, Text)


def selected(column: ColumnElement[Any], kind: SourceType) -> ColumnElement[Any]:
    """The expression that reads a column: itself, or its cast."""
    return cast(column, kind.read_as).label(column.name) if kind.read_as else column  # type: ignore[attr-defined]
