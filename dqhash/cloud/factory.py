"""Builds the cloud hash producer from settings: the store, the hasher, the producer."""

from __future__ import annotations

from dqhash.cloud.cassandra import CassandraStore, connect_cassandra
from dqhash.cloud.hash_reader import CloudConfigError, CloudHashReader
from dqhash.cloud.sqlite import SQLiteStore
from dqhash.cloud.store import CloudStore
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
    if settings.cloud_store == "sqlite":
        if not settings.sqlite_path.exists():
            raise CloudConfigError(f"DQHASH_SQLITE_PATH={settings.sqlite_path} does not exist")
        return SQLiteStore(settings.sqlite_path, settings.sqlite_table, settings.sqlite_key_columns)
    if not settings.cassandra_keyspace or not settings.cassandra_table:
        raise CloudConfigError("set DQHASH_CASSANDRA_KEYSPACE and DQHASH_CASSANDRA_TABLE (the cloud table to read)")
    return CassandraStore(
        cassandra_session(settings),
        settings.cassandra_keyspace,
        settings.cassandra_table,
        consistency=settings.cassandra_consistency,
        timeout_s=settings.cassandra_timeout_s,
        retries=settings.cassandra_retries,
        max_in_flight=settings.cassandra_max_in_flight,
    )


def build_reader(settings: Settings, metrics: Metrics, store: CloudStore | None = None) -> CloudHashReader:
    """Refuses to build (CloudConfigError / HashConfigError) with a message naming what to fix."""
    hasher = RowHasher(settings.hash_strategy, settings.hash_columns, parse_type_declarations(settings.hash_types))
    return CloudHashReader(
        store or build_store(settings),
        hasher,
        settings.cloud_topic,
        settings.dlq_topic,
        settings.metrics_topic,
        settings.lookup_topic,
        metrics,
        column_digests=settings.column_digests,
    )
