"""Message contracts: raw Kafka bytes → typed, immutable records, or a rejection.

Parsing never raises. Every input, however broken, yields either a record or a
:class:`Rejection` carrying a machine-readable :class:`Reason`; the stream layer
dead-letters rejections with that reason. The rules are written out in
``docs/contracts.md``; keep the two in step.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, NamedTuple

import orjson

from dqhash.core.catalog import Catalog, check_name
from dqhash.core.input_records import (
    COLUMN_DIGEST_HEX,
    DEFAULT_HASH_VERSION,
    KNOWN_HASH_VERSIONS,
    MAX_COLUMN_NAME,
    MAX_DIGEST_COLUMNS,
    Action,
    CloudHash,
    HashRef,
    OnPremEvent,
    ProgressMarks,
    Reason,
    Rejection,
    SnapshotEnd,
)
from dqhash.core.jsontext import JsonTextError, loads_exact
from dqhash.core.progress import PROGRESS_FIELD, parse_progress
from dqhash.core.record_keys import CONTROL, load_object, pk_from_partition_columns, pk_from_value, read_pk
from dqhash.core.table_keys import SEPARATOR, pair_key
from dqhash.core.timeutil import MAX_EPOCH_MS, MIN_EPOCH_MS, TimestampError, parse_timestamp
from dqhash.core.tuples import build

try:
    from dqhash.core._fasthash import column_digests_ok  # type: ignore[import-not-found, import-untyped]
except ImportError:  # built without a C compiler: the reference below
    column_digests_ok = None

_ACTIONS = {a.value: a for a in Action} | {"READ": Action.SNAPSHOT, "R": Action.SNAPSHOT}
_HEX64 = re.compile(r"[0-9a-f]{64}")
_VERSION = re.compile(r"v[0-9]+")


def parse_onprem(
    raw: bytes | None, default_version: str = DEFAULT_HASH_VERSION, tables: Catalog | None = None
) -> OnPremEvent | SnapshotEnd | ProgressMarks | Rejection:
    """Parse a Topic-1 value; its ``pk`` is the pair key of its table and PK (``core.table_keys``)."""
    doc = load_object(raw)
    if isinstance(doc, Rejection):
        return doc
    if "snapshot_end" in doc or PROGRESS_FIELD in doc:
        return _marker(doc)
    event_id = doc.get("event_id")
    if type(event_id) is not str or not event_id:  # (a non-empty string: the usual form, no more checks)
        event_id = _other_event_id(event_id)
        if isinstance(event_id, Rejection):
            return event_id
    pk = read_pk(raw, doc, "partitionColumns", pk_from_partition_columns)
    if isinstance(pk, Rejection):
        return pk
    if tables is not None or "table" in doc:
        keyed = _in_table(doc, pk, tables, default_version)
        if isinstance(keyed, Rejection):
            return keyed
        pk, default_version = keyed
    action = _parse_action(doc.get("action"))
    if isinstance(action, Rejection):
        return action
    event_ts = _required_timestamp(doc, "event_ts")
    if isinstance(event_ts, Rejection):
        return event_ts
    if "unverifiable" in doc or "snapshot_read" in doc:  # a producer's rarer forms, off the hot path
        return _read_or_unverifiable(doc, event_id, pk, action, event_ts, default_version)
    hashed = _hashed(doc, action, default_version)
    if isinstance(hashed, Rejection):
        return hashed
    hash_ref, digests = hashed
    if action is not Action.SNAPSHOT:
        return build(OnPremEvent, (event_id, pk, action, hash_ref, event_ts, None, None, digests, None, False))
    snapshot = _snapshot_fields(doc)
    if isinstance(snapshot, Rejection):
        return snapshot
    return build(OnPremEvent, (event_id, pk, action, hash_ref, event_ts, *snapshot, digests, None, False))


def _hashed(
    doc: dict[str, Any], action: Action, default_version: str
) -> tuple[HashRef | None, dict[str, str] | None] | Rejection:
    """(``hash_onprem``, ``column_digests``) of a record, each checked."""
    hash_ref = _onprem_hash(doc, action, default_version)
    if isinstance(hash_ref, Rejection):
        return hash_ref
    digests = _optional_column_digests(doc)
    if isinstance(digests, Rejection):
        return digests
    return hash_ref, digests


def _read_or_unverifiable(
    doc: dict[str, Any], event_id: str, pk: str, action: Action, event_ts: int, default_version: str
) -> OnPremEvent | Rejection:
    """A row its producer could not hash exactly (``unverifiable``), or a row read by the source's own snapshot
    (``snapshot_read``: Debezium's ``r``, whose ``event_ts`` is when it was read, not a commit time)."""
    if action is Action.DELETE:
        field = "unverifiable" if "unverifiable" in doc else "snapshot_read"
        return Rejection(Reason.INVALID_FIELD_TYPE, f"{field} is for a change with a row image, not a DELETE")
    read = doc.get("snapshot_read", False)
    if not isinstance(read, bool):
        return Rejection(Reason.INVALID_FIELD_TYPE, "snapshot_read must be true or false")
    snapshot = _snapshot_fields(doc) if action is Action.SNAPSHOT else (None, None)
    if isinstance(snapshot, Rejection):
        return snapshot
    if doc.get("unverifiable") is not None:
        return _unverifiable(event_id, pk, action, event_ts, doc["unverifiable"], read, snapshot)
    hashed = _hashed(doc, action, default_version)
    if isinstance(hashed, Rejection):
        return hashed
    return OnPremEvent(
        event_id, pk, action, hashed[0], event_ts, snapshot[0], snapshot[1], hashed[1], None, snapshot_read=read
    )


def _unverifiable(
    event_id: str, pk: str, action: Action, event_ts: int, why: Any, read: bool, snapshot: tuple[str | None, int | None]
) -> OnPremEvent | Rejection:
    """A change its producer could not hash exactly: no hash, and the reason, which travels to its verdict."""
    if not isinstance(why, str) or not why.strip():
        return Rejection(Reason.INVALID_FIELD_TYPE, "unverifiable must be a non-empty string saying why")
    return OnPremEvent(
        event_id, pk, action, None, event_ts, snapshot[0], snapshot[1], None, why.strip()[:500], snapshot_read=read
    )


def _other_event_id(event_id: Any) -> str | Rejection:
    """An event id that is not a non-empty string: an integer's text, else why it cannot be one."""
    if event_id is None or event_id == "":
        return Rejection(Reason.MISSING_FIELD, "missing field: event_id")
    if isinstance(event_id, bool) or not isinstance(event_id, (str, int)):
        return Rejection(Reason.INVALID_FIELD_TYPE, "event_id must be a string or an integer")
    return str(event_id)


def _onprem_hash(doc: dict[str, Any], action: Action, default_version: str) -> HashRef | None | Rejection:
    """``hash_onprem``: required but for a DELETE (a hash a DELETE carries is still validated)."""
    raw_hash = doc.get("hash_onprem")
    if raw_hash is None:
        if action is not Action.DELETE:
            return Rejection(Reason.MISSING_FIELD, "missing field: hash_onprem")
        return None
    return parse_hash(raw_hash, doc.get("hash_version"), default_version)


def parse_cloud(
    raw: bytes | None, default_version: str = DEFAULT_HASH_VERSION, tables: Catalog | None = None
) -> CloudHash | SnapshotEnd | Rejection:
    """Parse a Topic-2 value; ``hash_cloud: null`` is valid and means "row not found"."""
    doc = load_object(raw)
    if isinstance(doc, Rejection):
        return doc
    if "snapshot_end" in doc:
        return _snapshot_end(doc)
    pk = read_pk(raw, doc, "pk", pk_from_value)
    if isinstance(pk, Rejection):
        return pk
    if tables is not None or "table" in doc:
        keyed = _in_table(doc, pk, tables, default_version)
        if isinstance(keyed, Rejection):
            return keyed
        pk, default_version = keyed
    if "hash_cloud" not in doc:
        return Rejection(Reason.MISSING_FIELD, "missing field: hash_cloud (use null for 'row not found')")
    cloud_ts = _required_timestamp(doc, "cloud_ts")
    if isinstance(cloud_ts, Rejection):
        return cloud_ts
    raw_hash = doc["hash_cloud"]
    hash_ref = None
    if raw_hash is not None:
        hash_ref = parse_hash(raw_hash, doc.get("hash_version"), default_version)
        if isinstance(hash_ref, Rejection):
            return hash_ref
    columns = _cloud_columns(doc)
    if isinstance(columns, Rejection):
        return columns
    snapshot = _snapshot_fields(doc) if "snapshot_id" in doc else (None, None)
    if isinstance(snapshot, Rejection):
        return snapshot
    return build(CloudHash, (pk, hash_ref, cloud_ts, *columns, *snapshot))


def _cloud_columns(doc: dict[str, Any]) -> tuple[dict[str, str] | None, tuple[str, ...]] | Rejection:
    """(``column_digests``, ``columns_removed``) of a cloud record, each checked."""
    digests = _optional_column_digests(doc)
    if isinstance(digests, Rejection):
        return digests
    removed = doc.get("columns_removed") or ()
    if removed and not (isinstance(removed, list) and all(isinstance(c, str) for c in removed)):
        return Rejection(Reason.INVALID_FIELD_TYPE, "columns_removed must be an array of column names")
    return digests, tuple(removed)


def _optional_column_digests(doc: dict[str, Any]) -> dict[str, str] | None | Rejection:
    digests = doc.get("column_digests")
    return None if digests is None else _column_digests(digests)


_DIGEST = re.compile(f"[0-9a-f]{{{COLUMN_DIGEST_HEX}}}")


class _TableKey(NamedTuple):
    """A class of its own, not ``tuple[str, str]``: a union of that with :class:`Rejection` (a tuple of two
    strings too) is simplified to the tuple type, and the compiled engine (docs/performance.md) would then lose
    the rejection's class."""

    pair_key: str
    hash_version: str


def _in_table(doc: dict[str, Any], pk: str, tables: Catalog | None, version: str) -> _TableKey | Rejection:
    """(pair key, the table's hash strategy) of a record's ``table`` field and PK (docs/catalog.md)."""
    table = doc.get("table")
    if table is not None and (not isinstance(table, str) or not check_name(table)):
        return Rejection(
            Reason.INVALID_FIELD_TYPE, f"table must be a table name (letters, digits, _ $ - .), got {str(table)[:64]!r}"
        )
    if tables is None:  # no catalog: the table only keeps the same PK in two tables apart
        return _TableKey(pair_key(table, pk, ""), version)
    if table is None:
        if not tables.default:
            return Rejection(Reason.MISSING_FIELD, "missing field: table (the catalog names no default table)")
        table = tables.default
    spec = tables.get(table)
    if spec is None:
        known = ", ".join(tables.known()[:10])
        return Rejection(
            Reason.UNKNOWN_TABLE, f"table {table!r} is not in the catalog (DQHASH_CATALOG); known: {known}"
        )
    return _TableKey(pair_key(table, pk, tables.default), spec.hash_strategy)


def _column_digests(value: Any) -> dict[str, str] | Rejection:
    """``{"column": "<16 hex>", ...}``, lower-cased; bounded in columns and name length."""
    if not isinstance(value, dict):
        return Rejection(Reason.INVALID_COLUMN_DIGESTS, "column_digests must be an object of column → digest")
    if len(value) > MAX_DIGEST_COLUMNS:
        return Rejection(Reason.INVALID_COLUMN_DIGESTS, f"column_digests has more than {MAX_DIGEST_COLUMNS} columns")
    return value if _well_formed(value) else _checked_one_by_one(value)


def _well_formed(value: dict[str, Any]) -> bool:
    """:func:`_well_formed_reference`'s answer, from one pass in C where the install built ``_fasthash``
    (``column_digests_ok``): every snapshot row carries a digest per column."""
    if column_digests_ok is not None:
        return column_digests_ok(value, MAX_COLUMN_NAME, COLUMN_DIGEST_HEX) is True
    return _well_formed_reference(value)


def _well_formed_reference(value: dict[str, Any]) -> bool:
    """Every name and digest already as :func:`_checked_one_by_one` would return it, checked in a few C-level
    passes: every snapshot row carries a digest per column, and checking them one by one cost more than its
    parse.

    A table's rows name the same columns, so a checked list of names is remembered (:func:`_names_well_formed`).
    Each digest is a string of 16 characters, and all of them together are lower-case hex (:func:`lower_hex`)."""
    if not value:
        return True
    for digest in value.values():
        if type(digest) is not str or len(digest) != COLUMN_DIGEST_HEX:
            return False
    return (
        lower_hex("".join(value.values()))
        and max(map(len, value)) <= MAX_COLUMN_NAME  # first: the cache below keeps only bounded lists
        and _names_well_formed(tuple(value))
    )


def lower_hex(text: str) -> bool:
    """Whether ``text`` is lower-case hexadecimal and nothing else, as ``[0-9a-f]*`` with an even length would say.

    Two C-level passes rather than a regular expression's steps per character, for the hash and the column
    digests of every record. ``bytes.fromhex`` also takes upper case and spaces between bytes; writing the bytes
    back as hex gives neither, so only the lower-case spelling without spaces equals it."""
    try:
        return bytes.fromhex(text).hex() == text
    except ValueError:  # a character that is no hex digit, or an odd length
        return False


@lru_cache(maxsize=512)
def _names_well_formed(names: tuple[str, ...]) -> bool:
    """Column names of at most MAX_COLUMN_NAME characters (the caller's check), none empty or holding a control
    character. Remembered per list of names, as a catalog's tables each send theirs: at most 512 lists of at most
    MAX_DIGEST_COLUMNS names, whatever producers send."""
    return "" not in names and not CONTROL.search("".join(names))


def _checked_one_by_one(value: dict[str, Any]) -> dict[str, str] | Rejection:
    """The digests lower-cased, or the rejection that names the first bad column."""
    digests = {}
    for name, digest in value.items():
        if not name or len(name) > MAX_COLUMN_NAME or CONTROL.search(name):
            return Rejection(Reason.INVALID_COLUMN_DIGESTS, f"column_digests: bad column name {name[:40]!r}")
        text = digest.lower() if isinstance(digest, str) else None
        if text is None or not _DIGEST.fullmatch(text):
            return Rejection(
                Reason.INVALID_COLUMN_DIGESTS,
                f"column_digests[{name[:40]!r}] must be {COLUMN_DIGEST_HEX} hex characters, got {str(digest)[:40]!r}",
            )
        digests[name] = text
    return digests


#: A snapshot id names a run in topic keys, table keys and URLs: short, and of plain characters.
_MAX_SNAPSHOT_ID = 128
_SNAPSHOT_ID = re.compile(f"[A-Za-z0-9][A-Za-z0-9._:-]{{0,{_MAX_SNAPSHOT_ID - 1}}}")


def check_snapshot_id(value: Any) -> str | Rejection:
    if isinstance(value, str) and len(value) <= _MAX_SNAPSHOT_ID and _snapshot_id_ok(value):
        return value
    if value is None or value == "":
        return Rejection(Reason.MISSING_FIELD, "missing field: snapshot_id (a snapshot row names its run)")
    return Rejection(
        Reason.INVALID_FIELD_TYPE,
        f"snapshot_id must be 1-{_MAX_SNAPSHOT_ID} characters of letters, digits and . _ : - (starting with a "
        f"letter or digit), got {str(value)[:40]!r}",
    )


@lru_cache(maxsize=256)
def _snapshot_id_ok(value: str) -> bool:
    """Remembered per id: every row of a run names the same one (at most 256 ids of at most _MAX_SNAPSHOT_ID
    characters are kept, whatever is sent)."""
    return _SNAPSHOT_ID.fullmatch(value) is not None


def _snapshot_fields(doc: dict[str, Any]) -> tuple[str, int | None] | Rejection:
    snapshot_id = check_snapshot_id(doc.get("snapshot_id"))
    if isinstance(snapshot_id, Rejection):
        return snapshot_id
    token_range = doc.get("range")
    if token_range is not None and (type(token_range) is not int or token_range < 0):
        return Rejection(Reason.INVALID_FIELD_TYPE, "range must be a non-negative integer (a token range index)")
    return snapshot_id, token_range


def _marker(doc: dict[str, Any]) -> SnapshotEnd | ProgressMarks | Rejection:
    """A Topic-1 record that is no change: a snapshot's end, or a producer's progress marks."""
    if "snapshot_end" in doc:
        return _snapshot_end(doc)
    marks = parse_progress(doc[PROGRESS_FIELD])
    return ProgressMarks(marks) if isinstance(marks, list) else Rejection(Reason.INVALID_FIELD_TYPE, marks)


def _snapshot_end(doc: dict[str, Any]) -> SnapshotEnd | Rejection:
    if doc.get("snapshot_end") is not True:
        return Rejection(Reason.INVALID_FIELD_TYPE, "snapshot_end must be true (it marks a side's end of a snapshot)")
    snapshot_id = check_snapshot_id(doc.get("snapshot_id"))
    if isinstance(snapshot_id, Rejection):
        return snapshot_id
    rows = doc.get("rows")
    if type(rows) is not int or rows < 0:
        return Rejection(Reason.INVALID_FIELD_TYPE, "rows must be a non-negative integer (the partition's row count)")
    started = doc.get("started_ts")
    if started is not None:
        try:
            started = parse_timestamp(started)
        except TimestampError as exc:
            return Rejection(Reason.INVALID_TIMESTAMP, f"started_ts: {exc}")
    part, parts = doc.get("part"), doc.get("parts", 1)
    if part is not None and (not isinstance(part, str) or not part or type(parts) is not int or parts < 1):
        return Rejection(Reason.INVALID_FIELD_TYPE, "part must be a name and parts a positive integer (its publishers)")
    return SnapshotEnd(snapshot_id, rows, started, part, parts if part is not None else 1)


def tombstone_event(key: bytes | None, partition: int, offset: int, timestamp_ms: int | None) -> bytes | Rejection:
    """A Topic-1 tombstone (a key, no value: what Debezium emits after a delete) as the DELETE it stands for.

    The key is the PK: its text, a JSON scalar, or a JSON object of key columns (Debezium's key struct, with or
    without its ``schema`` / ``payload`` envelope), whose values in order form the PK; or a pair key (the table,
    U+001F, then one of those). The event id names the
    record (``tombstone:<partition>:<offset>``), so a redelivery is the same event.
    """
    if not key:
        return Rejection(Reason.EMPTY_VALUE, "record has no value and no key (an empty tombstone)")
    if timestamp_ms is None:
        return Rejection(Reason.INVALID_TIMESTAMP, "tombstone without a record timestamp: its delete has no time")
    values: list[Any]
    table, sep, rest = key.partition(SEPARATOR.encode())
    if sep:  # a pair key (core.table_keys): the table, then the PK's text
        key = rest
    try:
        doc = loads_exact(key)
    except JsonTextError:
        doc = None
        values = [key.decode("utf-8", "replace")]
    else:
        if isinstance(doc, dict) and isinstance(doc.get("payload"), dict) and "schema" in doc:
            doc = doc["payload"]  # Debezium's JSON converter with schemas enabled
        if isinstance(doc, dict):
            values = list(doc.values())
        elif isinstance(doc, list):
            values = doc
        else:
            values = [doc]
    if not values:
        return Rejection(Reason.MISSING_PK, "tombstone key holds no key columns")
    event = {
        "event_id": f"tombstone:{partition}:{offset}",
        "partitionColumns": [{"type": "PK", "value": value} for value in values],
        "event_ts": timestamp_ms,
        "action": "DELETE",
    }
    if sep:
        event["table"] = table.decode("utf-8", "replace")
    return orjson.dumps(event)


def parse_hash(
    value: Any, declared_version: Any = None, default_version: str = DEFAULT_HASH_VERSION
) -> HashRef | Rejection:
    """Read ``[<version>:][sha256:]<64 hex>``, case-insensitive, into a HashRef.

    The version comes from the prefix, else from a ``hash_version`` field,
    else ``default_version``. A prefix that contradicts the field is refused.
    """
    if not isinstance(value, str):
        return Rejection(Reason.INVALID_HASH_FORMAT, f"hash must be a string, got {type(value).__name__}")
    version = default_version if declared_version is None else declared_version
    if type(version) is str and version in KNOWN_HASH_VERSIONS and len(value) == 64 and lower_hex(value):
        # the usual form, bare lowercase hex with no version or a known one (as publish and scan send it):
        # what the rest would return
        return build(HashRef, (version, value))
    return _spelled_hash(value, declared_version, default_version)


def _spelled_hash(value: str, declared_version: Any, default_version: str) -> HashRef | Rejection:
    """:func:`parse_hash` for any other spelling: upper case, a ``v1:`` or ``sha256:`` prefix, a version declared
    in another case, or something that is no hash."""
    *prefix, text = value.lower().split(":")
    if prefix and prefix[-1] == "sha256":
        prefix.pop()
    if len(prefix) > 1 or (prefix and not _VERSION.fullmatch(prefix[0])):
        return Rejection(
            Reason.INVALID_HASH_FORMAT,
            f"unsupported hash prefix in {value[:80]!r}; expected [v1:|v2:][sha256:]<64 hex>",
        )
    version = prefix[0] if prefix else None
    if not _HEX64.fullmatch(text):
        return Rejection(Reason.INVALID_HASH_FORMAT, f"hash is not 64 hex characters (SHA-256): {value[:80]!r}")
    if declared_version is not None:
        if not isinstance(declared_version, str):
            return Rejection(Reason.INVALID_FIELD_TYPE, "hash_version must be a string")
        declared_version = declared_version.lower()
        if version is not None and version != declared_version:
            return Rejection(
                Reason.INVALID_HASH_FORMAT, f"hash prefix {version!r} contradicts hash_version {declared_version!r}"
            )
        version = declared_version
    version = version or default_version
    if version not in KNOWN_HASH_VERSIONS:
        return Rejection(
            Reason.UNKNOWN_HASH_VERSION, f"unknown hash version {version[:16]!r}; known: {sorted(KNOWN_HASH_VERSIONS)}"
        )
    return HashRef(version, text)


def _required_timestamp(doc: dict[str, Any], field: str) -> int | Rejection:
    value = doc.get(field)
    if type(value) is int and MIN_EPOCH_MS <= value < MAX_EPOCH_MS:
        return value  # the usual form, epoch millis: what parse_timestamp would return
    if value is None:
        return Rejection(Reason.MISSING_FIELD, f"missing field: {field}")
    try:
        return parse_timestamp(value)
    except TimestampError as exc:
        return Rejection(Reason.INVALID_TIMESTAMP, f"{field}: {exc}")


def _parse_action(value: Any) -> Action | Rejection:
    if value is None:
        return Action.UPSERT
    if isinstance(value, str):
        action = _ACTIONS.get(value) or _ACTIONS.get(value.upper())
        if action is not None:
            return action
    return Rejection(
        Reason.UNKNOWN_ACTION,
        f"unknown action {str(value)[:32]!r}; expected one of CREATE, UPDATE, UPSERT, DELETE, SNAPSHOT (or READ / r)",
    )
