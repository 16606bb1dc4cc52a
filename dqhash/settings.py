"""All configuration, read once from environment variables with documented defaults, each declared once.

Every setting is one field of :class:`Settings`, declared with :func:`setting`: the environment variable, its
default, what it means and how its text is read and checked. :data:`VARIABLES`, the README's table, ``--help``
texts and the docker checks derive from those declarations, and :func:`load` reads them all, then checks the
settings that only make sense together. A bad value stops start-up with :class:`SettingsError` naming the
variable.
"""

from __future__ import annotations

import hmac
import os
import re
import textwrap
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from fnmatch import fnmatchcase
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple

from dqhash.core.catalog import Catalog, CatalogError, check_name, parse_catalog, single_table
from dqhash.core.hashing import HashConfigError, parse_type_declarations
from dqhash.core.input_records import KNOWN_HASH_VERSIONS


class SettingsError(ValueError):
    """A setting that cannot work; the message names the variable and what to do."""


class Secret:
    """A credential from the environment. It prints as ``***``, in reprs, logs, f-strings and error messages
    alike; only :meth:`reveal`, at the one place a client library takes it, gives the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __str__(self) -> str:
        return "***" if self._value else ""

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(Secret)

    def __reduce__(self) -> tuple[object, ...]:  # pickling would write the value out
        raise TypeError("a Secret is not serialisable")


class Variable(NamedTuple):
    """One environment variable: what the README's table and ``--help`` show of a setting."""

    name: str
    default: str
    help: str


#: ``(variable, its text) → value``; raises SettingsError naming the variable
Reader = Callable[[str, str], Any]


class Declared(NamedTuple):
    variable: Variable
    read: Reader
    #: read as given (a password may begin or end with a space), never stripped
    secret: bool


def setting(name: str, default: str, doc: str, read: Reader) -> Any:
    """A :class:`Settings` field read from the variable ``name`` (``default`` when unset) by ``read``."""
    return field(metadata={"setting": Declared(Variable(name, default, doc), read, read is secret)})


def _invalid(name: str, text: str, expect: str) -> SettingsError:
    return SettingsError(f"{name}={text!r} is invalid: expected {expect}")


def text(name: str, value: str) -> str:
    return value


def upper(name: str, value: str) -> str:
    return value.upper()


def text_or(fallback: str) -> Reader:
    return lambda name, value: value or fallback


def secret(name: str, value: str) -> Secret:
    return Secret(value)


def path(name: str, value: str) -> Path:
    return Path(value)


def flag(name: str, value: str) -> bool:
    value = value.lower()
    if value not in ("true", "1", "false", "0"):
        raise _invalid(name, value, "true or false")
    return value in ("true", "1")


def between(kind: Callable[[str], float], low: float, high: float, expect: str, open_low: bool = False) -> Reader:
    """A number of ``kind`` within [low, high] (or (low, high] with ``open_low``)."""

    def read(name: str, value: str) -> Any:
        try:
            number = kind(value)
        except ValueError:
            raise _invalid(name, value, expect) from None
        if not (low < number if open_low else low <= number) or number > high:
            raise _invalid(name, value, expect)
        return number

    return read


positive_int = between(int, 1, float("inf"), "a whole number > 0")
nonnegative_int = between(int, 0, float("inf"), "a whole number >= 0")
port = between(int, 1, 65_535, "a port 1..65535")
_seconds = between(float, 0, float("inf"), "seconds >= 0")


def seconds_ms(name: str, value: str) -> int:
    return int(_seconds(name, value) * 1000)


def positive_seconds_ms(name: str, value: str) -> int:
    ms = seconds_ms(name, value)
    if ms <= 0:
        raise SettingsError(f"{name} must be > 0")
    return ms


def gc_threshold(name: str, value: str) -> int:
    threshold: int = between(int, 0, 10_000_000, "0, or an integer between 700 and 10000000")(name, value)
    if 0 < threshold < 700:
        raise _invalid(name, value, "0, or an integer between 700 and 10000000")
    return threshold


def choice(options: Iterable[str], normalise: Callable[[str], str] = str) -> Reader:
    allowed = tuple(options)

    def read(name: str, value: str) -> str:
        value = normalise(value)
        if value not in allowed:
            raise _invalid(name, value, "one of " + ", ".join(allowed))
        return value

    return read


