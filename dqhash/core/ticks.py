"""A tick carries the sweep horizon its sender saw, so that no reading of it sweeps further than the first.

A window counts a tick's verdicts once: a tick read again (a rebalance before its offset was committed, a
restart) is recognised by its offset and adds nothing (``engine.window_book``). That is exact only if the
tick, read again, gives no verdict the first reading did not. Swept with the reader's own clock and horizon,
a tick read again later, or by a new owner whose inputs are read further, would give verdicts for deadlines
that came due since, and their counts would be dropped as a repeat. So the sender stamps the tick with its
horizon (and its time, for the record), and every reading sweeps that far at most, and no further than its own
horizon either: a new owner still catching up sweeps less, and leaves the rest to the next tick. The sweep's
clock stays the reader's: rechecks and deferrals are timed from now, not from when the tick was sent.
"""

from __future__ import annotations


def encode_tick(now_ms: int, horizon_ms: int) -> bytes:
    return b"%d:%d" % (now_ms, horizon_ms)


def tick_horizon(value: bytes | None) -> int | None:
    """The horizon a tick's sender saw, or None for a tick without one (an older worker's, or a test's)."""
    if not value:
        return None
    now, _, horizon = value.partition(b":")
    try:
        return int(horizon or now)  # an older worker's tick carries its time alone, its horizon at most
    except ValueError:
        return None
