"""Fencing a paused owner: the ownership lease, changelog epochs, and the store's fenced replay and wipe."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from faust.types import TP

from dqhash.core.epochs import EpochGate, decode_epoch, epoch_header, epoch_key, epoch_of, is_epoch_key
from dqhash.core.lease import Lease
from dqhash.core.partitioning import partition_for
from dqhash.core.window_keys import window_key
from dqhash.internals.store import (
    batch_writer,
    fence_changelog_replay,
    partition_scanner,
    persist_offset,
    stored_epoch,
    wipe_partition,
)
from dqhash.internals.transport import report_heartbeats
from dqhash.kafka.ownership import Ownership

# --- the lease ---------------------------------------------------------------------------------------------


def test_no_lease_before_an_assignment():
    assert not Lease(10).held(0)


def test_a_lease_runs_for_its_duration_from_the_assignment():
    lease = Lease(10)
    lease.assigned(100, generation=3)
    assert lease.held(109.9) and not lease.held(110)


def test_a_heartbeat_renews_the_lease_from_its_send_time_not_its_answer():
    lease = Lease(10)
    lease.assigned(100, generation=3)
    lease.renewed(sent_at=105, generation=3)  # answered much later (a pause in between) changes nothing
    assert lease.held(114.9) and not lease.held(115)


def test_a_heartbeat_of_another_generation_does_not_renew():
    lease = Lease(10)
    lease.assigned(100, generation=3)
    lease.renewed(sent_at=108, generation=4)
    assert not lease.held(111)


def test_a_lapse_is_remembered_and_reported_at_revocation():
    lease = Lease(10)
    lease.assigned(100, generation=3)
    assert lease.revoked(now=130)  # no check ran in between: the revocation itself sees the lapse
    assert not lease.held(131), "no lease after a revocation"


def test_a_lapse_is_forgiven_by_a_heartbeat_of_the_same_generation_sent_after_it():
    """The coordinator still counted the member after the lapse: no rebalance, no one else owned the partitions."""
    lease = Lease(10)
    lease.assigned(100, generation=3)
    assert not lease.held(112) and lease.lapsed
    lease.renewed(sent_at=112.5, generation=3)
    assert lease.held(113) and not lease.lapsed
    assert not lease.revoked(now=114)


def test_a_heartbeat_sent_before_the_lapse_does_not_forgive_it():
    lease = Lease(10)
    lease.assigned(100, generation=3)
    assert not lease.held(111)
    lease.renewed(sent_at=109, generation=3)  # sent before the lease ran out, answered after the pause
    assert lease.lapsed
    assert lease.revoked(now=112)


def test_a_lease_lasts_a_share_of_the_session_timeout():
    assert 0 < Lease.for_session(30).duration_s < 30


def test_a_lease_must_last():
    with pytest.raises(ValueError, match="positive"):
        Lease(0)


# --- epochs ------------------------------------------------------------------------------------------------


def test_epoch_keys_are_no_pk_and_no_window_key():
    assert is_epoch_key(epoch_key(3)) and epoch_key(3) != epoch_key(13)
    assert not is_epoch_key(b"pk-1") and not is_epoch_key(window_key(3, 0))


def test_epoch_headers_round_trip_and_bad_ones_read_as_none():
    assert epoch_of([epoch_header(7)]) == 7
    assert epoch_of({"dqhash-epoch": b"9"}) == 9
    assert epoch_of(None) is None and epoch_of([("dqhash-epoch", b"x")]) is None and epoch_of([("a", b"1")]) is None
    assert decode_epoch(None) == 0 and decode_epoch(b"12") == 12 and decode_epoch(b"junk") == 0


def test_a_fenced_owners_late_records_are_refused_after_the_new_owners_marker():
    gate = EpochGate(stored=lambda partition: 0)
    assert gate.admits(0, 1)  # the first owner's records
    assert gate.admits(0, 2)  # the new owner's marker
    assert not gate.admits(0, 1), "the zombie's late record"
    assert gate.admits(0, 2) and gate.admits(0, None), "unstamped records (before epochs existed) are admitted"
    assert gate.admits(1, 1), "partitions are independent"
    assert gate.refused == {0: 1}


def test_an_owner_claims_one_more_than_the_newest_epoch_its_partition_holds():
    gate = EpochGate(stored=lambda partition: {0: 4}.get(partition, 0))
    assert gate.claim(0) == 5 and gate.claimed(0) == 5
    assert gate.claim(1) == 1
    assert not gate.admits(0, 4), "after its own claim, records of older epochs are refused"
    gate.release(0)
    assert gate.claimed(0) is None and gate.newest(0) == 5
    gate.forget(0)
    assert gate.newest(0) == 4, "after a wipe the newest epoch is read again from the store"


# --- the store: stamped writes, fenced replay, wipe ----------------------------------------------------------


class MemoryTable:
    """Faust's memory store as the store helpers see it (one dict for all partitions)."""

    def __init__(self):
        self.data = SimpleNamespace(data={}, persisted={})
        self.data.set_persisted_offset = lambda tp, offset: self.data.persisted.__setitem__(tp, offset)
        self.changelog_topic = SimpleNamespace(get_topic_name=lambda: "app-pairs-changelog")
        self.applied: list = []
        self.apply_changelog_batch = self._apply

    def _apply(self, events):
        for event in events:
            self.applied.append(event.message.offset)
            self.data.data[event.message.key] = event.message.value


