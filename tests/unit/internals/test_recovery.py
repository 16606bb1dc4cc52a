"""Table recovery and standbys applied a fetched chunk at a time (dqhash/internals/recovery.py).

The loop is checked against Faust's own ``_slurp_changelogs``, run on the same records: the same values, persisted
offsets and recovery offsets, the same end of recovery, the same standbys ready. The e2e recovery tests
(tests/e2e/test_recovery.py) restore a wiped worker through it on a real broker.
"""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace

import pytest
from faust.tables.recovery import Recovery
from faust.types import TP

from dqhash.internals.recovery import BulkRecovery, TableManager, unseen
from dqhash.kafka.changelog import replayed
from dqhash.kafka.taps import Chunk

ACTIVE, STANDBY, STRANGER = TP("app-pairs-changelog", 0), TP("app-pairs-changelog", 1), TP("app-pairs-changelog", 2)


class Table:
    """Faust's table as recovery sees it: persisted offsets, the changelog event hook, batches applied."""

    recovery_buffer_size = standby_buffer_size = 1000

    def __init__(self, persisted: dict[TP, int] | None = None) -> None:
        self.data: dict[bytes, bytes] = {}
        self.persisted: dict[TP, int] = dict(persisted or {})
        self.seen: list[int] = []

    def persisted_offset(self, tp: TP) -> int | None:
        return self.persisted.get(tp)

    async def on_changelog_event(self, event) -> None:
        self.seen.append(event.message.offset)

    def apply_changelog_batch(self, batch) -> None:
        for event in batch:
            message = event.message
            if message.value is None:
                self.data.pop(message.key, None)
            else:
                self.data[message.key] = message.value
            self.persisted[message.tp] = max(self.persisted.get(message.tp, -1), message.offset)


def record(offset: int, key: bytes, value: bytes | None):
    return SimpleNamespace(offset=offset, key=key, value=value, headers=(), timestamp=1_700_000_000_000)


def changelog() -> dict[TP, list]:
    """An active partition (persisted at offset 2: its first three records are already applied) and a standby."""
    return {
        ACTIVE: [record(i, b"k%d" % (i % 4), None if i == 7 else b"v%d" % i) for i in range(10)],
        STANDBY: [record(i, b"s%d" % (i % 3), b"w%d" % i) for i in range(5)],
    }


class Consumer:
    def __init__(self, current: bool = True) -> None:
        self.taps: dict = {}
        self.current = current

    def is_current(self, chunk: Chunk) -> bool:
        return self.current


def recovery(cls: type, consumer: Consumer | None = None):
    """A recovery in the middle of restoring ``ACTIVE`` (high water 9) with ``STANDBY`` following (high water 4)."""
    app = SimpleNamespace(
        conf=SimpleNamespace(stream_recovery_delay=0.0, stream_buffer_maxsize=100),
        in_transaction=False,
        in_recovery=False,
        consumer=consumer or Consumer(),
    )
    tables = SimpleNamespace(
        changelog_topics={ACTIVE.topic},
        changelog_queue=asyncio.Queue(),
        standbys_ready=False,
    )
    tables.on_standbys_ready = lambda: setattr(tables, "standbys_ready", True)
    rec = cls(app, tables)
    active, standby = Table({ACTIVE: 2}), Table()
    rec.add_active(active, ACTIVE)
    rec.add_standby(standby, STANDBY)
    rec.active_highwaters[ACTIVE] = 9
    rec.standby_highwaters[STANDBY] = 4
    rec._set_recovery_started()
    return rec, active, standby


async def run_until(rec, done, what: str) -> None:
    """Runs the recovery's changelog loop until ``done()``; fails, saying what, if it does not get there."""
    task = asyncio.ensure_future(type(rec)._slurp_changelogs.fun(rec))
    try:
        for _ in range(10_000):
            if done():
                return
            await asyncio.sleep(0)
        pytest.fail(f"the changelog loop never got to: {what}")
    finally:
        task.cancel()


def finished(rec):
    return lambda: not rec.in_recovery and rec.tables.standbys_ready


async def fausts_own(records: dict[TP, list]):
    rec, active, standby = recovery(Recovery)
    for i in range(max(len(batch) for batch in records.values())):  # interleaved, one record at a time
        for tp, batch in records.items():
            if i < len(batch):
                rec.tables.changelog_queue.put_nowait(replayed(tp, batch[i]))
    await run_until(rec, finished(rec), "recovery ended and standbys ready (Faust's loop)")
    rec.flush_buffers()  # Faust's loop holds standby records in a buffer until its next flush
    return rec, active, standby


async def bulk(records: dict[TP, list], chunk: int = 3):
    rec, active, standby = recovery(BulkRecovery)
    for tp, batch in records.items():
        for start in range(0, len(batch), chunk):
            rec.changelog_tap.put(Chunk(tp, batch[start : start + chunk], 0, 0))
    await run_until(rec, finished(rec), "recovery ended and standbys ready (the bulk loop)")
    return rec, active, standby


