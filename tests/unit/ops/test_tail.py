"""``dqhash tail``'s lines: a record as JSON with where it sits, filtered by pk and status (or DLQ reason)."""

from __future__ import annotations

import orjson

from dqhash.ops.tail import TOPICS, line
from dqhash.settings import Settings

AUDIT = orjson.dumps({"pk": "42", "status": "MISMATCH", "audit_id": "a1"})


def test_an_audit_record_is_shown_with_its_partition_and_offset():
    assert line("audit", 3, 17, b"42", AUDIT, ()) == {
        "pk": "42",
        "status": "MISMATCH",
        "audit_id": "a1",
        "_partition": 3,
        "_offset": 17,
    }


def test_pk_and_status_filter_and_a_tombstone_is_skipped():
    assert line("audit", 0, 0, b"42", AUDIT, (), pk="43") is None
    assert line("audit", 0, 0, b"42", AUDIT, (), status="MATCH") is None
    assert line("audit", 0, 0, b"42", AUDIT, (), pk="42", status="MISMATCH") is not None
    assert line("audit", 0, 0, b"42", None, ()) is None


def test_a_dead_letter_shows_its_reason_and_source_and_filters_by_reason():
    headers = [
        ("dq.error.reason", b"INVALID_JSON"),
        ("dq.error.message", b"not JSON"),
        ("dq.source.topic", b"topic1"),
        ("dq.source.partition", b"2"),
        ("dq.source.offset", b"9"),
    ]
    shown = line("dlq", 0, 5, b"k1", b"{broken", headers, status="INVALID_JSON")
    assert shown is not None and shown["id"] == "topic1:2:9" and shown["reason"] == "INVALID_JSON"
    assert shown["value_preview"] == "{broken" and "_value" not in shown and shown["_offset"] == 5
    assert line("dlq", 0, 5, b"k1", b"{broken", headers, status="MISSING_PK") is None


def test_undecodable_records_are_shown_not_dropped():
    assert line("metrics", 0, 1, None, b"\xff\xfe", ())["undecodable"] == "\ufffd\ufffd"


def test_every_kind_names_a_topic_setting():
    assert all(
        hasattr(Settings, attribute) or attribute in Settings.__dataclass_fields__ for attribute in TOPICS.values()
    )