def event(partition, offset, key, value, epoch):
    headers = [epoch_header(epoch)] if epoch is not None else []
    message = SimpleNamespace(
        partition=partition,
        offset=offset,
        key=key,
        value=value,
        headers=headers,
        tp=TP("app-pairs-changelog", partition),
    )
    return SimpleNamespace(message=message)


def test_each_changelog_record_carries_the_claimed_epoch():
    table, gate = MemoryTable(), EpochGate(stored=lambda p: 0)
    write = batch_writer(table, gate)
    gate.claim(2)
    [out] = write(2, [(b"pk", b"v")])
    assert out.headers == [epoch_header(1)] and out.partition == 2
    [unclaimed] = write(3, [(b"pk3", b"v")])
    assert unclaimed.headers is None


def test_replay_refuses_a_zombies_late_records_and_moves_the_persisted_offset_past_them():
    table = MemoryTable()
    gate = EpochGate(stored=stored_epoch(table))
    fence_changelog_replay(table, gate)
    table.apply_changelog_batch(
        [
            event(0, 10, b"pk", b"old", 1),
            event(0, 11, epoch_key(0), b"2", 2),  # the new owner's marker
            event(0, 12, b"pk", b"new", 2),
            event(0, 13, b"pk", b"zombie", 1),  # delivered when the frozen worker thawed
        ]
    )
    assert table.data.data[b"pk"] == b"new"
    assert table.applied == [10, 11, 12]
    assert table.data.persisted[TP("app-pairs-changelog", 0)] == 13, "refused records are not replayed again"


def test_a_replay_resuming_from_a_persisted_offset_knows_the_newest_epoch_from_local_state():
    table = MemoryTable()
    table.data.data[epoch_key(0)] = b"5"
    gate = EpochGate(stored=stored_epoch(table))
    fence_changelog_replay(table, gate)
    table.apply_changelog_batch([event(0, 40, b"pk", b"late", 4), event(0, 41, b"pk", b"ok", 5)])
    assert table.data.data[b"pk"] == b"ok" and table.applied == [41]


def test_wiping_a_partition_deletes_its_keys_and_its_epoch_only():
    table = MemoryTable()
    mine = [k for k in (b"a", b"b", b"c", b"d", b"e", b"f") if partition_for(k.decode(), 4) == 1]
    assert mine, "the test needs keys of partition 1"
    for key in (b"a", b"b", b"c", b"d", b"e", b"f", epoch_key(1), epoch_key(2), window_key(1, 0)):
        table.data.data[key] = b"x"
    deleted = wipe_partition(table, 1, partitions=4)
    assert deleted == len(mine) + 2  # its pairs, its window, its epoch
    assert epoch_key(2) in table.data.data and epoch_key(1) not in table.data.data
    assert not any(k in table.data.data for k in mine) and window_key(1, 0) not in table.data.data


def test_the_scanner_never_hands_out_the_epoch_marker():
    table = MemoryTable()
    table.data.data.update({epoch_key(0): b"3", window_key(0, 0): b"{}"})
    assert [k for k, _ in partition_scanner(4)(table, 0)] == [window_key(0, 0)]


