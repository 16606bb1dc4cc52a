"""The audit record, declared once: its fields in order, each with its Cassandra type.

The Kafka record (``outputs.audit_record``), the Cassandra tables and their INSERTs (``cloud.audit_sink``), the
migration of existing tables (``dqhash cassandra migrate``) and ``docs/cassandra-audit.cql`` all follow this
list; ``tests/unit/core/test_audit_schema.py`` fails when a field is added in one place only.
"""

from __future__ import annotations

from typing import NamedTuple

#: CQL's reserved words among the field names: their columns are written quoted
_RESERVED = frozenset({"table"})


class AuditField(NamedTuple):
    name: str
    cql: str  # its Cassandra column type
    doc: str

    @property
    def column(self) -> str:
        """The field as a CQL column identifier (``"table"`` is a reserved word, so it is quoted)."""
        return f'"{self.name}"' if self.name in _RESERVED else self.name


AUDIT_FIELDS: tuple[AuditField, ...] = (
    AuditField("audit_id", "text", "deterministic: the same classification of the same event, the same id"),
    AuditField("pk", "text", "the canonical primary key"),
    AuditField("table", "text", "the on-prem table of the row (docs/catalog.md)"),
    AuditField("event_id", "text", "the on-prem event classified"),
    AuditField("status", "text", "the verdict (docs/classification.md)"),
    AuditField("reason", "text", "why, in words"),
    AuditField("late", "boolean", "a revision after the deadline, or a withdrawal"),
    AuditField("action", "text", "the on-prem change: INSERT, UPDATE, DELETE, SNAPSHOT"),
    AuditField("hash_onprem", "text", "version:digest of the on-prem row"),
    AuditField("hash_cloud", "text", "version:digest of the cloud row, null when not found"),
    AuditField("event_ts", "timestamp", "when the change was committed on-prem"),
    AuditField("cloud_ts", "timestamp", "when the cloud observation the verdict rests on was made"),
    AuditField("window_start", "timestamp", "the event's tumbling window"),
    AuditField("window_end", "timestamp", "its end"),
    AuditField("classified_at", "timestamp", "when the verdict was given"),
    AuditField("time_to_classify_ms", "bigint", "from the event's arrival to its verdict"),
    AuditField("rechecks", "int", "re-reads of the cloud row before the verdict"),
    AuditField("recheck_results", "list<text>", "what each read showed"),
    AuditField("snapshot_id", "text", "the snapshot run, for a snapshot verdict"),
    AuditField("differing_columns", "list<text>", "the columns whose digests differ"),
    AuditField("withdraws", "text", "on a withdrawal: the audit id of the verdict it takes back"),
)
AUDIT_NAMES: tuple[str, ...] = tuple(f.name for f in AUDIT_FIELDS)
#: the fields as CQL column identifiers, in the same order
AUDIT_COLUMNS: tuple[str, ...] = tuple(f.column for f in AUDIT_FIELDS)
