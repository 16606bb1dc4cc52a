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

from dqhash.cloud.store import CloudStore, LookupFailed
from dqhash.core.hashing import RowHasher
from dqhash.core.lookups import LookupRequest
from dqhash.core.outputs import dlq_headers
from dqhash.core.records import Out
from dqhash.core.timeutil import format_ms, now_ms
from dqhash.ops.dogstatsd import Metrics

log = logging.getLogger(__name__)


class CloudConfigError(ValueError):
    """The producer cannot start: the message says what to change."""


class CloudHashReader:
    def __init__(
        self,
        store: CloudStore,
        hasher: RowHasher,
        cloud_topic: str,
        dlq_topic: str,
        metrics_topic: str,
        lookup_topic: str,
        metrics: Metrics,
        column_digests: bool = True,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.store, self.hasher, self.metrics, self.clock = store, hasher, metrics, clock
        self.cloud_topic, self.dlq_topic, self.metrics_topic, self.lookup_topic = (
            cloud_topic,
            dlq_topic,
            metrics_topic,
            lookup_topic,
        )
        self.column_digests = column_digests
        table_columns = store.columns()
        if hasher.fields is not None:
            unknown = [c for c in hasher.fields if c not in table_columns]
            if unknown:
                raise CloudConfigError(
                    f"unknown column(s) in the hash list (DQHASH_HASH_COLUMNS): {unknown}; the table has {list(table_columns)}"
                )
        self.drift_columns: set[str] = set()
        self.removed_columns: set[str] = set()
        self._in_flight: set[str] = set()  # PKs being read now

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
            row = await self.store.fetch(self.store.key_from_pk(request.pk))
        except LookupFailed as exc:
            self.metrics.lookup_failed(exc.reason)
            log.warning("lookup of pk %s failed for good (%s): %s", request.pk, exc.reason, exc)
            headers = dlq_headers(exc.reason, str(exc), self.lookup_topic, request.partition, request.offset, None)
            return [Out(self.dlq_topic, request.pk.encode(), request.raw, headers)]
        now = self.clock()
        doc: dict = {
            "pk": request.pk,
            "hash_cloud": None,
            "cloud_ts": now,
            "hash_version": self.hasher.strategy,
            "attempt": request.attempt,
        }
        outs: list[Out] = []
        if row is not None:
            outs.extend(self._check_schema(row, now))
            if self.column_digests:
                digest, doc["column_digests"] = self.hasher.hash_and_digests(row)
            else:
                digest = self.hasher.hash(row)
            doc["hash_cloud"] = digest.digest
            fields = self.hasher.fields or sorted(row)
            removed = [c for c in fields if c not in row]
            if removed:
                doc["columns_removed"] = removed
            if any(row.get(c) is None for c in fields if c in row):
                self.metrics.partial_row()
        self.metrics.looked_up(found=row is not None, attempt=request.attempt)
        outs.append(Out(self.cloud_topic, request.pk.encode(), orjson.dumps(doc)))
        return outs

    def _check_schema(self, row: dict, now: int) -> list[Out]:
        """Report each drifting column once, not once per row."""
        if self.hasher.fields is None:
            return []
        outs = []
        hashed = set(self.hasher.fields)
        for column in sorted(set(row) - hashed - set(self.store.key_columns) - self.drift_columns):
            self.drift_columns.add(column)
            self.metrics.schema_drift(column)
            log.warning("schema drift: column %r is in the cloud table but not hashed (DQHASH_HASH_COLUMNS)", column)
            outs.append(self._schema_event("schema_drift_detected", column, now))
        for column in sorted(hashed - set(row) - self.removed_columns):
            self.removed_columns.add(column)
            self.metrics.column_removed(column)
            log.warning("schema drift: hashed column %r is missing from the cloud table", column)
            outs.append(self._schema_event("column_removed", column, now))
        return outs

    def _schema_event(self, kind: str, column: str, now: int) -> Out:
        record = {"type": kind, "column": column, "detected_at": format_ms(now)}
        return Out(self.metrics_topic, f"schema:{column}".encode(), orjson.dumps(record))