def test_no_persisted_offset_is_written_while_the_lease_is_not_held():
    table, trusted = MemoryTable(), [True]
    persisted = persist_offset(table, trusted=lambda: trusted[0])
    persisted(0, 7)
    trusted[0] = False
    persisted(0, 9)  # a batch delivered after the worker thawed, past the new owner's records
    assert table.data.persisted == {TP("app-pairs-changelog", 0): 7}


# --- heartbeats and the ownership adapter --------------------------------------------------------------------


def test_only_answered_heartbeats_are_reported_with_their_send_time_and_generation():
    answers = iter([True, False])

    class Coordinator:
        generation = 4

        async def _do_heartbeat(self):
            return next(answers)

    coordinator, heard = Coordinator(), []
    report_heartbeats(coordinator, [lambda sent_at, generation: heard.append(generation)])
    report_heartbeats(coordinator, [lambda *a: heard.append("twice")])  # installed once
    assert asyncio.run(coordinator._do_heartbeat()) is True
    assert asyncio.run(coordinator._do_heartbeat()) is False
    assert heard == [4]


def test_ownership_waits_for_a_heartbeat_then_lets_the_batch_through():
    clock = [100.0]
    ownership = Ownership(session_timeout_s=10, clock=lambda: clock[0])
    listeners: list = []

    async def scenario():
        ownership.attach(listeners)
        ownership.assigned(generation=2)
        assert ownership.held()
        clock[0] = 120.0  # woke from a pause
        assert not ownership.held()
        waiting = asyncio.ensure_future(ownership.wait_held())
        await asyncio.sleep(0)
        assert not waiting.done()
        listeners[0](120.5, 2)  # from the consumer's thread
        await asyncio.wait_for(waiting, 5)
        return ownership.lapses

    assert asyncio.run(scenario()) == 1
    assert not ownership.lapsed


# --- claiming a partition: the marker, and catching up with what landed before it ----------------------------


class RocksTable(MemoryTable):
    """A table whose store is one real rocksdict DB for partition 0 and keeps a persisted offset."""

    def __init__(self, path, recovered):
        super().__init__()
        from rocksdict import Options, Rdict

        db = Rdict(str(path), Options(raw_mode=True))
        self.db = db
        self.data._dbs = {0: db}
        self.data._db_for_partition = lambda partition: db
        self.data.persisted_offset = lambda tp: self.data.persisted.get(tp, recovered)

    def _apply(self, events):
        for event in events:
            self.applied.append(event.message.offset)
            self.db[event.message.key] = event.message.value


def claiming_checkpoint(table, marker_offset, landed, monkeypatch):
    from dqhash.delivery import checkpoint as module
    from dqhash.settings import load

    checkpoint = module.Checkpoint(None, table, load({}), produce=None)
    sent, reads = [], []

    class Producer:
        async def send_and_wait(self, topic, value, key, partition, headers):
            sent.append((topic, key, value, partition, headers))
            return SimpleNamespace(offset=marker_offset)

    async def read_range(kafka, topic, partition, start, end):
        reads.append((start, end))
        return landed

    monkeypatch.setattr(module, "started_producer", lambda app: Producer())
    monkeypatch.setattr(module, "read_range", read_range)
    return checkpoint, checkpoint.epochs, sent, reads


def test_a_claim_writes_its_marker_and_reads_nothing_when_nothing_landed(tmp_path, monkeypatch):
    table = RocksTable(tmp_path / "db", recovered=9)
    table.db[epoch_key(0)] = b"3"
    checkpoint, gate, sent, reads = claiming_checkpoint(table, marker_offset=10, landed=[], monkeypatch=monkeypatch)
    assert asyncio.run(checkpoint.claim([0])) == [4]
    assert sent == [("app-pairs-changelog", epoch_key(0), b"4", 0, [epoch_header(4)])]
    assert reads == [] and gate.claimed(0) == 4 and table.db[epoch_key(0)] == b"4"
    assert table.data.persisted[TP("app-pairs-changelog", 0)] == 10


