"""Triage of problem audit records (dqhash.ops.triage): signed changes, states, reopening on recurrence."""

import pytest

from dqhash.ops.triage import TriageBook, TriageError, check_audit_id, check_state, matches, parse_body, record

NOW = 1_796_212_800_000  # 2026-12-02T12:00:00Z
A1, A2 = "a" * 32, "b" * 32


def problem(audit_id, pk, at):
    return {"audit_id": audit_id, "pk": pk, "status": "MISMATCH", "classified_at": at}


def test_a_change_is_signed_and_bounded():
    assert parse_body(b'{"who": "ana", "note": "resync queued"}') == ("ana", "resync queued")
    for bad in (b"{}", b'{"who": ""}', b'{"who": 3}', b"[1]", b"{nope", b'{"who": "a", "note": 7}'):
        with pytest.raises(TriageError):
            parse_body(bad)
    with pytest.raises(TriageError):
        check_audit_id("not-an-id")
    with pytest.raises(TriageError):
        check_state("closed")


def test_states_and_a_resolved_problem_that_recurs_is_reopened():
    book = TriageBook()
    old = problem(A1, "k1", "2026-12-02T10:00:00.000Z")
    book.apply(record(A1, "ack", "ana", "looking", NOW, old), A1)
    [item] = book.annotate([old])
    assert item["triage"]["state"] == "acknowledged" and item["triage"]["who"] == "ana"
    book.apply(record(A1, "resolve", "bo", "resynced", NOW, old), A1)  # at 2026-12-02T12:00:00Z
    assert book.annotate([old])[0]["triage"]["state"] == "resolved"
    recurred = problem(A2, "k1", "2026-12-02T13:00:00.000Z")
    items = {i["audit_id"]: i for i in book.annotate([recurred, old])}
    assert items[A1]["triage"] | {} == {**items[A1]["triage"], "state": "open", "reopened": True}
    assert items[A2]["triage"]["state"] == "open" and not items[A2]["triage"]["reopened"]
    assert [i["audit_id"] for i in book.annotate([recurred, old]) if matches(i, "open")] == [A2, A1]
    book.apply(None, A1)  # a tombstone withdraws the triage
    assert book.annotate([old])[0]["triage"]["state"] == "open"
