"""A snapshot run proven chunk by chunk: chunks that cut a token range exactly once, digests that do not depend on
the order rows are read in, the one comparison both sides and the report apply, and the wire records."""

import random
from bisect import bisect_left

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dqhash.core import range_digests
from dqhash.core.range_digests import ChunkDigests, DigestsDiffer, compare, covering, read_side, records
from dqhash.core.token_ranges import MAX_TOKEN, MIN_TOKEN, chunk_bounds, chunk_of, range_of, split

RANGES = split(8)
tokens = st.integers(min_value=MIN_TOKEN + 1, max_value=MAX_TOKEN)


def range_by_search(token, ranges):
    """The search the arithmetic replaced: the first range whose end is at or past the token."""
    return bisect_left([end for _, end in ranges], token)


@given(tokens, st.integers(min_value=1, max_value=5000))
def test_a_token_falls_in_the_range_and_chunk_whose_bounds_hold_it(token, splits):
    ranges = split(splits)
    index = range_of(token, ranges)
    assert index == range_by_search(token, ranges)
    start, end = ranges[index]
    assert start < token <= end
    for chunks in (1, 3, 16384, range_digests.MAX_CHUNKS_PER_RANGE):
        chunk = chunk_of(token, ranges[index], chunks)
        low, high = chunk_bounds(ranges[index], chunk, chunks)
        assert 0 <= chunk < chunks and low < token <= high


@given(st.integers(min_value=0, max_value=7), st.integers(min_value=1, max_value=1000))
def test_a_ranges_chunks_cover_it_once_in_order(index, chunks):
    bounds = [chunk_bounds(RANGES[index], c, chunks) for c in range(chunks)]
    assert bounds[0][0] == RANGES[index][0] and bounds[-1][1] == RANGES[index][1]
    assert all(bounds[c][1] == bounds[c + 1][0] for c in range(chunks - 1))
    assert all(low < high for low, high in bounds)  # no chunk is empty at these sizes: none hides a token


def test_a_token_outside_the_ring_is_refused():
    with pytest.raises(ValueError, match="outside"):
        range_of(MIN_TOKEN, RANGES)


def rows(n, seed=0):
    rng = random.Random(seed)
    return [(f"pk{i}", rng.randint(MIN_TOKEN + 1, MAX_TOKEN), f"{i:064x}") for i in range(n)]


def digested(side_rows, chunks_per_range=16, unreadable=()):
    digests = ChunkDigests(RANGES, chunks_per_range)
    for pk, token, digest in side_rows:
        token_range = range_of(token, RANGES)
        if pk in unreadable:
            digests.unreadable(token_range, token)
        else:
            digests.add(token_range, token, pk, "v2", digest)
    return digests


def frozen(digests):
    """A side's digests as the other side reads them: through the wire records."""
    found = [value for _, value in records(digests, "x", "run", "pass-1", 1)]
    for value in found:
        value["side"] = "onprem"
    return read_side(found, "onprem", "run")


def test_the_digest_of_a_chunk_does_not_depend_on_the_order_its_rows_are_read_in():
    some = rows(500)
    shuffled = list(some)
    random.Random(1).shuffle(shuffled)
    assert digested(some).chunks == digested(shuffled).chunks
    assert digested(some).rows == 500


def test_only_the_chunks_that_differ_are_read_row_by_row_and_the_rest_are_proven():
    onprem = rows(400)
    changed = onprem[7]
    cloud = [r for r in onprem if r is not changed] + [(changed[0], changed[1], "f" * 64)]  # a mismatch
    missing, extra = onprem[20], ("only-in-cloud", rows(1, seed=9)[0][1], "e" * 64)
    cloud = [r for r in cloud if r is not missing] + [extra]
    mine, theirs = digested(onprem), digested(cloud)
    comparison = compare(frozen(mine), frozen(theirs))
    expected = {mine.chunk_id(range_of(t, RANGES), t) for _, t, _ in (changed, missing, extra)}
    assert comparison.differing == expected
    in_differing = sum(1 for _, t, _ in onprem if mine.chunk_id(range_of(t, RANGES), t) in expected)
    assert comparison.rows_proven == 400 - in_differing
    per_range: dict[int, int] = {}
    for _, token, _ in onprem:
        if mine.chunk_id(range_of(token, RANGES), token) not in expected:
            per_range[range_of(token, RANGES)] = per_range.get(range_of(token, RANGES), 0) + 1
    assert comparison.proven_rows == per_range
    # both sides derive the same set whichever reads first
    assert compare(frozen(mine), frozen(theirs)).differing == comparison.differing