def test_a_claim_applies_what_landed_between_the_recovered_end_and_its_marker_as_any_replay_would(
    tmp_path, monkeypatch
):
    """A paused owner's late records (epoch 3) landed at offsets 10 and 11, before the new owner's marker at 12: every
    replay applies them, so the new owner does too; its own records then carry epoch 4."""
    table = RocksTable(tmp_path / "db", recovered=9)
    table.db[epoch_key(0)] = b"3"
    landed = [event(0, 10, b"pk", b"late", 3), event(0, 11, b"pk2", b"late2", 3)]
    checkpoint, gate, sent, reads = claiming_checkpoint(table, marker_offset=12, landed=landed, monkeypatch=monkeypatch)
    assert asyncio.run(checkpoint.claim([0])) == [4]
    assert reads == [(10, 12)]
    assert table.db[b"pk"] == b"late" and table.db[b"pk2"] == b"late2"
    assert table.data.persisted[TP("app-pairs-changelog", 0)] == 12
    assert not gate.admits(0, 3), "after the claim, the paused owner's epoch is refused"


def test_a_claim_on_a_recreated_changelog_wipes_the_old_local_state_and_starts_from_the_new_topic(
    tmp_path, monkeypatch, caplog
):
    """The local state had read the changelog to offset 9; the new owner's marker lands at offset 2: the topic was
    recreated (an embedded broker restarted). The stale state is wiped, and what the new topic holds is applied."""
    table = RocksTable(tmp_path / "db", recovered=9)
    table.db[epoch_key(0)] = b"3"
    table.db[b"stale-pk"] = b"from the old topic"
    landed = [event(0, 0, b"pk", b"new", None), event(0, 1, b"pk2", b"new2", None)]
    checkpoint, gate, sent, reads = claiming_checkpoint(table, marker_offset=2, landed=landed, monkeypatch=monkeypatch)
    assert asyncio.run(checkpoint.claim([0])) == [4]
    assert b"stale-pk" not in table.db, "the old topic's state is gone"
    assert reads == [(0, 2)] and table.db[b"pk"] == b"new" and table.db[b"pk2"] == b"new2"
    assert table.data.persisted[TP("app-pairs-changelog", 0)] == 2 and gate.claimed(0) == 4
    assert "the topic was recreated" in caplog.text


def test_the_livelock_check_skips_a_partition_with_no_position_instead_of_crashing():
    """After a rejoin during a broker outage a partition awaits its reset: aiokafka's ``position`` asserts, and
    Faust's livelock check, reading it, crashed the worker (seen with a broker down for 8 s)."""
    from aiokafka.consumer.subscription_state import TopicPartitionState

    from dqhash.internals.transport import RewindingConsumerThread

    async def awaiting_reset():
        return TopicPartitionState(assignment=None)  # a newly assigned partition, before its reset

    state = asyncio.run(awaiting_reset())
    with pytest.raises(AssertionError):
        _ = state.position  # what Faust's own check reads
    assignment = SimpleNamespace(state_value=lambda tp: state)
    fetcher = SimpleNamespace(_subscriptions=SimpleNamespace(subscription=SimpleNamespace(assignment=assignment)))
    thread = SimpleNamespace(_ensure_consumer=lambda: SimpleNamespace(_fetcher=fetcher))
    assert RewindingConsumerThread.verify_event_path(thread, 0.0, TP("t", 0)) is None


def test_a_scan_resumes_after_a_key_and_skips_the_offset_record(tmp_path):
    """The RocksDB path: rocksdict seeks to the key, and Faust's offset record is never handed out as a pair."""
    import faust

    from dqhash.internals.store import partition_scanner

    app = faust.App("scan-resume", store=f"rocksdb://{tmp_path}", broker="memory://")
    table = app.Table("pairs", partitions=1, key_type=bytes, value_type=bytes)
    store = table.data
    db = store._db_for_partition(0)
    for key in (b"a", b"b", b"c"):
        db[key] = b"v"
    db[store.offset_key] = b"7"
    scan = partition_scanner(1)
    assert [k for k, _ in scan(table, 0, None)] == [b"a", b"b", b"c"]
    assert [k for k, _ in scan(table, 0, b"a")] == [b"b", b"c"]
    assert [k for k, _ in scan(table, 0, b"bb")] == [b"c"]
