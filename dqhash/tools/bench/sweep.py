"""``dqhash bench``'s sweep figure: one tick sweeping a thousand due pairs with 10,000 and with 1,000,000
settled pairs held, without Kafka: the sweep's cost follows the due pairs, not the pairs held.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import orjson

from dqhash import settings as settings_module


def resumable_scan(snapshot: list[tuple[bytes, bytes]]) -> Any:
    """A scan of a sorted snapshot that resumes after a key by bisection, as a RocksDB seek does."""
    import bisect

    keys = [key for key, _ in snapshot]

    def scan(table: Any, partition: int, after: bytes | None = None) -> Any:
        start = 0 if after is None else bisect.bisect_right(keys, after)
        return (snapshot[i] for i in range(start, len(snapshot)))

    return scan


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
