"""The cloud hash producer: lookup request → read the row by PK → canonical hash → Topic-2.

The Faust agent (dqhash.agents) hands it batches of lookup requests; this
module does the reading (through a :class:`CloudStore`), hashing and
reporting, and returns the records to produce.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

import orjson

from dqhash.cloud.store import LookupFailed
from dqhash.cloud.tables import CloudTable, CloudTables
from dqhash.core.lookups import LookupRequest
from dqhash.core.outputs import dlq_headers
from dqhash.core.records import Out
from dqhash.core.table_keys import split_key
from dqhash.core.timeutil import format_ms, now_ms
from dqhash.ops.dogstatsd import Metrics

log = logging.getLogger(__name__)


class CloudConfigError(ValueError):
    """The producer cannot start: the message says what to change."""


class CloudHashReader:
    def __init__(
        self,
        tables: CloudTables,
        cloud_topic: str,
        dlq_topic: str,
        metrics_topic: str,
        lookup_topic: str,
        metrics: Metrics,
        column_digests: bool = True,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.tables, self.metrics, self.clock = tables, metrics, clock
        self.cloud_topic, self.dlq_topic, self.metrics_topic, self.lookup_topic = (
            cloud_topic,
            dlq_topic,
            metrics_topic,
            lookup_topic,
        )
        self.column_digests = column_digests
        for table in tables.opened():  # a table opened up front (the single-table producer) is checked at start
            unknown = unknown_columns(table)
            if unknown:
                raise CloudConfigError(unknown)
        self._in_flight: set[str] = set()  # pair keys being read now
        #: tables whose hash list was checked against the cloud table's columns
        self._checked: set[str] = {table.name for table in tables.opened()}

    async def handle(self, requests: Iterable[LookupRequest]) -> list[Out]:
        """Serve a batch: each request waits for its time, reads run concurrently, one read per PK."""
        tasks = [asyncio.ensure_future(self._serve(request)) for request in requests]
        outs: list[Out] = []
        for result in await asyncio.gather(*tasks):
            outs.extend(result)
        return outs

    async def _serve(self, request: LookupRequest) -> list[Out]:
        wait_ms = request.not_before_ms - self.clock()
        if wait_ms > 0:
            await asyncio.sleep(wait_ms / 1000)  # replication delay / recheck backoff
        if request.pk in self._in_flight:
            self.metrics.lookup_coalesced()
            return []  # the read already under way answers this request too
        self._in_flight.add(request.pk)
        try:
            return await self._read(request)
        finally:
            self._in_flight.discard(request.pk)

    async def _read(self, request: LookupRequest) -> list[Out]:
        try:
            table, pk = self.tables.for_key(request.pk)
            if table.name not in self._checked:
                self._checked.add(table.name)
                unknown = unknown_columns(table)
                if unknown:
                    self._checked.discard(table.name)
                    raise LookupFailed("CLOUD_TABLE_UNREADABLE", unknown)
            found = await table.store.fetch(table.store.key_from_pk(pk))
        except LookupFailed as exc:
            self.metrics.lookup_failed(exc.reason)
            log.warning("lookup of pk %s failed for good (%s): %s", request.pk, exc.reason, exc)
            table = split_key(request.pk, self.tables.catalog.default)[0]
            headers = dlq_headers(
                exc.reason, str(exc), self.lookup_topic, request.partition, request.offset, None, table
            )
            return [Out(self.dlq_topic, request.pk.encode(), request.raw, headers)]
        now = self.clock()
        hasher = table.hasher
        doc: dict = {
            "pk": pk,
            "hash_cloud": None,
            "cloud_ts": now,
            "hash_version": hasher.strategy,
            "attempt": request.attempt,
        }
        if self.tables.named:  # the record names its table (docs/contracts.md)
            doc["table"] = table.name
        outs: list[Out] = []
        if found is not None:
            row = table.as_onprem(found)
            outs.extend(self._check_schema(table, row, now))
            if self.column_digests:
                digest, doc["column_digests"] = hasher.hash_and_digests(row)
            else:
                digest = hasher.hash(row)
            doc["hash_cloud"] = digest.digest
            fields = hasher.fields or sorted(row)
            removed = [c for c in fields if c not in row]
            if removed:
                doc["columns_removed"] = removed
            if any(row.get(c) is None for c in fields if c in row):
                self.metrics.partial_row()
        self.metrics.looked_up(found=found is not None, attempt=request.attempt)
        outs.append(Out(self.cloud_topic, request.pk.encode(), orjson.dumps(doc)))
        return outs

    def _check_schema(self, table: CloudTable, row: dict, now: int) -> list[Out]:
        """Report each drifting column once per table, not once per row."""
        if table.hasher.fields is None:
            return []
        outs = []
        hashed = set(table.hasher.fields)
        for column in sorted(set(row) - hashed - set(table.key_columns()) - table.drift_columns):
            table.drift_columns.add(column)
            self.metrics.schema_drift(column, table.name)
            log.warning("schema drift: column %r is in the cloud table %s but not hashed", column, table.spec.cloud)
            outs.append(self._schema_event(table, "schema_drift_detected", column, now))
        for column in sorted(hashed - set(row) - table.removed_columns):
            table.removed_columns.add(column)
            self.metrics.column_removed(column, table.name)
            log.warning("schema drift: hashed column %r is missing from the cloud table %s", column, table.spec.cloud)
            outs.append(self._schema_event(table, "column_removed", column, now))
        return outs

    def _schema_event(self, table: CloudTable, kind: str, column: str, now: int) -> Out:
        record = {"type": kind, "table": table.name, "column": column, "detected_at": format_ms(now)}
        return Out(self.metrics_topic, f"schema:{table.name}:{column}".encode(), orjson.dumps(record))


def unknown_columns(table: CloudTable) -> str:
    """Why the table's hash list cannot be served ("" when it can): columns the cloud table does not have."""
    if table.hasher.fields is None:
        return ""
    columns = table.onprem_columns()
    unknown = [c for c in table.hasher.fields if c not in columns]
    if not unknown:
        return ""
    return f"unknown column(s) in the hash list of table {table.name!r}: {unknown}; the table has {list(columns)}"