def names(name: str, value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def names_or_none(name: str, value: str) -> tuple[str, ...] | None:
    return names(name, value) or None


_TOPIC_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def topic_name(name: str, value: str) -> str:
    if not value or any(c not in _TOPIC_CHARS for c in value):
        raise _invalid(name, value, "a topic name of letters, digits, '.', '_', '-'")
    return value


def broker_list(name: str, value: str) -> str:
    if not value or any("://" not in url or not url.split("://", 1)[1] for url in value.split(",")):
        raise _invalid(name, value, "kafka://host:port[,kafka://host:port]")
    return value


def regex(name: str, value: str) -> str:
    if value:
        try:
            re.compile(value)
        except re.error as exc:
            raise _invalid(name, value, f"a regular expression ({exc})") from None
    return value


def table_name(name: str, value: str) -> str:
    if not check_name(value):
        raise _invalid(name, value, "a table name (letters, digits, _ $ - .)")
    return value


def registry_url(name: str, value: str) -> str:
    if value and not value.startswith(("http://", "https://")):
        raise _invalid(name, value, "http(s)://host:port")
    return value


SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
CONSISTENCY_LEVELS = ("ONE", "TWO", "THREE", "QUORUM", "ALL", "LOCAL_QUORUM", "EACH_QUORUM", "LOCAL_ONE")


@dataclass(frozen=True)
class Settings:
    broker: str = setting(
        "DQHASH_BROKER",
        "kafka://127.0.0.1:9092",
        "Kafka bootstrap URL(s), comma-separated (`kafka://host:port`)",
        broker_list,
    )
    app_id: str = setting(
        "DQHASH_APP_ID",
        "dqhash",
        "Faust app id = Kafka consumer group; prefixes internal topics",
        topic_name,
    )
    onprem_topic: str = setting(
        "DQHASH_ONPREM_TOPIC",
        "topic1",
        "on-prem change events (Topic-1)",
        topic_name,
    )
    cloud_topic: str = setting(
        "DQHASH_CLOUD_TOPIC",
        "topic2",
        "cloud hashes (Topic-2)",
        topic_name,
    )
    audit_topic: str = setting(
        "DQHASH_AUDIT_TOPIC",
        "dq-audit",
        "one record per classification",
        topic_name,
    )
    metrics_topic: str = setting(
        "DQHASH_METRICS_TOPIC",
        "dq-metrics",
        "one record per closed window and partition",
        topic_name,
    )
    dlq_topic: str = setting(
        "DQHASH_DLQ_TOPIC",
        "dq-dlq",
        "rejected records, original bytes + reason headers",
        topic_name,
    )
    partitions: int = setting(
        "DQHASH_PARTITIONS",
        "4",
        "partitions of the input, internal and table topics (must match existing input topics)",
        positive_int,
    )
    replication_factor: int = setting(
        "DQHASH_REPLICATION_FACTOR",
        "1",
        "replication factor for topics dqhash creates",
        positive_int,
    )
    window_ms: int = setting(
        "DQHASH_WINDOW_SECONDS",
        "60",
        "tumbling window length on event time",
        positive_seconds_ms,
    )
    grace_ms: int = setting(
        "DQHASH_GRACE_SECONDS",
        "30",
        "grace after window end (and after arrival) before MISSING_CLOUD",
        seconds_ms,
    )
    retention_ms: int = setting(
        "DQHASH_RETENTION_SECONDS",
        "86400",
        "settled per-PK state is dropped this long after its last change",
        seconds_ms,
    )
    tick_seconds: float = setting(
        "DQHASH_TICK_SECONDS",
        "1.0",
        "how often each partition's deadlines are swept",
        between(float, 0.05, 60, "seconds between 0.05 and 60"),
    )
    hash_strategy: str = setting(
        "DQHASH_HASH_STRATEGY",
        "v2",
        "hash version assumed for hashes that carry none (v1 | v2)",
        choice(sorted(KNOWN_HASH_VERSIONS), str.lower),
    )
    data_dir: Path = setting(
        "DQHASH_DATA_DIR",
        "./dqhash-data",
        "local RocksDB state; wipe it when topics are recreated",
        path,
    )
    web_port: int = setting(
        "DQHASH_WEB_PORT",
        "6066",
        "Faust web server port (table-inspection views)",
        port,
    )
    web_host: str = setting(
        "DQHASH_WEB_HOST",
        "",
        "host name other replicas use to reach this worker's web server (default: hostname)",
        text,
    )
    web_bind: str = setting(
        "DQHASH_WEB_BIND",
        "0.0.0.0",
        "interface the web server listens on; replicas forward `/dq/pairs/{pk}` and gather list views from each other at DQHASH_WEB_HOST:DQHASH_WEB_PORT, so bind one they can reach (`127.0.0.1` for a single worker)",
        text_or("0.0.0.0"),
    )
    web_token: Secret = setting(
        "DQHASH_WEB_TOKEN",
        "",
        "secret bearer token for endpoints that change something (`POST /dq/dlq/replay`; disabled while empty); sent as `Authorization: Bearer <token>`",
        secret,
    )
    web_token_reads: bool = setting(
        "DQHASH_WEB_TOKEN_READS",
        "false",
        "also require the token for every read view (true | false)",
        flag,
    )
    kafka_security_protocol: str = setting(
        "DQHASH_KAFKA_SECURITY_PROTOCOL",
        "PLAINTEXT",
        "PLAINTEXT | SSL | SASL_PLAINTEXT | SASL_SSL, for every Kafka client",
        choice(SECURITY_PROTOCOLS, str.upper),
    )
    kafka_sasl_mechanism: str = setting(
        "DQHASH_KAFKA_SASL_MECHANISM",
        "",
        "with SASL_*: PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512",
        upper,
    )
    kafka_username: str = setting(
        "DQHASH_KAFKA_USERNAME",
        "",
        "with SASL_*: the SASL user",
        text,
    )
    kafka_password: Secret = setting(
        "DQHASH_KAFKA_PASSWORD",
        "",
        "with SASL_*: the SASL password (secret: never logged or shown)",
        secret,
    )
    source_url: str = setting(
        "DQHASH_SOURCE_URL",
        "",
        "the on-prem source database `dqhash snapshot publish --source` reads (postgresql://user@host:5432/db; no password in it); --source wins",
        text,
    )
    source_password: Secret = setting(
        "DQHASH_SOURCE_PASSWORD",
        "",
        "the source database's password (secret: never logged or shown; libpq's PGPASSWORD and ~/.pgpass work too)",
        secret,
    )
    kafka_ssl_ca: str = setting(
        "DQHASH_KAFKA_SSL_CA",
        "",
        "with SSL / SASL_SSL: CA bundle file (empty: the system's trust store)",
        text,
    )
    kafka_ssl_cert: str = setting(
        "DQHASH_KAFKA_SSL_CERT",
        "",
        "with SSL / SASL_SSL: client certificate file (mutual TLS; with the key)",
        text,
    )
    kafka_ssl_key: str = setting(
        "DQHASH_KAFKA_SSL_KEY",
        "",
        "with SSL / SASL_SSL: client private key file",
        text,
    )
    kafka_ssl_key_password: Secret = setting(
        "DQHASH_KAFKA_SSL_KEY_PASSWORD",
        "",
        "password of the client key, if it has one (secret)",
        secret,
    )
    session_timeout: float = setting(
        "DQHASH_SESSION_TIMEOUT",
        "30",
        "Kafka consumer session timeout, seconds (6 is good for local runs)",
        between(float, 1, 300, "seconds between 1 and 300"),
    )
    shutdown_seconds: float = setting(
        "DQHASH_SHUTDOWN_SECONDS",
        "8",
        "a worker told to stop (SIGTERM) that has not stopped after this long (e.g. the broker is gone) exits anyway; uncommitted records are redelivered",
        between(float, 1, 600, "seconds between 1 and 600"),
    )
    view_history_ms: int = setting(
        "DQHASH_VIEW_HISTORY_SECONDS",
        "86400",
        "how far back each worker reads the repair and DLQ topics for `/dq/mismatches` and `/dq/dlq` (at start and after a restart)",
        positive_seconds_ms,
    )
    view_max_items: int = setting(
        "DQHASH_VIEW_MAX_ITEMS",
        "10000",
        "the newest problems and dead letters each worker keeps for those views (and DLQ replay)",
        positive_int,
    )
    ready_max_behind_s: float = setting(
        "DQHASH_READY_MAX_BEHIND_SECONDS",
        "300",
        "`GET /readyz` fails while an input partition is further behind than this (0: never for lag)",
        between(float, 0, 86_400, "seconds between 0 and 86400"),
    )
    store: str = setting(
        "DQHASH_STORE",
        "rocksdb://",
        "Faust table store (`rocksdb://`; `memory://` for tests only)",
        choice(("rocksdb://", "memory://")),
    )
    rocksdb_memory_mb: int = setting(
        "DQHASH_ROCKSDB_MEMORY_MB",
        "128",
        "RocksDB's memory in one worker, MiB, whatever its tables and partitions: one block cache they all share, "
        "with their memtables charged to it (flushed past half of it)",
        positive_int,
    )
    pending_in_memory: int = setting(
        "DQHASH_PENDING_IN_MEMORY",
        "400000",
        "pending pairs a worker keeps in memory for its deadline sweep and verified-through times, over all the "
        "partitions (about 200 bytes each); past it, the latest wait in the pair table until a scan finds them",
        between(int, 4_096, 1_000_000_000, "an integer between 4096 and 1000000000"),
    )
    malloc_trim_s: float = setting(
        "DQHASH_MALLOC_TRIM_SECONDS",
        "10",
        "how often a worker gives freed memory back to the system (glibc malloc_trim); 0: never",
        between(float, 0, 3600, "seconds between 0 (never) and 3600"),
    )
    batch_max: int = setting(
        "DQHASH_BATCH_MAX",
        "1000",
        "most records an agent processes as one batch (what is buffered, never waited for; one table write per key per batch)",
        between(int, 1, 100_000, "an integer between 1 and 100000"),
    )
    gc_threshold: int = setting(
        "DQHASH_GC_THRESHOLD",
        "100000",
        "allocations between Python's young-generation garbage collections (Python's default, 700, spent ~12 % of a busy worker in the collector; 0 keeps Python's settings)",
        gc_threshold,
    )
    dd_host: str = setting(
        "DD_AGENT_HOST",
        "127.0.0.1",
        "DogStatsD host",
        text,
    )
    dd_port: int = setting(
        "DD_DOGSTATSD_PORT",
        "8125",
        "DogStatsD UDP port",
        port,
    )
    dd_env: str = setting(
        "DD_ENV",
        "",
        "DataDog env tag",
        text,
    )
    dd_service: str = setting(
        "DD_SERVICE",
        "dqhash",
        "DataDog service tag",
        text,
    )
    dd_version: str = setting(
        "DD_VERSION",
        "",
        "DataDog version tag",
        text,
    )
    metrics_enabled: bool = setting(
        "DQHASH_METRICS_ENABLED",
        "true",
        "send DogStatsD metrics (true | false)",
        flag,
    )
    role: str = setting(
        "DQHASH_ROLE",
        "all",
        "what a worker runs: all | reconciler | producer (the cloud hash producer alone)",
        choice(("all", "reconciler", "producer"), str.lower),
    )
    debezium_topics: str = setting(
        "DQHASH_DEBEZIUM_TOPICS",
        "",
        "a regular expression of Debezium change topics to read (e.g. `dbserver1\\..*`): each change becomes the "
        "Topic-1 record of its catalog table (docs/debezium.md); empty: none",
        regex,
    )
    debezium_binary_handling: str = setting(
        "DQHASH_DEBEZIUM_BINARY_HANDLING",
        "bytes",
        "the connectors' binary.handling.mode, to read bytes sent as text: bytes | base64 | base64-url-safe | hex",
        choice(("bytes", "base64", "base64-url-safe", "hex"), str.lower),
    )
    debezium_slot: str = setting(
        "DQHASH_DEBEZIUM_SLOT",
        "",
        "the PostgreSQL connector's replication slot (slot.name): with DQHASH_SOURCE_URL, a quiet table's verified-through time moves as the slot confirms what is in Kafka; empty: only changes move it",
        text,
    )
    debezium_snapshot_runs: bool = setting(
        "DQHASH_DEBEZIUM_SNAPSHOT_RUNS",
        "true",
        "a connector's snapshot rows (op r) of each table form a snapshot run, closed by Debezium's markers, whose "
        "cloud side is a `dqhash snapshot scan` (true); or each row is compared as a change (false)",
        flag,
    )
    lookups: bool = setting(
        "DQHASH_LOOKUPS",
        "false",
        "dqhash's own cloud producer answers lookups (true), or Topic-2 comes from elsewhere",
        flag,
    )
    lookup_delay_ms: int = setting(
        "DQHASH_LOOKUP_DELAY_SECONDS",
        "1",
        "wait after an on-prem event before reading the cloud row",
        seconds_ms,
    )
    rechecks: int = setting(
        "DQHASH_RECHECKS",
        "2",
        "re-reads before a final MISMATCH / MISSING_CLOUD (with lookups)",
        nonnegative_int,
    )
    recheck_backoff_ms: int = setting(
        "DQHASH_RECHECK_BACKOFF_SECONDS",
        "2",
        "the n-th recheck waits n times this",
        seconds_ms,
    )
    answer_wait_ms: int = setting(
        "DQHASH_ANSWER_WAIT_SECONDS",
        "60",
        "a deadline waits at most this long for an unanswered lookup",
        seconds_ms,
    )
    repair_topic: str = setting(
        "DQHASH_REPAIR_TOPIC",
        "dq-repair",
        "confirmed problems (MISMATCH, MISSING_CLOUD, ...), for a resync job",
        topic_name,
    )
    snapshot_topic: str = setting(
        "DQHASH_SNAPSHOT_TOPIC",
        "dq-snapshots",
        "snapshot runs: the publishers' and scanners' progress, each partition's reconciliation (compacted)",
        topic_name,
    )
    triage_topic: str = setting(
        "DQHASH_TRIAGE_TOPIC",
        "dq-triage",
        "acknowledged and resolved mismatches, by audit id (compacted; every worker follows it)",
        topic_name,
    )
    verify_deletes: bool = setting(
        "DQHASH_VERIFY_DELETES",
        "false",
        "check that an on-prem DELETE reached the cloud (DELETE_CONFIRMED / DELETE_NOT_PROPAGATED) instead of SKIPPED_DELETE: by a lookup, or by a Topic-2 `hash_cloud: null` after the delete (true | false)",
        flag,
    )
    onprem_tombstones: str = setting(
        "DQHASH_ONPREM_TOMBSTONES",
        "delete",
        "a Topic-1 tombstone (key, no value, as Debezium emits after a delete): `delete` of the keyed PK, or `dead_letter` (EMPTY_VALUE) when Topic-1 keys are not PKs",
        choice(("delete", "dead_letter"), str.lower),
    )
    reverify_rows_per_second: float = setting(
        "DQHASH_REVERIFY_ROWS_PER_SECOND",
        "0",
        "with lookups: re-read this many settled MATCH rows a second, for the whole table, to catch cloud drift (0: off)",
        between(float, 0, 1_000_000, "rows a second, 0..1000000"),
    )
    reverify_min_age_ms: int = setting(
        "DQHASH_REVERIFY_MIN_AGE_SECONDS",
        "3600",
        "a settled MATCH is re-read only once it has been unchanged this long",
        seconds_ms,
    )
    schema_registry_url: str = setting(
        "DQHASH_SCHEMA_REGISTRY_URL",
        "",
        "Confluent Schema Registry for records in its wire format (Avro or JSON Schema): Topic-1, Topic-2 and Debezium change topics; empty: JSON only",
        registry_url,
    )
    schema_registry_username: str = setting(
        "DQHASH_SCHEMA_REGISTRY_USERNAME",
        "",
        "registry basic-auth user (Confluent Cloud: the API key)",
        text,
    )
    schema_registry_password: Secret = setting(
        "DQHASH_SCHEMA_REGISTRY_PASSWORD",
        "",
        "registry basic-auth password / API secret (secret)",
        secret,
    )
    schema_registry_timeout_s: float = setting(
        "DQHASH_SCHEMA_REGISTRY_TIMEOUT_SECONDS",
        "2",
        "per-request timeout to the registry",
        between(float, 0, 60, "seconds between 0 and 60", open_low=True),
    )
    schema_registry_retries: int = setting(
        "DQHASH_SCHEMA_REGISTRY_RETRIES",
        "3",
        "retries before a record is dead-lettered REGISTRY_UNAVAILABLE",
        nonnegative_int,
    )
    cloud_store: str = setting(
        "DQHASH_CLOUD_STORE",
        "cassandra",
        "where the producer reads rows: cassandra | sqlite",
        choice(("cassandra", "sqlite"), str.lower),
    )
    catalog_path: str = setting(
        "DQHASH_CATALOG",
        "",
        "the table catalog, a TOML file of every table to prove (docs/catalog.md); empty: one table, from "
        "DQHASH_TABLE and the DQHASH_HASH_* / cloud table settings",
        text,
    )
    table: str = setting(
        "DQHASH_TABLE",
        "default",
        "without a catalog: the name of the one table, as records, metrics and reports show it",
        table_name,
    )
    metrics_max_tables: int = setting(
        "DQHASH_METRICS_MAX_TABLES",
        "100",
        "tables tagged by name in DogStatsD metrics (in order of first verdict); the rest are tagged table:_other",
        positive_int,
    )
    hash_columns: tuple[str, ...] | None = setting(
        "DQHASH_HASH_COLUMNS",
        "",
        "comma-separated columns to hash (empty: every column)",
        names_or_none,
    )
    hash_types: str = setting(
        "DQHASH_HASH_TYPES",
        "",
        "column=cqltype declarations for the hasher, e.g. amount=decimal",
        text,
    )
    column_digests: bool = setting(
        "DQHASH_COLUMN_DIGESTS",
        "true",
        "add per-column digests to the cloud hashes the producer sends (lookups, rechecks), so a MISMATCH names its columns (true | false); false saves about 20 bytes a column in each Topic-2 record",
        flag,
    )
    sqlite_path: Path = setting(
        "DQHASH_SQLITE_PATH",
        "./cloud.db",
        "SQLite file of the embedded cloud store",
        path,
    )
    sqlite_table: str = setting(
        "DQHASH_SQLITE_TABLE",
        "rows",
        "table in the SQLite file",
        text,
    )
    sqlite_key_columns: tuple[str, ...] = setting(
        "DQHASH_SQLITE_KEY_COLUMNS",
        "id",
        "comma-separated key columns of the SQLite table",
        names,
    )
    cassandra_contact_points: tuple[str, ...] = setting(
        "DQHASH_CASSANDRA_CONTACT_POINTS",
        "127.0.0.1",
        "comma-separated Cassandra hosts",
        names,
    )
    cassandra_port: int = setting(
        "DQHASH_CASSANDRA_PORT",
        "9042",
        "Cassandra native port",
        port,
    )
    cassandra_local_dc: str = setting(
        "DQHASH_CASSANDRA_LOCAL_DC",
        "",
        "local data center for DC-aware routing (empty: the driver's guess)",
        text,
    )
    cassandra_keyspace: str = setting(
        "DQHASH_CASSANDRA_KEYSPACE",
        "",
        "keyspace of the cloud table",
        text,
    )
    cassandra_table: str = setting(
        "DQHASH_CASSANDRA_TABLE",
        "",
        "the cloud table",
        text,
    )
    cassandra_consistency: str = setting(
        "DQHASH_CASSANDRA_CONSISTENCY",
        "LOCAL_QUORUM",
        "read consistency (never downgraded)",
        choice(CONSISTENCY_LEVELS, str.upper),
    )
    cassandra_timeout_s: float = setting(
        "DQHASH_CASSANDRA_TIMEOUT_SECONDS",
        "2",
        "per-request timeout",
        between(float, 0, float("inf"), "seconds > 0", open_low=True),
    )
    cassandra_retries: int = setting(
        "DQHASH_CASSANDRA_RETRIES",
        "3",
        "retries on timeout / unavailable before the DLQ",
        nonnegative_int,
    )
    cassandra_max_in_flight: int = setting(
        "DQHASH_CASSANDRA_MAX_IN_FLIGHT",
        "128",
        "concurrent reads per worker",
        positive_int,
    )
    cassandra_username: str = setting(
        "DQHASH_CASSANDRA_USERNAME",
        "",
        "credentials (empty: none)",
        text,
    )
    cassandra_password: Secret = setting(
        "DQHASH_CASSANDRA_PASSWORD",
        "",
        "credentials",
        secret,
    )
    cassandra_tls_ca: str = setting(
        "DQHASH_CASSANDRA_TLS_CA",
        "",
        "CA file to enable TLS (empty: plain)",
        text,
    )
    cassandra_audit: bool = setting(
        "DQHASH_CASSANDRA_AUDIT",
        "false",
        "also write every audit record to Cassandra (true | false)",
        flag,
    )
    cassandra_audit_keyspace: str = setting(
        "DQHASH_CASSANDRA_AUDIT_KEYSPACE",
        "dqhash_audit",
        "keyspace of the audit tables (must exist)",
        text,
    )
    audit_ttl_days: int = setting(
        "DQHASH_AUDIT_TTL_DAYS",
        "90",
        "TTL of audit rows in Cassandra",
        positive_int,
    )

    @property
    def rekey_topic(self) -> str:
        """Internal: input records whose partition is not their PK's, re-keyed by PK."""
        return f"{self.app_id}-rekeyed"

    @property
    def tick_topic(self) -> str:
        """Internal: one tick per partition drives that partition's deadline sweep."""
        return f"{self.app_id}-ticks"

    @property
    def lookup_topic(self) -> str:
        """Internal: PKs whose cloud row the producer should read (co-partitioned)."""
        return f"{self.app_id}-lookups"

    @property
    def faust_app_id(self) -> str:
        """The producer role is its own consumer group: it must not be handed the reconciler's partitions."""
        return f"{self.app_id}-producer" if self.role == "producer" else self.app_id

    @property
    def broker_urls(self) -> list[str]:
        return [url.strip() for url in self.broker.split(",") if url.strip()]

    @property
    def bootstrap_servers(self) -> str:
        """host:port list for aiokafka clients (no scheme)."""
        return ",".join(url.split("://", 1)[-1] for url in self.broker_urls)

    @cached_property
    def catalog(self) -> Catalog:
        """Every table to prove: the DQHASH_CATALOG file, or the single-table settings as a catalog of one.

        Read once; :func:`load` reads it at start, so a bad catalog stops start-up naming the table and field.
        """
        if self.catalog_path:
            source = Path(self.catalog_path)
            try:
                text = source.read_text(encoding="utf-8")
            except OSError as exc:
                raise SettingsError(f"DQHASH_CATALOG={self.catalog_path!r}: cannot read it ({exc.strerror})") from None
            try:
                return parse_catalog(text, f"DQHASH_CATALOG={self.catalog_path}")
            except CatalogError as exc:
                raise SettingsError(str(exc)) from None
        cloud = f"{self.cassandra_keyspace}.{self.cassandra_table}" if self.cassandra_table else ""
        if self.cloud_store == "sqlite":
            cloud = f"sqlite.{self.sqlite_table}"
        try:
            types = parse_type_declarations(self.hash_types)
        except HashConfigError as exc:
            raise SettingsError(f"DQHASH_HASH_TYPES: {exc}") from None
        key = self.sqlite_key_columns if self.cloud_store == "sqlite" else ()
        return single_table(self.table, cloud, key, self.hash_columns, types, self.hash_strategy)

    def dd_tags(self) -> list[str]:
        tags = [f"service:{self.dd_service}"]
        if self.dd_env:
            tags.append(f"env:{self.dd_env}")
        if self.dd_version:
            tags.append(f"version:{self.dd_version}")
        return tags


#: every variable, in declaration order: the README's table, ``--help`` and the docker checks read this
VARIABLES: tuple[Variable, ...] = tuple(f.metadata["setting"].variable for f in fields(Settings))


def markdown_table() -> str:
    """The README's settings table (between its settings-table markers), generated so it never drifts."""
    rows = [f"| `{v.name}` | `{v.default}` | {_cell(v.help)} |" for v in VARIABLES]
    return "\n".join(["| variable | default | meaning |", "|---|---|---|", *rows])


def variables_matching(patterns: Iterable[str]) -> list[Variable]:
    """The declared variables whose names match any of ``patterns`` (``fnmatch``), in declaration order.

    A pattern that matches nothing names a variable that does not exist: that is a bug, so it raises.
    """
    patterns = tuple(patterns)
    for pattern in patterns:
        if not any(fnmatchcase(v.name, pattern) for v in VARIABLES):
            raise ValueError(f"no setting is read from a variable matching {pattern!r}")
    return [v for v in VARIABLES if any(fnmatchcase(v.name, p) for p in patterns)]


def environment_help(patterns: Iterable[str], width: int = 100) -> str:
    """The text a command's ``--help`` ends with: each variable it reads, its meaning and its default."""
    lines = ["environment variables read (default in brackets; full list in the README):"]
    for variable in variables_matching(patterns):
        default = f" [{variable.default}]" if variable.default else ""
        meaning = variable.help.replace("`", "") + default
        lines.append(f"  {variable.name}")
        lines.extend(textwrap.wrap(meaning, width, initial_indent="      ", subsequent_indent="      "))
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")  # a bare | would end the table cell


#: settings that are no more, and what replaced them: set, they stop the start with that answer, where ignoring
#: them would change a worker's behaviour without a word
RETIRED = {
    "DQHASH_ROCKSDB_CACHE_MB": "DQHASH_ROCKSDB_MEMORY_MB, one bound for the whole worker's RocksDB memory (it was a "
    "block cache per table partition)",
}


def load(env: Mapping[str, str] | None = None) -> Settings:
    """Read and check every setting; raise SettingsError naming the first bad one."""
    source = os.environ if env is None else env
    for retired, replacement in RETIRED.items():
        if retired in source:
            raise SettingsError(f"{retired} is no longer a setting: unset it, and set {replacement}")
    values: dict[str, Any] = {}
    for declared_field in fields(Settings):
        declared: Declared = declared_field.metadata["setting"]
        name, default, _ = declared.variable
        raw = source.get(name, default)
        values[declared_field.name] = declared.read(name, raw if declared.secret else raw.strip())
    _check_together(values)
    settings = Settings(**values)
    _ = settings.catalog  # read now: a bad catalog stops start-up, not the first record of its table
    return settings


_TOPICS = (
    "onprem_topic",
    "cloud_topic",
    "audit_topic",
    "metrics_topic",
    "dlq_topic",
    "repair_topic",
    "snapshot_topic",
    "triage_topic",
)


def _check_together(values: dict[str, Any]) -> None:
    """The settings that only make sense together."""
    topics = [values[t] for t in _TOPICS]
    if len(set(topics)) != len(topics):
        raise SettingsError(f"the DQHASH_*_TOPIC settings must name eight different topics, got {topics}")
    _kafka_security(values)
    if values["web_token_reads"] and not values["web_token"]:
        raise SettingsError("DQHASH_WEB_TOKEN_READS=true needs DQHASH_WEB_TOKEN (the token the reads must carry)")


def _kafka_security(values: dict[str, Any]) -> None:
    """The Kafka security settings, checked as a whole: a half-configured TLS or SASL setup fails at start,
    naming what is missing, instead of at the first connection with a broker's terse refusal."""
    protocol, mechanism = values["kafka_security_protocol"], values["kafka_sasl_mechanism"]
    username, password = values["kafka_username"], values["kafka_password"]
    if protocol.startswith("SASL_"):
        if mechanism not in SASL_MECHANISMS:
            raise SettingsError(
                f"DQHASH_KAFKA_SASL_MECHANISM={mechanism!r} is invalid with {protocol}: expected one of "
                f"{', '.join(SASL_MECHANISMS)}"
            )
        if not username or not password:
            raise SettingsError(f"{protocol} needs DQHASH_KAFKA_USERNAME and DQHASH_KAFKA_PASSWORD")
    elif mechanism or username or password:
        raise SettingsError(
            f"DQHASH_KAFKA_SASL_MECHANISM, _USERNAME or _PASSWORD is set, but DQHASH_KAFKA_SECURITY_PROTOCOL="
            f"{protocol} uses no SASL: set it to SASL_SSL (or SASL_PLAINTEXT), or unset them"
        )
    files = {
        "DQHASH_KAFKA_SSL_CA": values["kafka_ssl_ca"],
        "DQHASH_KAFKA_SSL_CERT": values["kafka_ssl_cert"],
        "DQHASH_KAFKA_SSL_KEY": values["kafka_ssl_key"],
    }
    if protocol in ("SSL", "SASL_SSL"):
        for name, file in files.items():
            if file and not Path(file).is_file():
                raise SettingsError(f"{name}={file!r}: no such file")
        if bool(files["DQHASH_KAFKA_SSL_CERT"]) != bool(files["DQHASH_KAFKA_SSL_KEY"]):
            raise SettingsError("mutual TLS needs both DQHASH_KAFKA_SSL_CERT and DQHASH_KAFKA_SSL_KEY")
    elif any(files.values()):
        raise SettingsError(
            f"DQHASH_KAFKA_SSL_* files are set, but DQHASH_KAFKA_SECURITY_PROTOCOL={protocol} uses no TLS: "
            "set it to SSL (or SASL_SSL), or unset them"
        )
