"""Builds the cloud hash producer from settings: the store, the hasher, the producer."""

from __future__ import annotations

import asyncio
from typing import Any

from dqhash.cloud.cassandra import CassandraStore, connect_cassandra
from dqhash.cloud.hash_reader import CloudConfigError, CloudHashReader
from dqhash.cloud.sqlite import SQLiteStore
from dqhash.cloud.store import CloudStore
from dqhash.cloud.tables import CloudTables, StoreOpener
from dqhash.core.catalog import TableSpec
from dqhash.core.hashing import RowHasher, parse_type_declarations
from dqhash.ops.dogstatsd import Metrics
from dqhash.settings import Settings


def cassandra_session(settings: Settings):
    """A cassandra-driver Session configured from the DQHASH_CASSANDRA_* settings."""
    return connect_cassandra(
        settings.cassandra_contact_points,
        settings.cassandra_port,
        settings.cassandra_local_dc or None,
        settings.cassandra_consistency,
        settings.cassandra_timeout_s,
        settings.cassandra_username or None,
        settings.cassandra_password.reveal() or None,
        settings.cassandra_tls_ca or None,
    )


def build_store(settings: Settings) -> CloudStore:
    """The store of the single table the DQHASH_SQLITE_* / DQHASH_CASSANDRA_* settings name."""
    if settings.cloud_store == "sqlite":
        if not settings.sqlite_path.exists():
            raise CloudConfigError(f"DQHASH_SQLITE_PATH={settings.sqlite_path} does not exist")
        return SQLiteStore(settings.sqlite_path, settings.sqlite_table, settings.sqlite_key_columns)
    if not settings.cassandra_keyspace or not settings.cassandra_table:
        raise CloudConfigError("set DQHASH_CASSANDRA_KEYSPACE and DQHASH_CASSANDRA_TABLE (the cloud table to read)")
    return _cassandra_store(
        settings, cassandra_session(settings), settings.cassandra_keyspace, settings.cassandra_table
    )


def _cassandra_store(settings: Settings, session: Any, keyspace: str, table: str, limit: Any = None) -> CassandraStore:
    return CassandraStore(
        session,
        keyspace,
        table,
        consistency=settings.cassandra_consistency,
        timeout_s=settings.cassandra_timeout_s,
        retries=settings.cassandra_retries,
        max_in_flight=settings.cassandra_max_in_flight,
        limit=limit,
    )


def catalog_opener(settings: Settings) -> StoreOpener:
    """Opens each catalog table's cloud store: one Cassandra session and in-flight limit shared by all tables;
    with DQHASH_CLOUD_STORE=sqlite, the table of DQHASH_SQLITE_PATH named by the cloud name's last part."""
    if settings.cloud_store == "sqlite":
        if not settings.sqlite_path.exists():
            raise CloudConfigError(f"DQHASH_SQLITE_PATH={settings.sqlite_path} does not exist")
        return lambda spec: SQLiteStore(settings.sqlite_path, spec.cloud_table, spec.key or ("id",))
    shared: dict[str, Any] = {}

    def open_store(spec: TableSpec) -> CloudStore:
        if "session" not in shared:
            shared["session"] = cassandra_session(settings)
            shared["limit"] = asyncio.Semaphore(settings.cassandra_max_in_flight)
        return _cassandra_store(settings, shared["session"], spec.cloud_keyspace, spec.cloud_table, shared["limit"])

    return open_store


def build_tables(settings: Settings, store: CloudStore | None = None) -> CloudTables:
    """The catalog's cloud tables. Without DQHASH_CATALOG, the one table of the settings, opened now so that a
    table or column that is not there stops the producer at start."""
    if settings.catalog_path:
        return CloudTables(settings.catalog, catalog_opener(settings))
    hasher = RowHasher(settings.hash_strategy, settings.hash_columns, parse_type_declarations(settings.hash_types))
    return CloudTables.single(store or build_store(settings), hasher, settings.table)


def build_reader(settings: Settings, metrics: Metrics, store: CloudStore | None = None) -> CloudHashReader:
    """Refuses to build (CloudConfigError / HashConfigError) with a message naming what to fix."""
    return CloudHashReader(
        build_tables(settings, store),
        settings.cloud_topic,
        settings.dlq_topic,
        settings.metrics_topic,
        settings.lookup_topic,
        metrics,
        column_digests=settings.column_digests,
    )