def test_a_different_hash_version_or_a_duplicate_row_makes_its_chunk_differ():
    some = rows(50)
    versioned = ChunkDigests(RANGES, 16)
    for pk, token, digest in some:
        versioned.add(range_of(token, RANGES), token, pk, "v1", digest)
    assert len(compare(frozen(digested(some)), frozen(versioned)).differing) == len(versioned.chunks)
    doubled = digested(some + some[:1])
    assert len(compare(frozen(digested(some)), frozen(doubled)).differing) == 1


def test_a_chunk_with_a_row_a_side_could_not_read_is_never_proven_even_when_both_sides_mark_it():
    some = rows(50)
    bad = some[3]
    marked = digested(some, unreadable={bad[0]})
    comparison = compare(frozen(marked), frozen(marked))
    assert comparison.differing == {marked.chunk_id(range_of(bad[1], RANGES), bad[1])}
    assert marked.rows == 49


def test_sides_that_cut_the_ring_differently_are_refused_with_what_to_do():
    with pytest.raises(DigestsDiffer, match="same --splits and --chunks-per-range"):
        compare(frozen(digested(rows(10), 16)), frozen(digested(rows(10), 32)))


def test_digests_go_over_the_wire_in_parts_and_only_a_whole_pass_is_read(monkeypatch):
    monkeypatch.setattr(range_digests, "CHUNKS_PER_RECORD", 10)
    digests = digested(rows(30), 8)
    sent = [value for _, value in records(digests, "cloud", "run", "new", 200)]
    assert len(sent) == -(-len(digests.chunks) // 10) > 2
    assert read_side(sent, "cloud", "run").chunks == {k: tuple(v) for k, v in digests.chunks.items()}
    assert read_side(sent[:-1], "cloud", "run") is None  # a part still to come
    assert read_side(sent, "onprem", "run") is None and read_side(sent, "cloud", "other") is None
    # an older pass interrupted after more parts than the newer one has: its leftovers are not mixed in
    older = [value for _, value in records(digested(rows(600), 8), "cloud", "run", "old", 100)]
    leftovers = older[len(sent) :]
    assert leftovers
    assert read_side(sent + leftovers, "cloud", "run").digest_id == "new"
    assert read_side(sent[:1] + leftovers, "cloud", "run") is None  # the newest pass is not whole yet


def test_a_run_publishes_the_rows_of_its_ranges_and_of_the_chunks_that_differ():
    digests = digested(rows(100), 4)
    token = rows(1)[0][1]
    token_range = range_of(token, RANGES)
    assert covering(RANGES, None)(token_range, token)
    assert not covering(RANGES, {token_range + 1 if token_range < 7 else 0})(token_range, token)
    chunk = digests.chunk_id(token_range, token)
    assert covering(RANGES, None, 4, frozenset({chunk}))(token_range, token)
    assert not covering(RANGES, None, 4, frozenset({chunk + 1}))(token_range, token)
    assert not covering(RANGES, set(), 4, frozenset({chunk}))(token_range, token)


def test_a_runs_two_passes_are_decoded_and_compared_once_however_often_its_report_is_built(monkeypatch):
    decoded = []
    real = range_digests._decoded
    monkeypatch.setattr(range_digests, "_decoded", lambda parts: decoded.append(1) or real(parts))
    some = rows(60)
    onprem = [value for _, value in records(digested(some), "onprem", "twice", "p-onprem", 1)]
    cloud = [value for _, value in records(digested(some[1:]), "cloud", "twice", "p-cloud", 1)]
    assert range_digests.proven(onprem, "twice") is None  # until the other side's are there
    first = range_digests.proven(onprem + cloud, "twice")
    assert isinstance(first, range_digests.Comparison) and len(first.differing) == 1
    assert range_digests.proven(cloud + onprem, "twice") is first and len(decoded) == 2
    other = [value for _, value in records(digested(some, 32), "cloud", "twice", "p-cloud-2", 2)]
    assert "--chunks-per-range" in range_digests.proven(onprem + cloud + other, "twice")  # the newest pass counts


def test_a_digests_record_that_is_not_well_formed_is_not_read_and_a_report_does_not_fail_on_it():
    good = [value for _, value in records(digested(rows(20)), "cloud", "run", "p1", 1)]
    assert read_side(good, "cloud", "run") is not None
    for broken in ({"parts": "1"}, {"chunks": "not base64!"}, {"chunks": "AAAA"}, {"digest_id": None}):
        assert read_side([{**good[0], **broken}], "cloud", "run") is None, broken
    # a broken record beside a whole pass leaves the pass as it is
    assert read_side(good + [{**good[0], "part": 5, "chunks": "AAAA"}], "cloud", "run").digest_id == "p1"
