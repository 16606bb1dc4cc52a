"""All configuration, read once from environment variables with documented defaults.

Every variable is listed in :data:`VARIABLES` (name, default, meaning) — the
README's table and the docker checks are generated from / checked against it.
A bad value stops start-up with :class:`SettingsError` naming the variable.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from dqhash.core.contracts import KNOWN_HASH_VERSIONS

T = TypeVar("T")


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
    name: str
    default: str
    help: str


VARIABLES: tuple[Variable, ...] = (
    Variable(
        "DQHASH_BROKER", "kafka://127.0.0.1:9092", "Kafka bootstrap URL(s), comma-separated (`kafka://host:port`)"
    ),
    Variable("DQHASH_APP_ID", "dqhash", "Faust app id = Kafka consumer group; prefixes internal topics"),
    Variable("DQHASH_ONPREM_TOPIC", "topic1", "on-prem change events (Topic-1)"),
    Variable("DQHASH_CLOUD_TOPIC", "topic2", "cloud hashes (Topic-2)"),
    Variable("DQHASH_AUDIT_TOPIC", "dq-audit", "one record per classification"),
    Variable("DQHASH_METRICS_TOPIC", "dq-metrics", "one record per closed window and partition"),
    Variable("DQHASH_DLQ_TOPIC", "dq-dlq", "rejected records, original bytes + reason headers"),
    Variable(
        "DQHASH_PARTITIONS",
        "4",
        "partitions of the input, internal and table topics (must match existing input topics)",
    ),
    Variable("DQHASH_REPLICATION_FACTOR", "1", "replication factor for topics dqhash creates"),
    Variable("DQHASH_WINDOW_SECONDS", "60", "tumbling window length on event time"),
    Variable("DQHASH_GRACE_SECONDS", "30", "grace after window end (and after arrival) before MISSING_CLOUD"),
    Variable("DQHASH_RETENTION_SECONDS", "86400", "settled per-PK state is dropped this long after its last change"),
    Variable("DQHASH_TICK_SECONDS", "1.0", "how often each partition's deadlines are swept"),
    Variable("DQHASH_HASH_STRATEGY", "v2", "hash version assumed for hashes that carry none (v1 | v2)"),
    Variable("DQHASH_DATA_DIR", "./dqhash-data", "local RocksDB state; wipe it when topics are recreated"),
    Variable("DQHASH_WEB_PORT", "6066", "Faust web server port (table-inspection views)"),
    Variable(
        "DQHASH_WEB_HOST", "", "host name other replicas use to reach this worker's web server (default: hostname)"
    ),
    Variable(
        "DQHASH_WEB_BIND",
        "0.0.0.0",
        "interface the web server listens on; replicas forward `/dq/pairs/{pk}` and gather list views from each "
        "other at DQHASH_WEB_HOST:DQHASH_WEB_PORT, so bind one they can reach (`127.0.0.1` for a single worker)",
    ),
    Variable(
        "DQHASH_WEB_TOKEN",
        "",
        "secret bearer token for endpoints that change something (`POST /dq/dlq/replay`; disabled while empty); "
        "sent as `Authorization: Bearer <token>`",
    ),
    Variable("DQHASH_WEB_TOKEN_READS", "false", "also require the token for every read view (true | false)"),
    Variable(
        "DQHASH_KAFKA_SECURITY_PROTOCOL",
        "PLAINTEXT",
        "PLAINTEXT | SSL | SASL_PLAINTEXT | SASL_SSL, for every Kafka client",
    ),
    Variable("DQHASH_KAFKA_SASL_MECHANISM", "", "with SASL_*: PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512"),
    Variable("DQHASH_KAFKA_USERNAME", "", "with SASL_*: the SASL user"),
    Variable("DQHASH_KAFKA_PASSWORD", "", "with SASL_*: the SASL password (secret: never logged or shown)"),
    Variable("DQHASH_KAFKA_SSL_CA", "", "with SSL / SASL_SSL: CA bundle file (empty: the system's trust store)"),
    Variable("DQHASH_KAFKA_SSL_CERT", "", "with SSL / SASL_SSL: client certificate file (mutual TLS; with the key)"),
    Variable("DQHASH_KAFKA_SSL_KEY", "", "with SSL / SASL_SSL: client private key file"),
    Variable("DQHASH_KAFKA_SSL_KEY_PASSWORD", "", "password of the client key, if it has one (secret)"),
    Variable("DQHASH_SESSION_TIMEOUT", "30", "Kafka consumer session timeout, seconds (6 is good for local runs)"),
    Variable(
        "DQHASH_SHUTDOWN_SECONDS",
        "8",
        "a worker told to stop (SIGTERM) that has not stopped after this long "
        "(e.g. the broker is gone) exits anyway; uncommitted records are redelivered",
    ),
    Variable("DQHASH_STORE", "rocksdb://", "Faust table store (`rocksdb://`; `memory://` for tests only)"),
    Variable("DQHASH_ROCKSDB_CACHE_MB", "64", "RocksDB block cache per table partition, MiB"),
    Variable(
        "DQHASH_BATCH_MAX",
        "1000",
        "most records an agent processes as one batch (what is buffered, never waited for; "
        "one table write per key per batch)",
    ),
    Variable(
        "DQHASH_GC_THRESHOLD",
        "100000",
        "allocations between Python's young-generation garbage collections "
        "(Python's default, 700, spent ~12 % of a busy worker in the collector; 0 keeps Python's settings)",
    ),
    Variable("DD_AGENT_HOST", "127.0.0.1", "DogStatsD host"),
    Variable("DD_DOGSTATSD_PORT", "8125", "DogStatsD UDP port"),
    Variable("DD_ENV", "", "DataDog env tag"),
    Variable("DD_SERVICE", "dqhash", "DataDog service tag"),
    Variable("DD_VERSION", "", "DataDog version tag"),
    Variable("DQHASH_METRICS_ENABLED", "true", "send DogStatsD metrics (true | false)"),
    Variable("DQHASH_ROLE", "all", "what a worker runs: all | reconciler | producer (the cloud hash producer alone)"),
    Variable(
        "DQHASH_LOOKUPS", "false", "dqhash's own cloud producer answers lookups (true), or Topic-2 comes from elsewhere"
    ),
    Variable("DQHASH_LOOKUP_DELAY_SECONDS", "1", "wait after an on-prem event before reading the cloud row"),
    Variable("DQHASH_RECHECKS", "2", "re-reads before a final MISMATCH / MISSING_CLOUD (with lookups)"),
    Variable("DQHASH_RECHECK_BACKOFF_SECONDS", "2", "the n-th recheck waits n times this"),
    Variable("DQHASH_ANSWER_WAIT_SECONDS", "60", "a deadline waits at most this long for an unanswered lookup"),
    Variable("DQHASH_REPAIR_TOPIC", "dq-repair", "confirmed problems (MISMATCH, MISSING_CLOUD, ...), for a resync job"),
    Variable(
        "DQHASH_SNAPSHOT_TOPIC",
        "dq-snapshots",
        "snapshot runs: the publishers' and scanners' progress, each partition's reconciliation (compacted)",
    ),
    Variable(
        "DQHASH_TRIAGE_TOPIC",
        "dq-triage",
        "acknowledged and resolved mismatches, by audit id (compacted; every worker follows it)",
    ),
    Variable(
        "DQHASH_VERIFY_DELETES",
        "false",
        "check that an on-prem DELETE reached the cloud (DELETE_CONFIRMED / DELETE_NOT_PROPAGATED) instead of "
        "SKIPPED_DELETE: by a lookup, or by a Topic-2 `hash_cloud: null` after the delete (true | false)",
    ),
    Variable(
        "DQHASH_ONPREM_TOMBSTONES",
        "delete",
        "a Topic-1 tombstone (key, no value, as Debezium emits after a delete): `delete` of the keyed PK, or "
        "`dead_letter` (EMPTY_VALUE) when Topic-1 keys are not PKs",
    ),
    Variable(
        "DQHASH_REVERIFY_ROWS_PER_SECOND",
        "0",
        "with lookups: re-read this many settled MATCH rows a second, for the whole table, to catch cloud drift "
        "(0: off)",
    ),
    Variable(
        "DQHASH_REVERIFY_MIN_AGE_SECONDS",
        "3600",
        "a settled MATCH is re-read only once it has been unchanged this long",
    ),
    Variable(
        "DQHASH_SCHEMA_REGISTRY_URL",
        "",
        "Confluent Schema Registry for Topic-1 / Topic-2 records in its wire format (Avro or JSON Schema); empty: "
        "JSON only",
    ),
    Variable("DQHASH_SCHEMA_REGISTRY_USERNAME", "", "registry basic-auth user (Confluent Cloud: the API key)"),
    Variable("DQHASH_SCHEMA_REGISTRY_PASSWORD", "", "registry basic-auth password / API secret (secret)"),
    Variable("DQHASH_SCHEMA_REGISTRY_TIMEOUT_SECONDS", "2", "per-request timeout to the registry"),
    Variable("DQHASH_SCHEMA_REGISTRY_RETRIES", "3", "retries before a record is dead-lettered REGISTRY_UNAVAILABLE"),
    Variable("DQHASH_CLOUD_STORE", "cassandra", "where the producer reads rows: cassandra | sqlite"),
    Variable("DQHASH_HASH_COLUMNS", "", "comma-separated columns to hash (empty: every column)"),
    Variable("DQHASH_HASH_TYPES", "", "column=cqltype declarations for the hasher, e.g. amount=decimal"),
    Variable(
        "DQHASH_COLUMN_DIGESTS",
        "true",
        "add per-column digests to the cloud hashes the producer sends (lookups, rechecks), so a MISMATCH names its "
        "columns (true | false); false saves about 20 bytes a column in each Topic-2 record",
    ),
    Variable("DQHASH_SQLITE_PATH", "./cloud.db", "SQLite file of the embedded cloud store"),
    Variable("DQHASH_SQLITE_TABLE", "rows", "table in the SQLite file"),
    Variable("DQHASH_SQLITE_KEY_COLUMNS", "id", "comma-separated key columns of the SQLite table"),
    Variable("DQHASH_CASSANDRA_CONTACT_POINTS", "127.0.0.1", "comma-separated Cassandra hosts"),
    Variable("DQHASH_CASSANDRA_PORT", "9042", "Cassandra native port"),
    Variable("DQHASH_CASSANDRA_LOCAL_DC", "", "local data center for DC-aware routing (empty: the driver's guess)"),
    Variable("DQHASH_CASSANDRA_KEYSPACE", "", "keyspace of the cloud table"),
    Variable("DQHASH_CASSANDRA_TABLE", "", "the cloud table"),
    Variable("DQHASH_CASSANDRA_CONSISTENCY", "LOCAL_QUORUM", "read consistency (never downgraded)"),
    Variable("DQHASH_CASSANDRA_TIMEOUT_SECONDS", "2", "per-request timeout"),
    Variable("DQHASH_CASSANDRA_RETRIES", "3", "retries on timeout / unavailable before the DLQ"),
    Variable("DQHASH_CASSANDRA_MAX_IN_FLIGHT", "128", "concurrent reads per worker"),
    Variable("DQHASH_CASSANDRA_USERNAME", "", "credentials (empty: none)"),
    Variable("DQHASH_CASSANDRA_PASSWORD", "", "credentials"),
    Variable("DQHASH_CASSANDRA_TLS_CA", "", "CA file to enable TLS (empty: plain)"),
    Variable("DQHASH_CASSANDRA_AUDIT", "false", "also write every audit record to Cassandra (true | false)"),
    Variable("DQHASH_CASSANDRA_AUDIT_KEYSPACE", "dqhash_audit", "keyspace of the audit tables (must exist)"),
    Variable("DQHASH_AUDIT_TTL_DAYS", "90", "TTL of audit rows in Cassandra"),
)

_DEFAULTS = {v.name: v.default for v in VARIABLES}


def markdown_table() -> str:
    """The README's settings table (between its settings-table markers), generated so it never drifts."""
    rows = [
        f"| `{v.name}` | `{v.default}` | {v.help.replace('|', chr(92) + '|')} |" for v in VARIABLES
    ]  # a bare | ends a cell
    return "\n".join(["| variable | default | meaning |", "|---|---|---|", *rows])


