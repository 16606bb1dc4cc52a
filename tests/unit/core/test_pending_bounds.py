"""The deadline index and the pending changes in bounded memory, against models of what is pending."""

from hypothesis import given
from hypothesis import strategies as st

from dqhash.core.deadlines import DeadlineIndex
from dqhash.core.pending_changes import PendingChanges

T0 = 1_714_564_800_000
KEYS = [f"k{n}" for n in range(8)]


def test_past_its_capacity_the_index_keeps_the_earliest_deadlines_and_says_where_it_stopped():
    index = DeadlineIndex(resolution_ms=1000, capacity=100)
    for n in range(1_000):
        index.add(0, f"k{n:04}", T0 + 1_000 * (n // 10))  # ten a bucket
    assert len(index) <= 100
    bucket, pk = index.cutoff(0)
    popped = index.pop_due(0, T0 + 10**6)
    assert popped == [f"k{n:04}" for n in range(len(popped))]  # the earliest, in due order
    assert all((-(-(T0 + 1_000 * (n // 10)) // 1000), f"k{n:04}") > (bucket, pk) for n in range(len(popped), 1_000))
    assert index.next_due(0) == (bucket - 1) * 1000 + 1  # nothing after the cut-off is taken for swept
    assert index.refill_wanted(0)


def test_a_refill_finds_what_the_index_let_go_of():
    index = DeadlineIndex(resolution_ms=1000, capacity=100)
    due = {f"k{n:04}": T0 + 1_000 * (n // 10) for n in range(1_000)}
    for pk, at in due.items():
        index.add(0, pk, at)
    swept: list[str] = []
    while due.keys() - set(swept):
        swept += index.pop_due(0, T0 + 10**6)
        for pk in swept:
            index.discard(0, pk)
        assert index.refill_wanted(0) or index.cutoff(0) is None
        index.begin_refill(0)
        for pk in sorted(due.keys() - set(swept)):
            index.refill(0, pk, due[pk])
        index.end_refill(0)
        assert len(index) <= 100
    assert sorted(swept) == sorted(due) and index.cutoff(0) is None and not index.refill_wanted(0)


_DEADLINE_OPS = st.lists(
    st.tuples(st.sampled_from(["add", "add", "add", "discard", "pop", "scan"]), st.sampled_from(KEYS),
              st.integers(0, 20_000)),
    max_size=200,
)  # fmt: skip


@given(_DEADLINE_OPS)
def test_the_bounded_index_leaves_nothing_due_behind_and_a_refill_brings_back_the_rest(ops):
    """``pending``: each PK's latest due bucket while it waits; a popped PK that is due gets its verdict (it
    settles), as in the sweep. A ``scan`` reads three keys a step, in key order, as the refill's pass does."""
    index = DeadlineIndex(resolution_ms=1000, capacity=4)
    pending: dict[str, int] = {}
    cursor: int | None = None
    for op, pk, t in ops:
        if op == "add":
            index.add(0, pk, T0 + t)
            pending[pk] = -(-(T0 + t) // 1000)
        elif op == "discard":
            index.discard(0, pk)
            pending.pop(pk, None)
        elif op == "pop":
            _pop_and_check(index, pending, (T0 + t) // 1000)
        else:
            cursor = _scan_step(index, pending, cursor)
        assert len(index) <= 2 * 4  # the partition's index and the refill's, each within its capacity
        _check_next_due(index, pending)
    for _ in range(len(KEYS) + 1):  # refills and sweeps until nothing is pending
        _full_refill(index, pending)
        _pop_and_check(index, pending, (T0 + 10**6) // 1000)
    assert not pending


def _pop_and_check(index, pending, limit):
    cutoff = index.cutoff(0)
    for popped in index.pop_due(0, limit * 1000):
        if pending.get(popped, limit + 1) <= limit:  # due: its verdict is given
            del pending[popped]
            index.discard(0, popped)
    left = {pk: b for pk, b in pending.items() if b <= limit and (cutoff is None or (b, pk) <= cutoff)}
    assert not left, f"due and indexed, not popped: {left} (cut-off {cutoff})"


def _scan_step(index, pending, cursor):
    if cursor is None:
        index.begin_refill(0)
        cursor = 0
    for pk in KEYS[cursor : cursor + 3]:
        if pk in pending:
            index.refill(0, pk, pending[pk] * 1000)
    cursor += 3
    if cursor >= len(KEYS):
        index.end_refill(0)
        return None
    return cursor


def _full_refill(index, pending):
    index.begin_refill(0)
    for pk, bucket in sorted(pending.items()):
        index.refill(0, pk, bucket * 1000)
    index.end_refill(0)


def _check_next_due(index, pending):
    if pending:
        first = index.next_due(0)
        assert first is not None and first <= min(pending.values()) * 1000


_CHANGE_OPS = st.lists(
    st.tuples(st.sampled_from(["a", "b"]), st.sampled_from(KEYS), st.one_of(st.none(), st.integers(0, 50))),
    max_size=200,
)


@given(_CHANGE_OPS)
def test_pending_changes_are_never_newer_than_the_truth_and_exact_until_some_are_forgotten(ops):
    changes = PendingChanges(capacity=4)
    truth: dict[str, dict[str, int]] = {"a": {}, "b": {}}
    for table, key, ts in ops:
        changes.track(table, key, ts)
        if ts is None:
            truth[table].pop(key, None)
        else:
            truth[table][key] = ts
        assert changes.count <= 4
        for name, waiting in truth.items():
            oldest = changes.oldest(name)
            if waiting:
                assert oldest is not None and oldest <= min(waiting.values())  # never too new
            if not changes.forgot(name):
                assert oldest == min(waiting.values(), default=None) and changes.kept(name) == len(waiting)
    fresh = PendingChanges(capacity=4)  # a refill: every pending pair read again
    for table, waiting in truth.items():
        for key, ts in waiting.items():
            fresh.track(table, key, ts)
    for name, waiting in truth.items():
        if waiting:
            assert fresh.oldest(name) is not None and fresh.oldest(name) <= min(waiting.values())
        if not fresh.forgot(name):
            assert fresh.oldest(name) == min(waiting.values(), default=None)


def test_the_table_holding_the_most_forgets_its_newest_changes_first():
    changes = PendingChanges(capacity=10)
    for n in range(3):
        changes.track("small", f"s{n}", 100 + n)
    for n in range(8):
        changes.track("big", f"b{n}", 200 + n)
    assert changes.count == 5 and not changes.forgot("small") and changes.forgot("big")
    assert changes.oldest("small") == 100 and changes.oldest("big") == 200
    assert changes.kept("big") == 2  # 200 and 201 kept, 202–207 forgotten
    for n in range(2):
        changes.track("big", f"b{n}", None)
    assert changes.oldest("big") == 202  # the floor: no forgotten change is older
    changes.track("big", "b7", 300)  # moved on, still among the forgotten: not kept again
    assert changes.kept("big") == 0
