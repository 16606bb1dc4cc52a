"""Reading a whole cloud table by token range: Cassandra through cassandra-driver, SQLite for the demo.

A range is read with ``token(pk) > ? AND token(pk) <= ?``, a page at a time (the driver's paging, a bounded
fetch size), at the store's consistency (LOCAL_QUORUM by default, never downgraded). A page that fails with
a transient error is asked again from the same paging state, with backoff; a range that fails for good is
reported, and left unfinished in the checkpoint, so a rerun reads it again.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from dqhash.cloud.cassandra import bridge, prepared, retrying, table_meta
from dqhash.cloud.store import StoreConfigError
from dqhash.cloud.tokens import token_of


class RangeScan(Protocol):
    key_columns: tuple[str, ...]

    def pages(self, start: int, end: int) -> AsyncIterator[list[dict[str, Any]]]:
        """The rows whose token is in ``(start, end]``, a page at a time."""

    def token(self, row: dict[str, Any]) -> int:
        """A row's token, as the store places it (a run proven by digests places each row in its chunk)."""

    def close(self) -> None: ...


class CassandraRangeScan:
    def __init__(
        self,
        session: Any,
        keyspace: str,
        table: str,
        consistency: str = "LOCAL_QUORUM",
        fetch_size: int = 1000,
        timeout_s: float = 10.0,
        retries: int = 3,
        backoff_s: float = 0.5,
    ) -> None:
        self.session, self.timeout_s, self.retries, self.backoff_s = session, timeout_s, retries, backoff_s
        meta = table_meta(session, keyspace, table)
        self.key_columns = tuple(c.name for c in meta.primary_key)
        self.partition_key = tuple(c.name for c in meta.partition_key)
        self._key_types = {c.name: str(c.cql_type) for c in meta.partition_key}
        token = ", ".join(f'"{c}"' for c in self.partition_key)
        query = f'SELECT * FROM "{keyspace}"."{table}" WHERE token({token}) > ? AND token({token}) <= ?'
        self.statement = prepared(session, query, consistency)
        self.statement.fetch_size = fetch_size

    async def pages(self, start: int, end: int) -> AsyncIterator[list[dict[str, Any]]]:
        paging_state = None
        while True:

            async def page(state: Any = paging_state) -> tuple[list[dict[str, Any]], Any]:
                response = self.session.execute_async(
                    self.statement.bind([start, end]), timeout=self.timeout_s, paging_state=state
                )
                rows = await bridge(response)
                return [r if isinstance(r, dict) else r._asdict() for r in rows], response.result().paging_state

            rows, paging_state = await retrying(page, self.retries, self.backoff_s)
            yield rows
            if paging_state is None:
                return

    def token(self, row: dict[str, Any]) -> int:
        return token_of(row, self.partition_key, self._key_types)

    def close(self) -> None:
        cluster = getattr(self.session, "cluster", None)
        if cluster is not None and hasattr(cluster, "shutdown"):
            cluster.shutdown()


class SQLiteRangeScan:
    """The demo's cloud copy read the same way: the same Murmur3 token, computed by a registered function.

    SQLite has no index on a Murmur3 token, so a range query alone would read (and hash the key of) every row once
    per range. The first read builds a temporary index of every row's token instead, in one pass; each range then
    reads only its own rows. A table without rowids falls back to the per-range query.
    """

    def __init__(
        self, path: Path | str, table: str, key_columns: Sequence[str], types: dict[str, str], fetch_size: int = 1000
    ) -> None:
        self.connection = sqlite3.connect(str(path), check_same_thread=False)
        self.connection.row_factory = sqlite3.Row
        self.key_columns = self.partition_key = tuple(key_columns)
        self.fetch_size = fetch_size
        names = tuple(self.key_columns)
        self.connection.create_function(
            "dq_token", len(names), lambda *values: token_of(dict(zip(names, values)), names, types), deterministic=True
        )
        columns = ", ".join(f'"{c}"' for c in names)
        if not self.connection.execute(f'PRAGMA table_info("{table}")').fetchall():
            raise StoreConfigError(f"table {table!r} not found in {path}")
        self._table, self._columns, self._types = table, columns, dict(types)
        self._query = f'SELECT * FROM "{table}" WHERE dq_token({columns}) > ? AND dq_token({columns}) <= ?'
        self._indexed = False

    def _index_tokens(self) -> None:
        """One pass over the table: (token, rowid) of every row, indexed by token; the range query uses it."""
        self._indexed = True
        try:
            with self.connection:
                self.connection.execute(
                    "CREATE TEMP TABLE dq_tokens AS "
                    f'SELECT dq_token({self._columns}) AS token, rowid AS row FROM "{self._table}"'
                )
                self.connection.execute("CREATE INDEX temp.dq_tokens_by_token ON dq_tokens (token)")
        except sqlite3.OperationalError:  # a WITHOUT ROWID table: each range reads the table
            return
        self._query = (
            f'SELECT t.* FROM temp.dq_tokens AS i JOIN "{self._table}" AS t ON t.rowid = i.row '
            "WHERE i.token > ? AND i.token <= ? ORDER BY i.token"
        )

    async def pages(self, start: int, end: int) -> AsyncIterator[list[dict[str, Any]]]:
        if not self._indexed:
            self._index_tokens()
        cursor = self.connection.execute(self._query, (start, end))
        while True:
            rows = cursor.fetchmany(self.fetch_size)
            if rows:
                yield [dict(row) for row in rows]
            if len(rows) < self.fetch_size:
                return
            await asyncio.sleep(0)  # let the producer's sends go out between pages

    def token(self, row: dict[str, Any]) -> int:
        return token_of(row, self.partition_key, self._types)

    def close(self) -> None:
        self.connection.close()
