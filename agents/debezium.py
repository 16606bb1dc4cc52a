"""The Debezium reader's agent: change topics chosen by a pattern → the Topic-1 records of their catalog tables.

Runs in workers that reconcile, when DQHASH_DEBEZIUM_TOPICS names a pattern. Each change becomes the on-prem
record of the existing contract (``core.debezium``), keyed by its pair key, and goes to Topic-1, where the
reconciler reads it like any producer's; a change it cannot read, or cannot verify exactly, goes to the DLQ
with its reason. The agent writes no table, so it takes its records in batches; a batch is produced before it is
acknowledged, so a crash reads it again and the Topic-1 records it sends again are the same events.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import orjson

from dqhash.core.catalog import TableSpec
from dqhash.core.contracts import canonical_pk
from dqhash.core.debezium import Refusal, Tombstone, onprem_record, read_change, refuse
from dqhash.core.hashing import RowHasher
from dqhash.core.outputs import dlq_headers
from dqhash.core.records import Out
from dqhash.core.table_keys import pair_key
from dqhash.kafka.topics import topics_matching

if TYPE_CHECKING:
    from dqhash.runtime import Runtime

log = logging.getLogger("dqhash.agents.debezium")
#: changes taken at once from the change topics
BATCH = 1_000


class DebeziumReader:
    """Change records → Topic-1 records and dead letters; one hasher per table, built once."""

    def __init__(self, settings: Any) -> None:
        self.settings, self.catalog = settings, settings.catalog
        self._hashers: dict[str, RowHasher] = {}
        self.tombstones = 0

    def hasher(self, spec: TableSpec) -> RowHasher:
        hasher = self._hashers.get(spec.name)
        if hasher is None:
            hasher = self._hashers[spec.name] = RowHasher(spec.hash_strategy, spec.columns, spec.types)
        return hasher

    def read(self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None,
             headers: Any) -> Out | None:  # fmt: skip
        """The Topic-1 record of one change record, its dead letter, or None for a tombstone."""
        settings = self.settings
        found = list(headers or ())
        change = read_change(key, value, found, topic, self.catalog, settings.debezium_binary_handling)
        if isinstance(change, Tombstone):
            self.tombstones += 1
            return None
        if not isinstance(change, Refusal):
            spec = self.catalog.get(change.table)
            made = onprem_record(change, spec, self.hasher(spec)) if spec is not None else None
            if isinstance(made, dict):
                pk = pair_key(change.table, canonical_pk(list(change.key)), self.catalog.default)
                return Out(settings.onprem_topic, pk.encode(), orjson.dumps(made))
            change = made if made is not None else refuse("UNKNOWN_TABLE", "no catalog entry", change.table)
        reason = str(change.reason)
        log.warning("change %s[%d]@%d refused (%s): %s", topic, partition, offset, reason, change.message)
        headers_out = dlq_headers(reason, change.message, topic, partition, offset, found, change.table)
        return Out(settings.dlq_topic, key, value or b"", headers_out)


def register(runtime: Runtime) -> Any:
    """The agent on the change topics that match DQHASH_DEBEZIUM_TOPICS now (none: no agent, and a warning)."""
    app, settings, outputs = runtime.app, runtime.settings, runtime.outputs
    names = topics_matching(settings, settings.debezium_topics)
    if not names:
        log.warning(
            "no topic matches DQHASH_DEBEZIUM_TOPICS=%r yet: no change topic is read; restart the workers once the "
            "connector has created its topics",
            settings.debezium_topics,
        )
        return None
    log.info("reading Debezium change topics %s", ", ".join(names))
    changes = app.topic(*names, key_serializer="raw", value_serializer="raw")
    reader = DebeziumReader(settings)

    async def debezium_changes(stream: Any) -> None:
        """Read Debezium change events; publish each as its table's Topic-1 record."""
        async for events in stream.take_events(BATCH, within=0.2):
            outs = []
            for event in events:
                message = event.message
                try:
                    out = reader.read(
                        message.topic, message.partition, message.offset, message.key, message.value, message.headers
                    )
                except Exception as exc:  # one bad change never stops the reader: dead-lettered, the batch goes on
                    log.exception("error reading change %s[%d]@%d", message.topic, message.partition, message.offset)
                    headers = dlq_headers("PROCESSING_ERROR", f"{type(exc).__name__}: {exc}"[:500], message.topic,
                                          message.partition, message.offset, message.headers)  # fmt: skip
                    out = Out(settings.dlq_topic, message.key, message.value or b"", headers)
                if out is not None:
                    outs.append(out)
            await outputs.produce(outs)

    return app.agent(changes, name=f"{__name__}.debezium_changes", concurrency=1)(debezium_changes)
