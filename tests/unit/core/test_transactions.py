"""Transaction completeness (``core.transactions``): a table's stream past a transaction's END shows whether every
change the END counted for it arrived; nothing is judged before that, and no shortfall is ever made up."""

from dqhash.core.transactions import Completeness, Shortfall, TransactionEvent, read_transaction


def end(tx, **counts):
    return TransactionEvent("END", tx, {f"s.{t}": n for t, n in counts.items()})


def test_the_transaction_topics_records_are_read_and_a_change_is_not_one():
    doc = {"status": "END", "id": "571:53195832", "ts_ms": 1, "event_count": 2,
           "data_collections": [{"data_collection": "s.a", "event_count": 1}, {"data_collection": "s.b", "event_count": 1}]}  # fmt: skip
    assert read_transaction(doc) == TransactionEvent("END", "571:53195832", {"s.a": 1, "s.b": 1})
    assert read_transaction({"status": "BEGIN", "id": "571:1", "data_collections": None}).counts == {}
    assert read_transaction({"op": "c", "status": "END", "id": "x"}) is None
    assert read_transaction({"before": None, "after": {"id": 1}}) is None


def test_a_complete_transaction_is_judged_once_the_table_has_moved_past_it_and_says_nothing():
    book = Completeness()
    assert book.change("s.a", "t1") == [] and book.change("s.a", "t1") == []
    assert book.ended(end("t1", a=2)) == []  # the table's stream is not known to be past t1 yet
    assert book.change("s.a", "t2") == []
    assert book.ended(end("t2", a=1)) == []  # t1 judged complete when t2 was placed after it
    assert book._expected == {"s.a": {"t2": 1}}


def test_a_missing_change_is_a_shortfall_once_the_table_is_past_its_transaction_in_either_order():
    book = Completeness()
    book.change("s.b", "t0")
    assert book.ended(end("t0", b=1)) == []
    book.change("s.a", "t1")
    assert book.ended(end("t1", a=3, b=1, c=7)) == []  # s.c: never read here, never judged
    assert book.ended(end("t2", a=1)) == []
    assert book.change("s.a", "t2") == [Shortfall("s.a", "t1", 3, 1)]  # two of t1's three never came
    # the END read after the table moved on: judged as soon as both are known
    book.change("s.b", "t3")
    assert book.ended(end("t3", b=1)) == [Shortfall("s.b", "t1", 1, 0)]  # s.b never showed its t1 change


def test_a_table_that_stops_leaves_its_last_transaction_unjudged_and_an_unread_end_topic_stops_judging():
    book = Completeness(kept=3)
    book.change("s.a", "t1")
    assert book.ended(end("t1", a=5)) == []  # nothing after it in s.a: not judged, however long
    for n in range(5):  # changes whose ENDs never come (the transaction topic not read)
        book.change("s.b", f"u{n}")
    assert book.stopped
    assert book.ended(end("u0", b=9)) == [] and book.change("s.b", "u9") == []  # no made-up shortfall


def test_an_end_read_before_the_changes_is_judged_and_a_table_never_read_is_never_judged_and_stays_bounded():
    from dqhash.core.transactions import WAITING_PER_TABLE

    book = Completeness()
    assert book.ended(end("t1", a=2, other=4)) == [] and book.ended(end("t2", a=1)) == []
    book.change("s.a", "t1")
    assert book.change("s.a", "t2") == [Shortfall("s.a", "t1", 2, 1)]
    for n in range(WAITING_PER_TABLE + 10):
        book.ended(end(f"u{n}", other=1))
    assert len(book._expected["s.other"]) == WAITING_PER_TABLE  # never read here: never judged, bounded
