"""The keys a truncate deletes: each table's recent changes, bounded in time and in number."""

import orjson

from dqhash.core.contracts import parse_onprem
from dqhash.core.input_records import Action
from dqhash.core.truncates import RecentKeys, delete_record


def test_a_truncate_deletes_the_keys_changed_within_the_horizon_up_to_its_commit_time():
    recent = RecentKeys(horizon_ms=1_000, kept_per_table=10)
    recent.note("t", "a", ("a",), 100)
    recent.note("t", "b", ("b",), 1_200)
    recent.note("t", "c", ("c",), 1_500)  # "a" is now older than the horizon: no change of it can still wait
    recent.note("u", "x", ("x",), 1_500)
    recent.note("t", "d", ("d",), 2_100)  # committed after the truncate below, read before it
    covered, lost = recent.truncated("t", 2_000)
    assert [pk for pk, _ in covered] == ["b", "c"] and lost == 0
    assert [pk for pk, _ in recent.truncated("t", 3_000)[0]] == ["d"]  # kept past the first truncate
    assert [pk for pk, _ in recent.truncated("u", 3_000)[0]] == ["x"]  # other tables untouched


def test_the_keys_kept_are_capped_and_a_truncate_says_how_many_it_could_not_cover():
    recent = RecentKeys(horizon_ms=10**9, kept_per_table=3)
    for i in range(5):
        recent.note("t", str(i), (i,), 10 + i)
    recent.note("t", "4", (4,), 20)  # a key changed again is kept once, as its newest
    covered, lost = recent.truncated("t", 100)
    assert [pk for pk, _ in covered] == ["2", "3", "4"] and lost == 2
    assert recent.truncated("t", 100) == ([], 0)


def test_a_truncates_delete_is_the_same_event_however_often_it_is_read():
    record = delete_record("shop.items", "33227720", ("eu", 42), 1_714_564_800_000)
    assert record == delete_record("shop.items", "33227720", ("eu", 42), 1_714_564_800_000)
    assert record["event_id"] != delete_record("shop.items", "33227721", ("eu", 42), 1_714_564_800_000)["event_id"]
    event = parse_onprem(orjson.dumps(record))
    assert event.action is Action.DELETE and event.event_ts == 1_714_564_800_000 and event.hash is None
