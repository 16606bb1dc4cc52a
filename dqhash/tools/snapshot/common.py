"""What both snapshot sides share: the producer, the rows/s budget, progress records and end markers."""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from dqhash.core.partitioning import partition_for
from dqhash.core.snapshots import table_run as table_run  # re-exported: the tools name runs with it
from dqhash.core.table_keys import pair_key
from dqhash.core.timeutil import format_ms, now_ms
from dqhash.kafka.security import connect_args
from dqhash.settings import Settings

#: Progress goes to the snapshots topic (and stderr) at most this often.
PROGRESS_INTERVAL_S = 1.0


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class Budget:
    """A token bucket of rows a second (0: unlimited), so a scan never takes more than its share of a cluster."""

    def __init__(self, rows_per_second: float) -> None:
        self.rate = rows_per_second
        self._credit = 0.0
        self._at = time.monotonic()

    async def take(self, rows: int) -> None:
        if self.rate <= 0:
            return
        while True:
            now = time.monotonic()
            self._credit = min(self._credit + (now - self._at) * self.rate, max(float(rows), self.rate))
            self._at = now
            if self._credit >= rows:
                self._credit -= rows
                return
            await asyncio.sleep((rows - self._credit) / self.rate)


class SidePublisher:
    """Publishes one side of a snapshot run: rows to its topic at their PK's partition, progress, end markers.

    Rows are counted per partition as they are sent; the end marker of each partition names its count, so
    the reconciler knows when it has them all (``core.snapshots``).
    """

    def __init__(
        self,
        settings: Settings,
        side: str,
        snapshot_id: str,
        topic: str,
        extra: Mapping[str, Any],
        table: str | None = None,
    ) -> None:
        """``table``: the catalog table the run proves (its rows name it and are keyed by their pair keys);
        None for the single-table settings' table, whose rows stay as they were before tables existed."""
        self.settings, self.side, self.snapshot_id, self.topic = settings, side, snapshot_id, topic
        self.table = table
        self.extra = dict(extra) | ({"table": table} if table is not None else {})
        self.per_partition: Counter = Counter()
        self.rows = 0
        self.errors = 0
        self.started_ms = now_ms()
        self._started = time.monotonic()
        self._last_progress = 0.0
        self.producer = AIOKafkaProducer(**connect_args(settings), linger_ms=20, max_batch_size=512 * 1024)

    async def start(self) -> SidePublisher:
        try:
            await self.producer.start()
        except BaseException:  # the broker cannot be reached: release the client before the error is reported
            await self.producer.stop()
            raise
        await self.progress("running", force=True)
        return self

    async def send(self, pk: str, value: dict[str, Any]) -> int:
        """Send one row of the run at its pair key's partition; returns that partition."""
        key = pk
        if self.table is not None:
            value["table"] = self.table
            key = pair_key(self.table, pk, self.settings.catalog.default)
        partition = partition_for(key, self.settings.partitions)
        await self.producer.send(self.topic, orjson.dumps(value), key=key.encode(), partition=partition)
        self.per_partition[partition] += 1
        self.rows += 1
        return partition

    async def dead_letter(self, raw: bytes, headers: list[tuple[str, bytes]]) -> None:
        self.errors += 1
        await self.producer.send(self.settings.dlq_topic, raw, headers=headers)

    def elapsed(self) -> float:
        return max(1e-6, time.monotonic() - self._started)

    def rate(self) -> float:
        return self.rows / self.elapsed()

    async def progress(self, state: str, force: bool = False, **fields: Any) -> None:
        """A progress record (``<side>:<id>`` on the snapshots topic), at most once a second unless forced."""
        now = time.monotonic()
        if not force and now - self._last_progress < PROGRESS_INTERVAL_S:
            return
        self._last_progress = now
        record = {
            "type": "side",
            "side": self.side,
            "snapshot_id": self.snapshot_id,
            "state": state,
            "rows": self.rows,
            "errors": self.errors,
            "rows_per_s": round(self.rate(), 1),
            "started_at": format_ms(self.started_ms),
            "updated_at": format_ms(now_ms()),
            "elapsed_s": round(now - self._started, 3),
            **self.extra,
            **fields,
        }
        if state != "running":
            record["finished_at"] = record["updated_at"]
            record["partitions"] = {str(p): n for p, n in sorted(self.per_partition.items())}
        await self.producer.send(
            self.settings.snapshot_topic, orjson.dumps(record), key=f"{self.side}:{self.snapshot_id}".encode()
        )
        percent = fields.get("percent")
        say(
            f"  {self.side} {self.snapshot_id}: {state}, {self.rows:,} rows ({self.rate():,.0f}/s)"
            + (f", {percent:.1f}%" if percent is not None else "")
            + (f", ETA {fields['eta_s']:.0f}s" if fields.get("eta_s") is not None else "")
        )

    async def finish(self, started_ts: int, counts: Mapping[int, int] | None = None, **fields: Any) -> None:
        """Flush every row, then write each partition's end marker and the final progress record: ``done``, or
        ``failed`` with why when rows went to the DLQ (the run cannot prove the whole table then)."""
        await self.producer.flush()
        counts = counts if counts is not None else self.per_partition
        for partition in range(self.settings.partitions):
            marker = {
                "snapshot_id": self.snapshot_id,
                "snapshot_end": True,
                "rows": int(counts.get(partition, 0)),
                "started_ts": started_ts,
            }
            await self.producer.send(self.topic, orjson.dumps(marker), partition=partition)
        if self.errors:
            fields.setdefault(
                "error",
                f"{self.errors:,} row(s) could not be {'published' if self.side == 'onprem' else 'read'} and went to "
                f"{self.settings.dlq_topic} with their reason: fix them and run this side again under a new snapshot id",
            )
        await self.progress("failed" if self.errors else "done", force=True, percent=100.0, eta_s=0, **fields)
        await self.producer.flush()

    async def stop(self) -> None:
        await self.producer.stop()
