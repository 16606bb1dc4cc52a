"""How far a worker may trust that it has read an input partition: the bound of a deadline sweep.

A deadline swept before the cloud hash that answers it has been read would be a false
MISSING_CLOUD, so a sweep only goes as far as the cloud-side inputs are known to be read.
Kept free of I/O: the agents pass in what the consumer knows.
"""

from __future__ import annotations


def input_watermark(
    now: int,
    highwater: int | None,
    fetched_at: int | None,
    committed: int | None,
    last_read: tuple[int, int] | None,
) -> int:
    """When every record of the partition has been processed: the time the broker last confirmed where the
    partition ends (``fetched_at``, never later than ``now``); else the newest processed record's timestamp.

    ``highwater``: the partition's end offset as last fetched, ``None`` until the first fetch
    after an assignment, when nothing is known: no sweep then (a new owner must not sweep the
    deadlines that passed during a failover before it has read the backlog). ``fetched_at``: when
    the fetch that reported it was answered (wall-clock ms). Being caught up with a highwater learnt
    before a pause says nothing about the records produced during it: a deadline is swept only once a
    fetch answered after it showed nothing left to read.
    ``committed``: the group's committed offset (next to read; records before it were processed,
    possibly by a previous owner). ``last_read``: (offset, Kafka timestamp ms) of the newest
    record this worker processed, if any. Kafka timestamps are the producers' clocks; records
    of one partition are read in order, so every record produced before the result was processed.
    """
    if highwater is None:
        return 0
    processed_up_to = max(committed or 0, last_read[0] + 1 if last_read else 0)
    if processed_up_to >= highwater:
        return now if fetched_at is None else min(now, fetched_at)
    return last_read[1] if last_read else 0