@dataclass(frozen=True)
class Settings:
    broker: str
    app_id: str
    onprem_topic: str
    cloud_topic: str
    audit_topic: str
    metrics_topic: str
    dlq_topic: str
    partitions: int
    replication_factor: int
    window_ms: int
    grace_ms: int
    retention_ms: int
    tick_seconds: float
    hash_strategy: str
    data_dir: Path
    web_port: int
    web_host: str
    web_bind: str
    web_token: Secret
    web_token_reads: bool
    kafka_security_protocol: str
    kafka_sasl_mechanism: str
    kafka_username: str
    kafka_password: Secret
    kafka_ssl_ca: str
    kafka_ssl_cert: str
    kafka_ssl_key: str
    kafka_ssl_key_password: Secret
    session_timeout: float
    shutdown_seconds: float
    store: str
    rocksdb_cache_mb: int
    batch_max: int
    gc_threshold: int
    dd_host: str
    dd_port: int
    dd_env: str
    dd_service: str
    dd_version: str
    metrics_enabled: bool
    role: str
    lookups: bool
    lookup_delay_ms: int
    rechecks: int
    recheck_backoff_ms: int
    answer_wait_ms: int
    repair_topic: str
    snapshot_topic: str
    triage_topic: str
    verify_deletes: bool
    onprem_tombstones: str
    reverify_rows_per_second: float
    reverify_min_age_ms: int
    schema_registry_url: str
    schema_registry_username: str
    schema_registry_password: Secret
    schema_registry_timeout_s: float
    schema_registry_retries: int
    cloud_store: str
    hash_columns: tuple[str, ...] | None
    hash_types: str
    column_digests: bool
    sqlite_path: Path
    sqlite_table: str
    sqlite_key_columns: tuple[str, ...]
    cassandra_contact_points: tuple[str, ...]
    cassandra_port: int
    cassandra_local_dc: str
    cassandra_keyspace: str
    cassandra_table: str
    cassandra_consistency: str
    cassandra_timeout_s: float
    cassandra_retries: int
    cassandra_max_in_flight: int
    cassandra_username: str
    cassandra_password: Secret
    cassandra_tls_ca: str
    cassandra_audit: bool
    cassandra_audit_keyspace: str
    audit_ttl_days: int

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

    def dd_tags(self) -> list[str]:
        tags = [f"service:{self.dd_service}"]
        if self.dd_env:
            tags.append(f"env:{self.dd_env}")
        if self.dd_version:
            tags.append(f"version:{self.dd_version}")
        return tags