def outcome(rec, active: Table, standby: Table) -> dict:
    return {
        "active": active.data,
        "standby": standby.data,
        "persisted": {**active.persisted, **standby.persisted},
        "active_offsets": dict(rec.active_offsets),
        "standby_offsets": dict(rec.standby_offsets),
        "events": (active.seen, standby.seen),
        "in_recovery": rec.in_recovery,
        "standbys_ready": rec.tables.standbys_ready,
    }


def applies_what_fausts_loop_applies(what: str) -> None:
    """The check ``test_symbols`` runs for the COPIES row: both loops on the same records, compared."""

    async def both():
        return outcome(*await fausts_own(changelog())), outcome(*await bulk(changelog()))

    faust, mine = asyncio.run(both())
    assert mine == faust, what
    assert faust["active"] == {b"k0": b"v8", b"k1": b"v9", b"k2": b"v6"}  # k3's last record (7) deletes it
    assert faust["events"][0] == list(range(3, 10))  # offsets 0-2 were persisted: not applied again


def test_the_bulk_loop_applies_what_fausts_own_loop_applies():
    applies_what_fausts_loop_applies("the bulk loop differs from Faust's _slurp_changelogs")


@pytest.mark.parametrize("chunk", [1, 4, 10])
def test_the_outcome_does_not_depend_on_how_the_records_were_fetched(chunk):
    async def run():
        return outcome(*await bulk(changelog(), chunk))

    assert asyncio.run(run()) == outcome(*asyncio.run(bulk(changelog(), 3)))


@pytest.mark.asyncio
async def test_recovery_does_not_end_before_every_active_partition_reaches_its_high_water():
    rec, active, _ = recovery(BulkRecovery)
    rec.changelog_tap.put(Chunk(ACTIVE, changelog()[ACTIVE][:6], 0, 0))
    await run_until(rec, lambda: rec.active_offsets[ACTIVE] == 5, "offset 5 applied")
    assert rec.in_recovery and not rec.signal_recovery_end.is_set()
    assert active.persisted[ACTIVE] == 5


@pytest.mark.asyncio
async def test_a_chunk_sought_past_or_from_another_generation_is_not_applied():
    rec, active, _ = recovery(BulkRecovery, Consumer(current=False))
    rec.changelog_tap.put(Chunk(ACTIVE, changelog()[ACTIVE], 0, 0))
    await run_until(rec, lambda: rec.changelog_tap.size == 0, "the stale chunk taken off the tap")
    assert active.data == {} and active.seen == [] and rec.in_recovery


@pytest.mark.asyncio
async def test_a_partition_neither_active_nor_standby_is_skipped_with_a_warning(caplog):
    """Faust's loop applies such a record to the table of the record before it; this one skips it."""
    rec, active, standby = recovery(BulkRecovery)
    with caplog.at_level(logging.WARNING, logger="dqhash.internals.recovery"):
        applied = await rec.apply_chunk(Chunk(STRANGER, [record(0, b"x", b"y")], 0, 0))
    assert applied == 0 and active.data == standby.data == {}
    assert "neither an active nor a standby partition; 1 records skipped" in caplog.text


@pytest.mark.asyncio
async def test_the_end_of_recovery_says_how_many_records_it_restored(caplog):
    rec, _, _ = recovery(BulkRecovery)
    rec.changelog_tap.put(Chunk(ACTIVE, changelog()[ACTIVE], 0, 0))
    with caplog.at_level(logging.INFO, logger="dqhash.internals.recovery"):
        await run_until(rec, lambda: not rec.in_recovery, "recovery ended")
    assert "restored 7 changelog records in" in caplog.text
    assert rec.restored == 0  # counted afresh by the next recovery


@pytest.mark.asyncio
async def test_the_time_left_estimate_keeps_faust_s_number_of_samples():
    rec, _, _ = recovery(BulkRecovery)
    rec.active_highwaters[ACTIVE] = 5_000
    many = [record(i, b"k%d" % i, b"v") for i in range(3, 5_000)]
    await rec.apply_chunk(Chunk(ACTIVE, many, 0, 0))
    assert len(rec._processing_times) == rec.num_samples_required_for_estimate


def test_unseen_keeps_only_records_past_the_offset_reached():
    records = [record(i, b"k", b"v") for i in range(5, 9)]
    assert unseen(records, None) is records and unseen(records, 4) is records
    assert [r.offset for r in unseen(records, 6)] == [7, 8]
    assert unseen(records, 8) == []


@pytest.mark.asyncio
async def test_the_tap_takes_every_changelog_topic_and_needs_dqhashs_consumer():
    rec, _, _ = recovery(BulkRecovery)
    await rec.on_start()
    assert rec.app.consumer.taps == {ACTIVE.topic: rec.changelog_tap}
    rec.app.consumer = SimpleNamespace()  # Faust's own consumer: no taps
    with pytest.raises(RuntimeError, match="dqhash's consumer"):
        await rec.on_start()


def test_the_table_manager_builds_the_bulk_recovery():
    manager = TableManager.__new__(TableManager)
    manager._recovery = None
    manager.app = SimpleNamespace(conf=SimpleNamespace(stream_recovery_delay=0.0, stream_buffer_maxsize=100))
    manager.beacon = manager.loop = None
    assert isinstance(manager.recovery, BulkRecovery) and manager.recovery is manager.recovery
