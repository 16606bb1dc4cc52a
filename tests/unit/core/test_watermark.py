"""The sweep bound: deadlines are swept only as far as the cloud-side inputs are known to be read."""

from dqhash.core.watermark import input_watermark

NOW = 1_000_000


def test_a_partition_read_to_its_end_is_read_up_to_now():
    assert input_watermark(NOW, fetched_at=None, highwater=10, committed=None, last_read=(9, 500)) == NOW


def test_a_lagging_partition_is_read_up_to_its_newest_processed_record():
    assert input_watermark(NOW, fetched_at=None, highwater=10, committed=3, last_read=(5, 500)) == 500


def test_nothing_is_known_read_before_the_first_fetch_after_an_assignment():
    """A new owner must not sweep the deadlines that passed during a failover before reading the backlog."""
    assert input_watermark(NOW, fetched_at=None, highwater=None, committed=4, last_read=None) == 0
    assert input_watermark(NOW, fetched_at=None, highwater=None, committed=None, last_read=(9, 500)) == 0


def test_records_processed_by_a_previous_owner_count_as_read():
    """Taken over with nothing left to read: the partition is current, or its deadlines would never be swept."""
    assert input_watermark(NOW, fetched_at=None, highwater=10, committed=10, last_read=None) == NOW


def test_a_taken_over_partition_with_a_backlog_is_not_swept_until_a_record_is_read():
    assert input_watermark(NOW, fetched_at=None, highwater=10, committed=4, last_read=None) == 0


def test_a_stale_position_from_an_earlier_ownership_does_not_hide_a_newer_commit():
    assert input_watermark(NOW, fetched_at=None, highwater=10, committed=10, last_read=(2, 100)) == NOW
    assert input_watermark(NOW, fetched_at=None, highwater=12, committed=10, last_read=(2, 100)) == 100


def test_an_empty_partition_is_current():
    assert input_watermark(NOW, fetched_at=None, highwater=0, committed=None, last_read=None) == NOW


def test_caught_up_is_only_as_recent_as_the_fetch_that_said_where_the_partition_ends():
    """A worker frozen for a minute wakes caught up with a highwater fetched before the pause: cloud hashes
    produced during the pause are not read yet, so deadlines that passed meanwhile are not swept."""
    before_pause = NOW - 60_000
    assert (
        input_watermark(NOW, highwater=10, fetched_at=before_pause, committed=None, last_read=(9, 500)) == before_pause
    )
    assert input_watermark(NOW, highwater=10, fetched_at=NOW - 5, committed=10, last_read=None) == NOW - 5


def test_a_fetch_time_ahead_of_the_sweep_clock_is_capped_at_now():
    assert input_watermark(NOW, highwater=10, fetched_at=NOW + 50, committed=10, last_read=None) == NOW


def test_a_lagging_partition_ignores_the_fetch_time():
    assert input_watermark(NOW, highwater=10, fetched_at=NOW, committed=3, last_read=(5, 500)) == 500
