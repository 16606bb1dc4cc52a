"""One table of the on-prem source database, read in bounded memory: ``dqhash snapshot publish --source``.

SQLAlchemy Core over psycopg for PostgreSQL, so another database plugs in through its SQLAlchemy dialect. The
table's columns and types come from the database's own catalog (reflection), mapped to CQL types the way
Debezium maps them (``dqhash.source.types``); the catalog's declared types win. Rows stream through a
server-side cursor, ``fetch_rows`` at a time, so memory does not grow with the table.

The password never travels in the URL: it comes from DQHASH_SOURCE_PASSWORD (or libpq's own PGPASSWORD and
~/.pgpass), and every URL this module shows hides it.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any

from sqlalchemy import Column, MetaData, Table, create_engine, inspect, select, text
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from dqhash.core.catalog import TableSpec
from dqhash.source.types import Convert, SourceType, UnmappedType, declared, selected, source_type

#: URL schemes a user writes for PostgreSQL, and the driver dqhash reads it with
_DRIVERS = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg"}


class SourceError(Exception):
    """The source cannot be read as asked; the message says what to check, never the password."""


def source_url(url: str, password: str = "") -> URL:
    """The SQLAlchemy URL of ``url`` with its driver and the password from the environment."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise SourceError(f"{url!r} is not a database URL (postgresql://user@host:5432/database)") from None
    if parsed.password:
        raise SourceError(
            "the source URL carries a password, which every user of this machine can read on a command line: "
            "give it in DQHASH_SOURCE_PASSWORD (or PGPASSWORD, or ~/.pgpass) instead"
        )
    parsed = parsed.set(drivername=_DRIVERS.get(parsed.drivername, parsed.drivername))
    return parsed.set(password=password) if password else parsed


def shown(url: URL) -> str:
    return url.render_as_string(hide_password=True)


class SourceTable:
    """One table: its columns as hashed (on-prem names, CQL types), its rows as the hasher takes them."""

    def __init__(self, url: URL, name: str, spec: TableSpec | None = None, fetch_rows: int = 2000) -> None:
        self.url, self.name, self.spec, self.fetch_rows = url, name, spec, fetch_rows
        #: the key columns, in order: the catalog's, else the table's primary key
        self.key: tuple[str, ...] = tuple(spec.key) if spec is not None and spec.key else ()
        schema, _, table = name.rpartition(".")
        self.schema, self.table = schema or None, table
        self.engine: Engine | None = None
        self.kinds: dict[str, SourceType] = {}
        self._table: Table | None = None
        self._readings: list[Generator[dict[str, Any], None, None]] = []

    def open(self) -> SourceTable:
        """Connect, read the table's definition and map its types; raises :class:`SourceError`."""
        try:
            self.engine = create_engine(self.url)
            self._reflect(self.engine)
        except NoSuchModuleError:
            raise SourceError(f"no SQLAlchemy dialect for {self.url.drivername!r}: dqhash reads PostgreSQL") from None
        except SQLAlchemyError as exc:
            self.close()
            raise SourceError(f"cannot read {self.name} at {shown(self.url)}: {first_line(exc)}") from None
        return self

    def _reflect(self, engine: Engine) -> None:
        inspector = inspect(engine)
        if not inspector.has_table(self.table, schema=self.schema):
            raise SourceError(f"no table {self.name} in the source database {shown(self.url)}")
        reflected = {str(c["name"]): c["type"] for c in inspector.get_columns(self.table, schema=self.schema)}
        if not self.key:
            primary = inspector.get_pk_constraint(self.table, schema=self.schema)["constrained_columns"]
            self.key = tuple(str(column) for column in primary)
        if not self.key:
            raise SourceError(f"table {self.name} has no primary key: declare its key in the catalog (key = [...])")
        wanted = self._wanted(list(reflected))
        declared_types = dict(self.spec.types) if self.spec is not None else {}
        problems = []
        for column in wanted:
            try:
                kind = source_type(column, reflected[column])
            except UnmappedType as exc:
                if column not in declared_types:
                    problems.append(str(exc))
                    continue
                kind = declared(declared_types[column])
            if column in declared_types:
                kind = SourceType(declared_types[column], kind.convert, kind.read_as)
            self.kinds[column] = kind
        if problems:
            raise SourceError(f"table {self.name}: " + "; ".join(problems))
        self._table = Table(self.table, MetaData(), *(Column(c) for c in wanted), schema=self.schema)

    def _wanted(self, present: list[str]) -> list[str]:
        """The columns read: the hashed ones (the catalog's, else all but the excluded) and the key columns."""
        spec = self.spec
        hashed = list(spec.columns) if spec is not None and spec.columns else present
        excluded = set(spec.exclude) if spec is not None else set()
        wanted = [c for c in dict.fromkeys([*hashed, *self.key]) if c not in excluded or c in self.key]
        missing = [c for c in wanted if c not in present]
        if missing:
            raise SourceError(f"table {self.name} has no column(s) {missing}; it has {present}")
        return wanted

    @property
    def columns(self) -> list[str]:
        return list(self.kinds)

    def types(self) -> dict[str, str]:
        """Every column's CQL type: what the hasher and the token are given."""
        return {column: kind.cql for column, kind in self.kinds.items()}

    def estimated_rows(self) -> int | None:
        """PostgreSQL's own estimate of the table's rows (``pg_class.reltuples``), for progress; None if unknown."""
        if self.engine is None or self.engine.dialect.name != "postgresql":
            return None
        with self.engine.connect() as connection:
            estimate = connection.execute(
                text("SELECT reltuples FROM pg_class WHERE oid = to_regclass(:name)"), {"name": self.name}
            ).scalar()
        return int(estimate) if estimate is not None and estimate >= 0 else None

    def rows(self) -> Iterator[dict[str, Any]]:
        """Every row, as the hasher takes it, read through a server-side cursor ``fetch_rows`` at a time.

        A reading left unfinished (a failed publish) holds its connection and transaction until :meth:`close`."""
        reading = self._read()
        self._readings.append(reading)
        return reading

    def _read(self) -> Generator[dict[str, Any], None, None]:
        assert self.engine is not None and self._table is not None, "open() first"
        kinds = self.kinds
        converts: list[tuple[str, Convert]] = [(c, k.convert) for c, k in kinds.items() if k.convert is not None]
        query = select(*(selected(self._table.c[c], kind) for c, kind in kinds.items()))
        try:
            with self.engine.connect() as connection:
                result = connection.execution_options(stream_results=True, yield_per=self.fetch_rows).execute(query)
                names = list(kinds)  # plain strings: the reflected names are str subclasses, which orjson refuses
                for values in result:
                    row = dict(zip(names, values))
                    for column, convert in converts:
                        value = row[column]
                        if value is not None:
                            row[column] = convert(value)
                    yield row
        except SQLAlchemyError as exc:
            raise SourceError(f"reading {self.name} at {shown(self.url)} failed: {first_line(exc)}") from None

    def close(self) -> None:
        """End every reading still open (its cursor, transaction and connection), then the connection pool."""
        for reading in self._readings:
            reading.close()
        self._readings.clear()
        if self.engine is not None:
            self.engine.dispose()
            self.engine = None


def first_line(exc: BaseException) -> str:
    original = getattr(exc, "orig", None) or exc
    return (str(original).strip().splitlines() or [type(original).__name__])[0]
