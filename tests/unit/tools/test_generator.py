"""The load generator's cases: shares by kind, values of the declared types, and events hashed by the spec."""

from __future__ import annotations

import random
from collections import Counter

import orjson

from dqhash.core.hashing import RowHasher
from dqhash.tools.generator import next_case, onprem_event

COLUMNS = ("id", "name", "amount", "updated_at")
TYPES = {"amount": "decimal", "updated_at": "timestamp"}


def cases(n: int, mismatch: float = 0.05, missing: float = 0.03):
    rng = random.Random(3)
    return [next_case(rng, i, "t", COLUMNS, TYPES, "id", mismatch, missing) for i in range(n)]


def test_kinds_come_in_their_shares_and_each_pk_once():
    made = cases(10_000)
    kinds = Counter(c.kind for c in made)
    assert 0.04 < kinds["mismatch"] / 10_000 < 0.06 and 0.02 < kinds["missing_cloud"] / 10_000 < 0.04
    assert len({c.pk for c in made}) == 10_000


def test_a_match_is_the_same_row_a_mismatch_differs_in_a_text_column_and_a_missing_row_has_none():
    for case in cases(500, mismatch=0.3, missing=0.2):
        if case.kind == "match":
            assert case.cloud == case.onprem
        elif case.kind == "mismatch":
            assert [c for c in COLUMNS if case.cloud[c] != case.onprem[c]] == ["name"]
        else:
            assert case.cloud is None
        assert case.onprem["id"] == case.pk and "." in case.onprem["amount"] and "T" in case.onprem["updated_at"]


def test_the_event_carries_the_spec_hash_and_column_digests_of_the_on_prem_row():
    hasher = RowHasher("v2", list(COLUMNS), TYPES)
    case = cases(1)[0]
    event = orjson.loads(onprem_event(case, hasher, 1_700_000_000_000))
    assert event["hash_onprem"] == str(hasher.hash(case.onprem))
    assert event["partitionColumns"] == [{"type": "PK", "value": case.pk}] and event["action"] == "UPDATE"
    assert set(event["column_digests"]) == set(COLUMNS)
