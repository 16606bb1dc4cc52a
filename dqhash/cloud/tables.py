"""The cloud side of every catalog table: its store (one prepared statement each), its hasher, its renames.

The cloud hash producer serves lookups of all tables from one instance: a table is opened when the first
lookup of it comes (its statement prepared once and kept), and a row is hashed by its own table's columns,
types and strategy, under the on-prem column names (``rename``; docs/catalog.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from dqhash.cloud.store import CloudStore, LookupFailed, StoreConfigError
from dqhash.core.catalog import Catalog, TableSpec, single_table
from dqhash.core.hashing import HashConfigError, RowHasher
from dqhash.core.table_keys import split_key

log = logging.getLogger(__name__)


class OnPremNames:
    """A table's cloud rows as the on-prem side names them: renamed columns back, excluded columns out."""

    def __init__(self, spec: TableSpec) -> None:
        self._onprem_names = spec.cloud_names()
        self._excluded = frozenset(spec.exclude)

    def as_onprem(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """The cloud row under its on-prem column names, without the excluded columns: what is hashed."""
        if not self._onprem_names and not self._excluded:
            return row if isinstance(row, dict) else dict(row)
        names = self._onprem_names
        renamed = {names.get(column, column): value for column, value in row.items()}
        return {column: value for column, value in renamed.items() if column not in self._excluded}


class CloudTable(OnPremNames):
    """One table as the producer reads it: the store, the hasher and the columns it reported drifting."""

    def __init__(self, spec: TableSpec, store: CloudStore, hasher: RowHasher) -> None:
        super().__init__(spec)
        self.spec, self.store, self.hasher = spec, store, hasher
        #: columns reported once each (``CloudHashReader._check_schema``)
        self.drift_columns: set[str] = set()
        self.removed_columns: set[str] = set()

    @property
    def name(self) -> str:
        return self.spec.name

    def onprem_columns(self) -> tuple[str, ...]:
        """The store's columns now, under their on-prem names."""
        return tuple(self._onprem_names.get(c, c) for c in self.store.columns())

    def key_columns(self) -> tuple[str, ...]:
        return tuple(self._onprem_names.get(c, c) for c in self.store.key_columns)


#: opens a catalog table's store (raises StoreConfigError, or the driver's error, when it cannot)
StoreOpener = Callable[[TableSpec], CloudStore]


class CloudTables:
    """The catalog's tables, opened on first use and kept for the life of the producer."""

    def __init__(self, catalog: Catalog, open_store: StoreOpener) -> None:
        self.catalog, self.open_store = catalog, open_store
        self._open: dict[str, CloudTable] = {}
        #: whether Topic-2 records name their table: always with a catalog, never for the one table of the
        #: single-table settings (whose records stay as they were before tables existed)
        self.named = True

    @classmethod
    def single(cls, store: CloudStore, hasher: RowHasher, name: str = "default") -> CloudTables:
        """One table served by ``store`` and ``hasher``: today's single-table producer (and tests)."""
        cloud = f"{getattr(store, 'keyspace', 'sqlite')}.{getattr(store, 'table', name)}"
        catalog = single_table(name, cloud, store.key_columns, hasher.fields, {}, hasher.strategy)
        tables = cls(catalog, lambda spec: store)
        tables.named = False
        tables._open[name] = CloudTable(catalog.tables[name], store, hasher)
        return tables

    def for_key(self, key: str) -> tuple[CloudTable, str]:
        """The table of a pair key and the PK within it; :class:`LookupFailed` when the table cannot be read."""
        name, pk = split_key(key, self.catalog.default)
        return self.table(name), pk

    def table(self, name: str) -> CloudTable:
        table = self._open.get(name)
        if table is not None:
            return table
        spec = self.catalog.get(name)
        if spec is None:
            raise LookupFailed("UNKNOWN_TABLE", f"table {name!r} is not in the catalog (DQHASH_CATALOG)")
        try:
            hasher = RowHasher(spec.hash_strategy, spec.columns, spec.types)
            store = self.open_store(spec)
        except (StoreConfigError, HashConfigError) as exc:
            raise LookupFailed("CLOUD_TABLE_UNREADABLE", f"table {name!r} ({spec.cloud}): {exc}") from exc
        except Exception as exc:  # the driver's own errors (no such keyspace, no host): retried at the next lookup
            raise LookupFailed(
                "CLOUD_TABLE_UNREADABLE", f"table {name!r} ({spec.cloud}): {type(exc).__name__}: {exc}"
            ) from exc
        table = self._open[name] = CloudTable(spec, store, hasher)
        log.info("cloud table %s opened for %s (key %s)", spec.cloud, name, ", ".join(table.key_columns()))
        return table

    def opened(self) -> list[CloudTable]:
        return list(self._open.values())

    def close(self) -> None:
        for table in self._open.values():
            table.store.close()
