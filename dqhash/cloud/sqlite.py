"""The embedded demo's cloud copy: one SQLite table behind the same interface as Cassandra."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dqhash.cloud.store import StoreConfigError, pk_texts

log = logging.getLogger(__name__)


class SQLiteStore:
    """The embedded demo's "cloud copy": one SQLite table, same interface as Cassandra."""

    def __init__(self, path: Path | str, table: str, key_columns: Sequence[str]) -> None:
        self.path, self.table = str(path), table
        self.connection = sqlite3.connect(self.path, check_same_thread=False)
        self.connection.row_factory = sqlite3.Row
        self.key_columns = tuple(key_columns)
        self._columns: tuple[str, ...] = ()
        self._columns_read_at = 0.0
        missing = [c for c in self.key_columns if c not in self.columns()]
        if not self.columns():
            raise StoreConfigError(f"table {table!r} not found in {self.path}")
        if missing:
            raise StoreConfigError(f"key columns {missing} not in table {table!r}")
        where = " AND ".join(f'"{c}" = ?' for c in self.key_columns)
        self._query = f'SELECT * FROM "{table}" WHERE {where}'

    def columns(self) -> tuple[str, ...]:
        if time.monotonic() - self._columns_read_at > 5:  # notice ALTER TABLE within seconds
            rows = self.connection.execute(f'PRAGMA table_info("{self.table}")').fetchall()
            self._columns = tuple(r["name"] for r in rows)
            self._columns_read_at = time.monotonic()
        return self._columns

    def key_from_pk(self, pk: str) -> tuple:
        return tuple(pk_texts(pk, len(self.key_columns)))

    async def fetch(self, key: Sequence[Any]) -> dict | None:
        row = self.connection.execute(self._query, list(key)).fetchone()  # microseconds: no thread hop
        return dict(row) if row is not None else None

    def close(self) -> None:
        self.connection.close()
