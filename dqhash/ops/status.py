"""Lag and backpressure, as a worker can measure them: the logic of ``dq_kafka_lag`` and ``GET /dq/status``.

Pure: the collector (``dqhash.agents.status``) reads the numbers, this turns them into gauges and a view.

- **Lag**, per input partition: records = the partition's end offset minus the position after the newest
  record this worker processed; seconds = now minus that record's timestamp, while there is lag (a caught-up
  partition is 0 s behind, however long ago its last record came).
- **Backpressure**: how full each agent's tap (its buffer of fetched records) is, and the share of batches
  processed at ``DQHASH_BATCH_MAX``: a worker that only ever processes full batches is behind its input.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class PartitionLag(NamedTuple):
    topic: str
    partition: int
    records: int | None  # None: the end offset is not known yet (no fetch answered)
    seconds: float | None


def partition_lag(
    topic: str, partition: int, highwater: int | None, processed: tuple[int, int] | None, now_ms: int
) -> PartitionLag:
    """``processed``: (offset, timestamp ms) of the newest record processed, None when none was."""
    if highwater is None:
        return PartitionLag(topic, partition, None, None)
    position = processed[0] + 1 if processed is not None else None
    if position is None:
        return PartitionLag(topic, partition, highwater if highwater > 0 else 0, None if highwater > 0 else 0.0)
    records = max(0, highwater - position)
    seconds = round(max(0.0, (now_ms - processed[1]) / 1000), 3) if records and processed[1] else 0.0  # type: ignore[index]
    return PartitionLag(topic, partition, records, seconds)


class BatchStats:
    """Batches an agent processed since the last report, and how many were full."""

    __slots__ = ("batches", "full", "records")

    def __init__(self) -> None:
        self.batches = self.full = self.records = 0

    def saw(self, records: int, batch_max: int, waiting: int) -> None:
        """A batch is full when it took as many records as a batch holds and more were still waiting: its agent is
        behind. (The tick agent takes one tick a batch, so its batches are full only when ticks queue up.)"""
        self.batches += 1
        self.records += records
        self.full += records >= batch_max and waiting > 0

    def view(self) -> dict[str, Any]:
        """The counts since the last :meth:`take`, and the share of full batches."""
        return {
            "batches": self.batches,
            "records": self.records,
            "full_batches": self.full,
            "full_batch_share": round(self.full / self.batches, 3) if self.batches else 0.0,
        }

    def take(self) -> dict[str, Any]:
        """:meth:`view`, then the counts start again."""
        out = self.view()
        self.batches = self.full = self.records = 0
        return out


class Health(NamedTuple):
    """What readiness rests on, as a worker sees it."""

    #: seconds since the group coordinator last answered a heartbeat (None: none answered yet)
    heartbeat_age_s: float | None
    #: how long without an answered heartbeat means the broker is unreachable: the ownership lease's length
    heartbeat_limit_s: float
    #: partitions are assigned to this worker, and its lease on them holds
    assigned: bool
    lease_held: bool
    rebalancing: bool
    #: the furthest behind input partition, in seconds, and the bound (0: no bound)
    behind_s: float
    max_behind_s: float


def readiness(health: Health) -> dict[str, Any]:
    """Whether the worker can be trusted to classify now, and every reason it cannot (``GET /readyz``)."""
    reasons = []
    age = health.heartbeat_age_s
    if age is None or age > health.heartbeat_limit_s:
        reasons.append(
            "broker unreachable: no heartbeat answered "
            + ("yet" if age is None else f"for {age:.0f} s")
            + " (DQHASH_BROKER, the broker's health)"
        )
    if health.rebalancing:
        reasons.append("rebalancing: partitions are being reassigned")
    elif health.assigned and not health.lease_held:
        reasons.append("ownership lease lapsed: the worker may have lost its partitions (was it paused?)")
    if health.max_behind_s and health.behind_s > health.max_behind_s:
        reasons.append(
            f"time behind {health.behind_s:.0f} s is above DQHASH_READY_MAX_BEHIND_SECONDS={health.max_behind_s:g}"
        )
    return {"ready": not reasons, "reasons": reasons}


def worker_status(
    worker: str,
    lags: list[PartitionLag],
    taps: dict[str, tuple[int, int]],
    batches: dict[str, dict[str, Any]],
    lease_held: bool,
    rebalancing: bool,
    now_iso: str,
    ready: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One worker's part of ``GET /dq/status``. ``taps``: topic → (records buffered, capacity)."""
    known = [lag for lag in lags if lag.records is not None]
    return {
        "worker": worker,
        "measured_at": now_iso,
        "readiness": ready,
        "rebalancing": rebalancing,
        "lease_held": lease_held,
        "lag": [lag._asdict() for lag in sorted(lags)],
        "lag_records": sum(lag.records or 0 for lag in known),
        "lag_seconds_max": max((lag.seconds or 0.0 for lag in known), default=0.0),
        "backpressure": {
            "taps": {
                topic: {"buffered": size, "capacity": cap, "fill": round(size / cap, 3) if cap else 0.0}
                for topic, (size, cap) in sorted(taps.items())
            },
            "batches": batches,
            "tap_fill_max": max((size / cap for size, cap in taps.values() if cap), default=0.0),
            "full_batch_share_max": max((b["full_batch_share"] for b in batches.values()), default=0.0),
        },
    }


def group_status(mine: dict[str, Any], peers: list[dict[str, Any]], unreachable: list[str]) -> dict[str, Any]:
    """Every worker's status, and the group's totals: what ``GET /dq/status`` answers."""
    workers = [mine, *peers]
    return {
        "workers": workers,
        "lag_records": sum(w["lag_records"] for w in workers),
        "lag_seconds_max": max((w["lag_seconds_max"] for w in workers), default=0.0),
        "tap_fill_max": round(max((w["backpressure"]["tap_fill_max"] for w in workers), default=0.0), 3),
        "full_batch_share_max": max((w["backpressure"]["full_batch_share_max"] for w in workers), default=0.0),
        "ready": all((w.get("readiness") or {}).get("ready", True) for w in workers) and not unreachable,
        "unreachable_workers": unreachable,
    }
