"""The web views' logic: input checks, paging, pair and window shapes, DLQ replay records."""

import orjson
import pytest

from dqhash.core.outputs import DLQ_REASON, dlq_headers
from dqhash.core.pair_state import CloudSeen, PairState, Tracked
from dqhash.ops.inspection import (
    REPLAY_HEADER,
    BadRequest,
    RecentOutputs,
    dlq_entry,
    page,
    pair_view,
    parse_paging,
    parse_pk,
    parse_replay_ids,
    replay_headers,
    replay_target,
    window_rows,
)

T0 = 1_714_564_800_000


@pytest.mark.parametrize("raw", ["", "x" * 1025, "a\nb", "[broken", "[]", "[1, 2]", '{"a":1}'[:0] + "[{}]"])
def test_bad_pks_are_rejected_with_a_message(raw):
    with pytest.raises(BadRequest):
        parse_pk(raw)


@pytest.mark.parametrize("raw", ["k1", "42", '["a","1"]', "é/ü"])
def test_good_pks_pass(raw):
    assert parse_pk(raw) == raw


@pytest.mark.parametrize("query", [{"limit": "0"}, {"limit": "501"}, {"limit": "x"}, {"offset": "-1"}])
def test_bad_paging_is_rejected(query):
    with pytest.raises(BadRequest):
        parse_paging(query)


def test_paging_defaults_and_next_offset():
    assert parse_paging({}) == (50, 0)
    items = list(range(5))
    assert page(items, 2, 0) == {"items": [0, 1], "total": 5, "limit": 2, "offset": 0, "next_offset": 2}
    assert page(items, 2, 4)["next_offset"] is None


def test_pair_view_shows_both_sides_and_newest_verdict_first():
    tracked = Tracked(
        "e2", T0, "UPDATE", "v2", "ab" * 32, T0 + 5, T0 + 90_000, "MISMATCH", False, 2, ("v2:cd", "v2:cd")
    )
    cloud = CloudSeen("v2", "cd" * 32, T0 + 7, T0 + 8)
    history = (("MATCH", False, "e1", T0, "equal"), ("MISMATCH", False, "e2", T0 + 9, "differ"))
    view = pair_view("k1", 3, PairState(tracked, cloud, (), T0 + 9, (1, 2, -1), history), "http://w1:6066")
    assert view["found"] and view["status"] == "MISMATCH" and view["partition"] == 3
    assert view["onprem"]["hash"] == "v2:" + "ab" * 32 and view["cloud"]["hash"] == "v2:" + "cd" * 32
    assert [h["event_id"] for h in view["history"]] == ["e2", "e1"]
    assert pair_view("k1", 3, None, "w")["found"] is False


def test_window_rows_sum_partitions_and_workers():
    w = lambda counts, closed=True: {"counts": counts, "closed": closed}
    rows = window_rows(
        [(T0, w({"MATCH": 3, "MISMATCH": 1})), (T0, w({"MATCH": 1}, closed=False)), (T0 + 60_000, w({"MATCH": 2}))],
        60_000,
    )
    assert [r["counts"] for r in rows] == [{"MATCH": 2}, {"MATCH": 4, "MISMATCH": 1}]  # newest first
    assert rows[1]["match_rate"] == 0.8 and rows[1]["closed"] is False and rows[1]["partitions"] == 2
    merged = window_rows(
        [
            (T0, w({"MATCH": 3, "MISMATCH": 1})),
            (T0, w({"MATCH": 1}, closed=False)),
            (T0 + 60_000, w({"MATCH": 2})),
            (T0, w({"MISSING_CLOUD": 5})),
        ],
        60_000,
    )  # another worker's
    assert merged[1]["counts"] == {"MATCH": 4, "MISMATCH": 1, "MISSING_CLOUD": 5} and merged[1]["partitions"] == 3


def repair(audit_id, status="MISMATCH", **extra):
    return orjson.dumps({"repair": "resync", "audit_id": audit_id, "status": status, **extra})


def test_the_views_keep_the_newest_problems_and_dead_letters_bounded_and_once_each():
    recent = RecentOutputs(capacity=2)
    for audit_id in ("a1", "a2", "a2", "a3"):  # a2 twice: a new owner published it again
        recent.saw_repair(repair(audit_id))
    assert [r["audit_id"] for r in recent.problems] == ["a2", "a3"]
    recent.saw_repair(repair("a1"))  # dropped out of the bounded list: listed again as the newest
    assert [r["audit_id"] for r in recent.problems] == ["a3", "a1"]
    headers = dlq_headers("INVALID_JSON", "broken", "t1", 2, 41, [("trace", b"x")])
    recent.saw_dead_letter(b"k", b"{bad", headers)
    recent.saw_dead_letter(b"k", b"{bad", headers)  # a follower that reconnected read it again
    assert len(recent.dead_letters) == 1 and recent.find_dead_letter("t1:2:41")["reason"] == "INVALID_JSON"
    recent.saw_repair(None)
    recent.saw_dead_letter(b"k", None, ())
    assert len(recent.problems) == 2 and len(recent.dead_letters) == 1


def test_a_withdrawal_drops_the_problem_it_takes_back_from_the_mismatch_list():
    recent = RecentOutputs()
    for audit_id in ("a1", "a2"):
        recent.saw_repair(repair(audit_id))
    recent.saw_repair(orjson.dumps({"repair": "cancel", "audit_id": "w1", "status": "SUPERSEDED", "withdraws": "a1"}))
    assert [r["audit_id"] for r in recent.problems] == ["a2"]
    recent.saw_repair(repair("a1"))  # read again after its withdrawal (a follower that reconnected): not listed
    assert [r["audit_id"] for r in recent.problems] == ["a2"]


def test_replay_strips_error_headers_and_marks_the_record():
    entry = dlq_entry(b"k", b"{bad", dlq_headers("INVALID_JSON", "broken", "t1", 2, 41, [("trace", b"x")]))
    headers = dict(replay_headers(entry))
    assert headers == {"trace": b"x", REPLAY_HEADER: b"t1:2:41"} and DLQ_REASON not in headers
    assert replay_target(entry, "t1", "t2", "rk") == "t1"
    rekeyed = dlq_entry(b"k", b"{}", dlq_headers("PROCESSING_ERROR", "x", "rk", 0, 1, [("dq.side", b"cloud")]))
    assert replay_target(rekeyed, "t1", "t2", "rk") == "t2" and "dq.side" not in dict(replay_headers(rekeyed))


@pytest.mark.parametrize("body", [b"", b"{", b"[]", b'{"ids": []}', b'{"ids": [1]}', b'{"id": ["a"]}'])
def test_bad_replay_bodies_are_rejected(body):
    with pytest.raises(BadRequest):
        parse_replay_ids(body)
