"""The records Topic-1 and Topic-2 carry, as parsed, and why a record is refused.

``dqhash.core.contracts`` reads raw bytes into these; everything downstream (the rules, the outputs, the
dead-letter topic) speaks of them. docs/contracts.md describes each field.
"""

from __future__ import annotations

from enum import Enum
from typing import NamedTuple

from dqhash.core.progress import Progress

#: Hash strategies a hash may be tagged with (see docs/hashing.md).
KNOWN_HASH_VERSIONS = frozenset({"v1", "v2"})
DEFAULT_HASH_VERSION = "v2"
#: Per-column digests are the first 16 hex characters (64 bits) of SHA-256 (docs/hashing.md)
COLUMN_DIGEST_HEX = 16
#: Columns a record may carry digests for, and the longest column name: pair state stays bounded.
MAX_DIGEST_COLUMNS, MAX_COLUMN_NAME = 256, 128


class Reason(str, Enum):
    """Why a record was rejected; travels as the ``dq.error.reason`` DLQ header."""

    INVALID_JSON = "INVALID_JSON"
    NOT_AN_OBJECT = "NOT_AN_OBJECT"
    EMPTY_VALUE = "EMPTY_VALUE"
    MISSING_FIELD = "MISSING_FIELD"
    INVALID_FIELD_TYPE = "INVALID_FIELD_TYPE"
    MISSING_PK = "MISSING_PK"
    INVALID_PK = "INVALID_PK"
    INVALID_HASH_FORMAT = "INVALID_HASH_FORMAT"
    UNKNOWN_HASH_VERSION = "UNKNOWN_HASH_VERSION"
    UNKNOWN_ACTION = "UNKNOWN_ACTION"
    INVALID_TIMESTAMP = "INVALID_TIMESTAMP"
    INVALID_COLUMN_DIGESTS = "INVALID_COLUMN_DIGESTS"
    #: the record names a table the catalog (DQHASH_CATALOG) neither declares nor matches by a pattern
    UNKNOWN_TABLE = "UNKNOWN_TABLE"
    #: Confluent wire format (Schema Registry): the schema id is unknown to the registry
    SCHEMA_NOT_FOUND = "SCHEMA_NOT_FOUND"
    #: the registry did not answer within its retries: the record waits in the DLQ to be replayed
    REGISTRY_UNAVAILABLE = "REGISTRY_UNAVAILABLE"
    #: the body does not decode by its schema (or is a format dqhash does not read, or no registry is set)
    UNDECODABLE = "UNDECODABLE"
    #: not a contract violation: an unexpected error while processing the record
    #: (a bug). The record is kept in the DLQ so it can be replayed after a fix.
    PROCESSING_ERROR = "PROCESSING_ERROR"


class Action(str, Enum):
    CREATE = "CREATE"
    UPDATE = "UPDATE"
    UPSERT = "UPSERT"
    DELETE = "DELETE"
    #: a row read by a whole-table snapshot (docs/snapshots.md); Debezium's ``READ`` / ``r`` mean the same
    SNAPSHOT = "SNAPSHOT"


class HashRef(NamedTuple):
    """A row hash together with the strategy that produced it.

    Hashes of different strategies are never compared as if equal, so the
    version always travels with the digest.
    """

    version: str
    digest: str  # 64 lower-case hex characters

    def __str__(self) -> str:
        return f"{self.version}:{self.digest}"


class OnPremEvent(NamedTuple):
    """One Topic-1 record: a change to a row of the on-prem source."""

    event_id: str
    pk: str  # canonical PK string, see canonical_pk()
    action: Action
    hash: HashRef | None  # None only for a DELETE that carries no hash
    event_ts: int  # epoch ms UTC
    snapshot_id: str | None = None  # set on a SNAPSHOT row: the run it belongs to
    snapshot_range: int | None = None  # the token range of the row's key, when its publisher knows it
    column_digests: dict[str, str] | None = None  # column → 16-hex digest, to name the columns that differ
    #: why its producer could not hash the row exactly (a value the source did not send, digits it lost): the
    #: change is UNVERIFIABLE, never compared (docs/classification.md row 36)
    unverifiable: str | None = None
    #: read by the source's own snapshot (Debezium's ``r``): ``event_ts`` is when it was read, which is later than
    #: the snapshot's consistent point, so any later event of the pk is newer than it (classification row 37)
    snapshot_read: bool = False


class CloudHash(NamedTuple):
    """One Topic-2 record: what the cloud copy held for a PK at ``cloud_ts``."""

    pk: str
    hash: HashRef | None  # None = row not found in the cloud
    cloud_ts: int  # epoch ms UTC
    column_digests: dict[str, str] | None = None
    columns_removed: tuple[str, ...] = ()  # hashed columns the cloud table no longer has (schema drift)
    snapshot_id: str | None = None  # set on a row read by ``dqhash snapshot scan``
    snapshot_range: int | None = None  # the token range it was read in


class SnapshotEnd(NamedTuple):
    """One side's snapshot is complete for the partition this record was written to (docs/snapshots.md).

    ``rows`` counts the snapshot's rows whose PK belongs to that partition: the partition's side is complete
    once that many distinct PKs of the snapshot have arrived there, whatever order the re-key topic gave them.
    """

    snapshot_id: str
    rows: int
    started_ts: int | None  # when the side began reading its table: changes after it are the stream's to judge
    #: a side written by several publishers (a change topic's partitions, each read by its own worker): this one's
    #: name, and how many there are; the partition's side is complete once every part's marker has come
    part: str | None = None
    parts: int = 1


class ProgressMarks(NamedTuple):
    """A producer's progress marks (``core.progress``): how far it has sent each table's changes."""

    marks: list[Progress]


class Rejection(NamedTuple):
    reason: Reason
    message: str
