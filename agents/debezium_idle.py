"""Quiet tables' verified-through time, moved by the connector's replication slot (``core.idle_time``).

With DQHASH_DEBEZIUM_SLOT and DQHASH_SOURCE_URL, every few seconds each worker asks PostgreSQL for a probe (its
clock, then its WAL insert position) and for the slot's confirmed flush position. Once the slot has passed a
probe, every change committed before the probe's time is in Kafka. Then each change topic partition this worker
reads, and has read and produced to the end of by a high watermark fetched after that moment, is verified as far
as that time: its tables' progress marks move there, and so does their "verified through" once nothing of theirs
is pending. The source is asked off the event loop, and an error is logged once and asked again next time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from dqhash.core.records import Out
from dqhash.core.timeutil import now_ms
from dqhash.internals.clients import committed_offset, highwater_fetched_at
from dqhash.source.database import SourceError, source_url
from dqhash.source.slot import ReplicationSlot

if TYPE_CHECKING:
    from dqhash.runtime import Runtime

log = logging.getLogger("dqhash.agents.debezium")
#: how often the slot is asked (seconds)
ASK_EVERY_S = 5.0


def register_quiet_tables(runtime: Runtime, reader: Any, topics: set[str]) -> None:
    """The timer that moves quiet tables' marks, when the connector's slot and the source are configured."""
    settings = runtime.settings
    if not settings.debezium_slot:
        return
    if not settings.source_url:
        log.warning(
            "DQHASH_DEBEZIUM_SLOT=%s is set without DQHASH_SOURCE_URL: quiet tables' verified-through time moves "
            "only with their changes; set the source database's URL to read the slot",
            settings.debezium_slot,
        )
        return
    slot = ReplicationSlot(source_url(settings.source_url, settings.source_password.reveal()), settings.debezium_slot)
    said: set[str] = set()

    async def quiet_tables() -> None:
        """Ask the slot; move the marks of the partitions read to the end since it confirmed a probe."""
        try:
            lsn, at_ms, flushed = await asyncio.get_running_loop().run_in_executor(None, slot.read)
        except SourceError as exc:
            if str(exc) not in said:  # said once: the next ask tries again
                said.add(str(exc))
                log.warning("%s", exc)
            return
        moved, ended = caught_up(reader, lsn, at_ms, flushed, partitions_read(runtime.app.consumer, topics))
        if ended:
            await runtime.outputs.produce(ended)
        if moved:
            await runtime.outputs.produce(reader.marks(time.monotonic()))

    runtime.app.timer(ASK_EVERY_S, name=f"{__name__}.quiet_tables")(quiet_tables)


def partitions_read(consumer: Any, topics: set[str]) -> list[tuple[str, int | None, int | None, int]]:
    """("topic:partition", its high watermark, when that was fetched, the committed offset) of every change topic
    partition this worker is assigned."""
    found = []
    for tp in consumer.assignment():
        if tp.topic in topics:
            found.append((f"{tp.topic}:{tp.partition}", consumer.highwater(tp), highwater_fetched_at(consumer, tp),
                          committed_offset(consumer, tp) or 0))  # fmt: skip
    return found


def caught_up(
    reader: Any, lsn: int, at_ms: int, flushed: int | None, partitions: list[tuple[str, int | None, int | None, int]]
) -> tuple[bool, list[Out]]:
    """Note the probe and the slot's word; move each partition read to its end by a high watermark fetched after
    a confirmation to that confirmation's time: whether any moved, and the snapshot runs that ended. (The slot
    moves on at every ask while the connector runs, so the confirmations of the last few asks are kept: a high
    watermark is fetched between them.)"""
    reader.kafka.probe(lsn, at_ms)
    through = reader.kafka.confirmed(flushed) if flushed is not None else None
    if through is not None:
        reader.confirmed.append((through, now_ms()))
    moved, ended = False, []
    for source, highwater, fetched_at, committed in partitions:
        if highwater is None or fetched_at is None or max(reader.processed.get(source, 0), committed) < highwater:
            continue  # not read to its end
        known = [t for t, confirmed_at in reader.confirmed if confirmed_at < fetched_at]
        if known:  # the newest time the slot had confirmed before this high watermark was fetched
            ended += reader.quiet(source, max(known))
            moved = True
    return moved, ended
