"""``dqhash bench``'s sweep figure: one tick sweeping a thousand due pairs with 10,000 and with 1,000,000
settled pairs held, without Kafka: the sweep's cost follows the due pairs, not the pairs held.

And ``dqhash bench-domain``'s pending sweep: pairs never answered swept once due, all kept in memory and four times
as many as DQHASH_PENDING_IN_MEMORY keeps, so that passes over the pair table find the rest.
"""

from __future__ import annotations

import bisect
import logging
import statistics
import time
from typing import Any

import orjson

from dqhash import settings as settings_module


def resumable_scan(snapshot: list[tuple[bytes, bytes]]) -> Any:
    """A scan of a sorted snapshot that resumes after a key by bisection, as a RocksDB seek does."""
    keys = [key for key, _ in snapshot]

    def scan(table: Any, partition: int, after: bytes | None = None) -> Any:
        return (snapshot[i] for i in _resumed(keys, after))

    return scan


def _resumed(keys: list[bytes], after: bytes | None) -> range:
    """The positions of the sorted ``keys`` after ``after`` (all of them for None)."""
    return range(0 if after is None else bisect.bisect_right(keys, after), len(keys))


def sweep_ms(held: int, due: int = 1_000, repeats: int = 5) -> float:
    """One tick sweeping ``due`` pending pairs while ``held`` settled pairs sit in the table: the median of
    ``repeats`` ticks (one tick is a few tens of ms, which one scheduling hiccup on a shared machine doubles)."""
    from dqhash.core.codec import encode_state
    from dqhash.core.pair_state import CloudSeen, PairState, Tracked
    from dqhash.engine.reconciler import Reconciler
    from dqhash.ops.dogstatsd import Metrics

    settings = settings_module.load({"DQHASH_PARTITIONS": "1", "DQHASH_RETENTION_SECONDS": "86400"})
    t0 = 1_714_564_800_000
    settled = encode_state(
        PairState(
            Tracked("e", t0, "UPDATE", "v2", "a" * 64, t0, t0, "MATCH", False),
            CloudSeen("v2", "a" * 64, t0, t0),
            ("f",),
            t0,
        )
    )
    pairs = {f"held-{i:08d}".encode(): settled for i in range(held)}
    snapshot = list(pairs.items())  # what a RocksDB iterator reads: the table as it was, started at no cost
    clock = [t0]
    reconciler = Reconciler(
        settings,
        pairs,
        Metrics("127.0.0.1", 9, [], enabled=False),
        resumable_scan(snapshot),
        clock=lambda: clock[0],
    )
    timings = []
    offset = 0
    for repeat in range(repeats):
        for i in range(due):
            pk = f"due-{repeat}-{i:05d}"
            event = orjson.dumps(
                {
                    "event_id": pk,
                    "hash_onprem": "b" * 64,
                    "partitionColumns": [{"type": "PK", "value": pk}],
                    "event_ts": clock[0],
                    "action": "UPDATE",
                }
            )
            reconciler.on_input("onprem", "t1", 0, offset, pk.encode(), event)
            offset += 1
        clock[0] += 10 * 60_000
        started = time.perf_counter()
        outs = reconciler.on_tick(0, repeat)
        timings.append((time.perf_counter() - started) * 1000)
        assert sum(1 for o in outs if o.topic == settings.audit_topic) == due
    return statistics.median(timings)


class LiveScan:
    """A scan of a table's pair keys as listed once, each read as it is now, resuming after a key by bisection:
    a RocksDB iterator over keys that do not change, with values that do."""

    def __init__(self) -> None:
        self.keys: dict[int, list[bytes]] = {}

    def __call__(self, table: Any, partition: int, after: bytes | None = None) -> Any:
        keys = self.keys.get(partition, [])
        return ((keys[i], table[keys[i]]) for i in _resumed(keys, after))


def pending_sweep_us(pending: int, in_memory: int, partitions: int = 4) -> float:
    """CPU µs a verdict to sweep ``pending`` pairs, never answered, once all are due, when memory keeps
    ``in_memory`` of them (DQHASH_PENDING_IN_MEMORY): past it, passes over the pair table find the rest."""
    from dqhash.core.partitioning import partition_for
    from dqhash.engine.reconciler import Reconciler
    from dqhash.ops.dogstatsd import Metrics

    settings = settings_module.load({"DQHASH_PARTITIONS": str(partitions), "DQHASH_PENDING_IN_MEMORY": str(in_memory)})
    t0, clock, horizon = 1_714_564_800_000, [1_714_564_801_000], [1_714_564_800_000]  # the inputs lag
    pairs: dict[bytes, bytes] = {}
    scan = LiveScan()
    reconciler = Reconciler(
        settings, pairs, Metrics("127.0.0.1", 9, [], enabled=False), scan, lambda: clock[0], lambda p, now: horizon[0]
    )
    for i in range(pending):
        pk = f"pending-{i:09d}"
        event = {"event_id": pk, "hash_onprem": "b" * 64, "partitionColumns": [{"type": "PK", "value": pk}],
                 "event_ts": t0 + i // 100, "action": "UPDATE"}  # fmt: skip
        reconciler.on_input("onprem", "t1", partition_for(pk, partitions), i, pk.encode(), orjson.dumps(event))
    scan.keys = {p: sorted(k for k in pairs if k[:1] < b"\xfd" and partition_for(k.decode(), partitions) == p)
                 for p in range(partitions)}  # fmt: skip
    clock[0] = horizon[0] = t0 + 10**8  # the cloud topic read again: every deadline is due
    passes = logging.getLogger("dqhash.engine.reconciler")
    level = passes.level
    passes.setLevel(logging.ERROR)  # each pass says so: the bench's output is its figures
    try:
        return _swept_us(reconciler, settings.audit_topic, pending, partitions)
    finally:
        passes.setLevel(level)


def _swept_us(reconciler: Any, audit_topic: str, pending: int, partitions: int) -> float:
    verdicts, ticks = 0, 0
    started = time.process_time()
    while verdicts < pending:
        if ticks > pending // 64 + 100:  # far more than the passes need: a pair was lost
            raise RuntimeError(f"{verdicts} of {pending} pending pairs swept after {ticks} ticks")
        for partition in range(partitions):
            outs = reconciler.on_tick(partition, ticks)
            verdicts += sum(1 for o in outs if o.topic == audit_topic)
        ticks += 1
    return (time.process_time() - started) / pending * 1e6
