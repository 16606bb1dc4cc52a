"""Progress marks and "verified through" (``core.progress``): what a mark says, and how the times combine."""

import orjson
import pytest

from dqhash.core.contracts import parse_onprem
from dqhash.core.input_records import ProgressMarks, Rejection
from dqhash.core.progress import (
    Progress,
    mark_through,
    parse_progress,
    partition_through,
    progress_record,
    table_through,
)


def test_a_progress_record_reads_back_as_the_marks_it_was_made_of():
    marks = [Progress("shop.orders", "dbserver1.shop.orders:0", 1, 1_700_000_000_000)]
    parsed = parse_onprem(orjson.dumps(progress_record(marks)))
    assert parsed == ProgressMarks(marks)


@pytest.mark.parametrize(
    "entries",
    [[], "x", [{"table": "t", "source": "s", "sources": 0, "through": 1}],
     [{"table": "", "source": "s", "sources": 1, "through": 1}], [{"table": "t", "source": "s", "sources": 1}],
     [{"table": "t", "source": "s", "sources": 1, "through": -5}], ["not an object"]],
)  # fmt: skip
def test_a_malformed_mark_is_refused_with_what_is_wrong(entries):
    assert isinstance(parse_progress(entries), str)
    parsed = parse_onprem(orjson.dumps({"progress": entries}))
    assert isinstance(parsed, Rejection) and "progress" in parsed.message


def test_a_table_counts_on_a_partition_only_once_every_source_partition_has_spoken():
    assert mark_through({}) is None
    assert mark_through({"topic:0": (2, 500)}) is None  # one of two sources: what the other sent is unknown
    assert mark_through({"topic:0": (2, 500), "topic:1": (2, 300)}) == 300  # the slower source bounds it


def test_the_oldest_pending_change_holds_a_partition_back_and_every_partition_holds_the_table():
    assert partition_through(None, 100) is None
    assert partition_through(500, None) == 500
    assert partition_through(500, 200) == 200  # a change committed at 200 still has no verdict
    assert partition_through(500, 900) == 500  # a pending change newer than the mark holds nothing back
    assert table_through({0: 500, 1: 300}, 2) == 300
    assert table_through({0: 500}, 2) is None  # partition 1 has no time yet
    assert table_through({0: 500, 1: None}, 2) is None
