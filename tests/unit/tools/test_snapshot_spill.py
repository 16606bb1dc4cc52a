"""The rows a run proven chunk by chunk keeps from its digest pass: read back once, only those of the chunks
asked for, in the order read; a scan's kept under its name only once the pass is whole."""

from dqhash.tools.snapshot.spill import Spill


def test_kept_rows_come_back_in_the_order_read_and_only_those_of_the_chunks_asked_for():
    spill = Spill()
    written = [
        (chunk % 5, f"pk{chunk}", {"pk": f"pk{chunk}", "range": chunk % 3, "nested": {"n": chunk}})
        for chunk in range(40)
    ]
    for chunk, pk, value in written:
        spill.add(chunk, pk, value)
    assert spill.rows == 40
    assert list(spill.rows_of(frozenset({1, 4}))) == [r for r in written if r[0] in {1, 4}]
    assert list(spill.rows_of(frozenset())) == []
    assert len(list(spill.rows_of(frozenset(range(5))))) == 40  # read again from the start
    spill.close()


def test_a_scans_rows_are_found_by_a_run_resumed_only_once_the_pass_is_whole_and_removed_when_done(tmp_path):
    path = tmp_path / "scan.json.run.rows"
    spill = Spill(path)
    spill.add(7, "a", {"pk": "a"})
    assert Spill.kept(path) is None  # an unfinished pass is not found
    spill.keep()
    spill.close()
    again = Spill.kept(path)
    assert again is not None and list(again.rows_of(frozenset({7}))) == [(7, "a", {"pk": "a"})]
    again.close(remove=True)
    assert not path.exists() and list(tmp_path.iterdir()) == []