def load(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every setting; raise SettingsError naming the first bad one."""
    source = os.environ if env is None else env

    def raw(name: str) -> str:
        return source.get(name, _DEFAULTS[name]).strip()

    def parse(name: str, convert: Callable[[str], T], check: Callable[[T], bool], expect: str) -> T:
        text = raw(name)
        try:
            value = convert(text)
        except ValueError:
            raise SettingsError(f"{name}={text!r} is invalid: expected {expect}") from None
        if not check(value):
            raise SettingsError(f"{name}={text!r} is invalid: expected {expect}")
        return value

    def positive_int(name: str) -> int:
        return parse(name, int, lambda v: v > 0, "a whole number > 0")

    def seconds_ms(name: str) -> int:
        return int(parse(name, float, lambda v: v >= 0, "seconds >= 0") * 1000)

    def flag(name: str) -> bool:
        text = raw(name).lower()
        if text not in ("true", "1", "false", "0"):
            raise SettingsError(f"{name}={text!r} is invalid: expected true or false")
        return text in ("true", "1")

    def port(name: str) -> int:
        return parse(name, int, lambda v: 0 < v < 65536, "a port 1..65535")

    def nonnegative_int(name: str) -> int:
        return parse(name, int, lambda v: v >= 0, "a whole number >= 0")

    def secret(name: str) -> Secret:
        return Secret(source.get(name, ""))  # as given: a password may begin or end with a space

    def names(name: str) -> tuple[str, ...]:
        return tuple(part.strip() for part in raw(name).split(",") if part.strip())

    role = raw("DQHASH_ROLE").lower()
    if role not in ("all", "reconciler", "producer"):
        raise SettingsError(f"DQHASH_ROLE={role!r} is invalid: expected all, reconciler or producer")
    cloud_store = raw("DQHASH_CLOUD_STORE").lower()
    if cloud_store not in ("cassandra", "sqlite"):
        raise SettingsError(f"DQHASH_CLOUD_STORE={cloud_store!r} is invalid: expected cassandra or sqlite")
    consistency = raw("DQHASH_CASSANDRA_CONSISTENCY").upper()
    if consistency not in ("ONE", "TWO", "THREE", "QUORUM", "ALL", "LOCAL_QUORUM", "EACH_QUORUM", "LOCAL_ONE"):
        raise SettingsError(f"DQHASH_CASSANDRA_CONSISTENCY={consistency!r} is invalid: expected e.g. LOCAL_QUORUM")
    for name in (
        "DQHASH_ONPREM_TOPIC",
        "DQHASH_CLOUD_TOPIC",
        "DQHASH_AUDIT_TOPIC",
        "DQHASH_METRICS_TOPIC",
        "DQHASH_DLQ_TOPIC",
        "DQHASH_REPAIR_TOPIC",
        "DQHASH_SNAPSHOT_TOPIC",
        "DQHASH_TRIAGE_TOPIC",
        "DQHASH_APP_ID",
    ):
        if not raw(name) or any(c not in _TOPIC_CHARS for c in raw(name)):
            raise SettingsError(
                f"{name}={raw(name)!r} is invalid: expected a topic name of letters, digits, '.', '_', '-'"
            )
    broker = raw("DQHASH_BROKER")
    if not broker or any("://" not in url or not url.split("://", 1)[1] for url in broker.split(",")):
        raise SettingsError(f"DQHASH_BROKER={broker!r} is invalid: expected kafka://host:port[,kafka://host:port]")
    strategy = raw("DQHASH_HASH_STRATEGY").lower()
    if strategy not in KNOWN_HASH_VERSIONS:
        raise SettingsError(
            f"DQHASH_HASH_STRATEGY={strategy!r} is invalid: expected one of {sorted(KNOWN_HASH_VERSIONS)}"
        )
    window_ms = seconds_ms("DQHASH_WINDOW_SECONDS")
    if window_ms <= 0:
        raise SettingsError("DQHASH_WINDOW_SECONDS must be > 0")
    store = raw("DQHASH_STORE")
    if store not in ("rocksdb://", "memory://"):
        raise SettingsError(f"DQHASH_STORE={store!r} is invalid: expected rocksdb:// or memory://")
    topics = [
        raw(n)
        for n in (
            "DQHASH_ONPREM_TOPIC",
            "DQHASH_CLOUD_TOPIC",
            "DQHASH_AUDIT_TOPIC",
            "DQHASH_METRICS_TOPIC",
            "DQHASH_DLQ_TOPIC",
            "DQHASH_REPAIR_TOPIC",
            "DQHASH_SNAPSHOT_TOPIC",
            "DQHASH_TRIAGE_TOPIC",
        )
    ]
    if len(set(topics)) != len(topics):
        raise SettingsError(f"the DQHASH_*_TOPIC settings must name eight different topics, got {topics}")
    tombstones = raw("DQHASH_ONPREM_TOMBSTONES").lower()
    if tombstones not in ("delete", "dead_letter"):
        raise SettingsError(f"DQHASH_ONPREM_TOMBSTONES={tombstones!r} is invalid: expected delete or dead_letter")
    kafka = _kafka_security(raw, secret)
    if flag("DQHASH_WEB_TOKEN_READS") and not secret("DQHASH_WEB_TOKEN"):
        raise SettingsError("DQHASH_WEB_TOKEN_READS=true needs DQHASH_WEB_TOKEN (the token the reads must carry)")
    return Settings(
        broker=broker,
        app_id=raw("DQHASH_APP_ID"),
        onprem_topic=topics[0],
        cloud_topic=topics[1],
        audit_topic=topics[2],
        metrics_topic=topics[3],
        dlq_topic=topics[4],
        partitions=positive_int("DQHASH_PARTITIONS"),
        replication_factor=positive_int("DQHASH_REPLICATION_FACTOR"),
        window_ms=window_ms,
        grace_ms=seconds_ms("DQHASH_GRACE_SECONDS"),
        retention_ms=seconds_ms("DQHASH_RETENTION_SECONDS"),
        tick_seconds=parse("DQHASH_TICK_SECONDS", float, lambda v: 0.05 <= v <= 60, "seconds between 0.05 and 60"),
        hash_strategy=strategy,
        data_dir=Path(raw("DQHASH_DATA_DIR")),
        web_port=port("DQHASH_WEB_PORT"),
        web_host=raw("DQHASH_WEB_HOST"),
        web_bind=raw("DQHASH_WEB_BIND") or "0.0.0.0",
        web_token=secret("DQHASH_WEB_TOKEN"),
        web_token_reads=flag("DQHASH_WEB_TOKEN_READS"),
        **kafka,
        session_timeout=parse("DQHASH_SESSION_TIMEOUT", float, lambda v: 1 <= v <= 300, "seconds between 1 and 300"),
        shutdown_seconds=parse("DQHASH_SHUTDOWN_SECONDS", float, lambda v: 1 <= v <= 600, "seconds between 1 and 600"),
        store=store,
        rocksdb_cache_mb=positive_int("DQHASH_ROCKSDB_CACHE_MB"),
        batch_max=parse("DQHASH_BATCH_MAX", int, lambda v: 1 <= v <= 100_000, "an integer between 1 and 100000"),
        gc_threshold=parse(
            "DQHASH_GC_THRESHOLD",
            int,
            lambda v: v == 0 or 700 <= v <= 10_000_000,
            "0, or an integer between 700 and 10000000",
        ),
        dd_host=raw("DD_AGENT_HOST"),
        dd_port=port("DD_DOGSTATSD_PORT"),
        dd_env=raw("DD_ENV"),
        dd_service=raw("DD_SERVICE"),
        dd_version=raw("DD_VERSION"),
        metrics_enabled=flag("DQHASH_METRICS_ENABLED"),
        role=role,
        lookups=flag("DQHASH_LOOKUPS"),
        lookup_delay_ms=seconds_ms("DQHASH_LOOKUP_DELAY_SECONDS"),
        rechecks=nonnegative_int("DQHASH_RECHECKS"),
        recheck_backoff_ms=seconds_ms("DQHASH_RECHECK_BACKOFF_SECONDS"),
        answer_wait_ms=seconds_ms("DQHASH_ANSWER_WAIT_SECONDS"),
        repair_topic=raw("DQHASH_REPAIR_TOPIC"),
        snapshot_topic=topics[6],
        triage_topic=topics[7],
        verify_deletes=flag("DQHASH_VERIFY_DELETES"),
        onprem_tombstones=tombstones,
        reverify_rows_per_second=parse(
            "DQHASH_REVERIFY_ROWS_PER_SECOND", float, lambda v: 0 <= v <= 1_000_000, "rows a second, 0..1000000"
        ),
        reverify_min_age_ms=seconds_ms("DQHASH_REVERIFY_MIN_AGE_SECONDS"),
        schema_registry_url=_registry_url(raw("DQHASH_SCHEMA_REGISTRY_URL")),
        schema_registry_username=raw("DQHASH_SCHEMA_REGISTRY_USERNAME"),
        schema_registry_password=secret("DQHASH_SCHEMA_REGISTRY_PASSWORD"),
        schema_registry_timeout_s=parse(
            "DQHASH_SCHEMA_REGISTRY_TIMEOUT_SECONDS", float, lambda v: 0 < v <= 60, "seconds between 0 and 60"
        ),
        schema_registry_retries=nonnegative_int("DQHASH_SCHEMA_REGISTRY_RETRIES"),
        cloud_store=cloud_store,
        hash_columns=names("DQHASH_HASH_COLUMNS") or None,
        hash_types=raw("DQHASH_HASH_TYPES"),
        column_digests=flag("DQHASH_COLUMN_DIGESTS"),
        sqlite_path=Path(raw("DQHASH_SQLITE_PATH")),
        sqlite_table=raw("DQHASH_SQLITE_TABLE"),
        sqlite_key_columns=names("DQHASH_SQLITE_KEY_COLUMNS"),
        cassandra_contact_points=names("DQHASH_CASSANDRA_CONTACT_POINTS"),
        cassandra_port=port("DQHASH_CASSANDRA_PORT"),
        cassandra_local_dc=raw("DQHASH_CASSANDRA_LOCAL_DC"),
        cassandra_keyspace=raw("DQHASH_CASSANDRA_KEYSPACE"),
        cassandra_table=raw("DQHASH_CASSANDRA_TABLE"),
        cassandra_consistency=consistency,
        cassandra_timeout_s=parse("DQHASH_CASSANDRA_TIMEOUT_SECONDS", float, lambda v: v > 0, "seconds > 0"),
        cassandra_retries=nonnegative_int("DQHASH_CASSANDRA_RETRIES"),
        cassandra_max_in_flight=positive_int("DQHASH_CASSANDRA_MAX_IN_FLIGHT"),
        cassandra_username=raw("DQHASH_CASSANDRA_USERNAME"),
        cassandra_password=secret("DQHASH_CASSANDRA_PASSWORD"),
        cassandra_tls_ca=raw("DQHASH_CASSANDRA_TLS_CA"),
        cassandra_audit=flag("DQHASH_CASSANDRA_AUDIT"),
        cassandra_audit_keyspace=raw("DQHASH_CASSANDRA_AUDIT_KEYSPACE"),
        audit_ttl_days=positive_int("DQHASH_AUDIT_TTL_DAYS"),
    )


def _registry_url(url: str) -> str:
    if url and not url.startswith(("http://", "https://")):
        raise SettingsError(f"DQHASH_SCHEMA_REGISTRY_URL={url!r} is invalid: expected http(s)://host:port")
    return url


SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def _kafka_security(raw: Callable[[str], str], secret: Callable[[str], Secret]) -> dict[str, Any]:
    """The Kafka security settings, checked as a whole: a half-configured TLS or SASL setup fails at start,
    naming what is missing, instead of at the first connection with a broker's terse refusal."""
    protocol = raw("DQHASH_KAFKA_SECURITY_PROTOCOL").upper()
    if protocol not in SECURITY_PROTOCOLS:
        raise SettingsError(
            f"DQHASH_KAFKA_SECURITY_PROTOCOL={protocol!r} is invalid: expected one of {', '.join(SECURITY_PROTOCOLS)}"
        )
    mechanism = raw("DQHASH_KAFKA_SASL_MECHANISM").upper()
    username, password = raw("DQHASH_KAFKA_USERNAME"), secret("DQHASH_KAFKA_PASSWORD")
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
    files = {name: raw(name) for name in ("DQHASH_KAFKA_SSL_CA", "DQHASH_KAFKA_SSL_CERT", "DQHASH_KAFKA_SSL_KEY")}
    if protocol in ("SSL", "SASL_SSL"):
        for name, path in files.items():
            if path and not Path(path).is_file():
                raise SettingsError(f"{name}={path!r}: no such file")
        if bool(files["DQHASH_KAFKA_SSL_CERT"]) != bool(files["DQHASH_KAFKA_SSL_KEY"]):
            raise SettingsError("mutual TLS needs both DQHASH_KAFKA_SSL_CERT and DQHASH_KAFKA_SSL_KEY")
    elif any(files.values()):
        raise SettingsError(
            f"DQHASH_KAFKA_SSL_* files are set, but DQHASH_KAFKA_SECURITY_PROTOCOL={protocol} uses no TLS: "
            "set it to SSL (or SASL_SSL), or unset them"
        )
    return {
        "kafka_security_protocol": protocol,
        "kafka_sasl_mechanism": mechanism,
        "kafka_username": username,
        "kafka_password": password,
        "kafka_ssl_ca": files["DQHASH_KAFKA_SSL_CA"],
        "kafka_ssl_cert": files["DQHASH_KAFKA_SSL_CERT"],
        "kafka_ssl_key": files["DQHASH_KAFKA_SSL_KEY"],
        "kafka_ssl_key_password": secret("DQHASH_KAFKA_SSL_KEY_PASSWORD"),
    }


_TOPIC_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
