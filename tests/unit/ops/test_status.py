"""Lag and backpressure logic (dqhash.ops.status): what dq_kafka_lag and GET /dq/status report."""

from dqhash.ops.status import BatchStats, PartitionLag, group_status, partition_lag, worker_status

NOW = 1_714_564_800_000


def test_lag_is_end_offset_minus_the_position_after_the_newest_processed_record():
    lag = partition_lag("topic1", 2, 120, (99, NOW - 4_500), NOW)
    assert lag == PartitionLag("topic1", 2, 20, 4.5)


def test_a_caught_up_partition_is_zero_seconds_behind_however_old_its_last_record():
    assert partition_lag("topic1", 0, 100, (99, NOW - 3_600_000), NOW) == PartitionLag("topic1", 0, 0, 0.0)


def test_unknown_end_offset_and_nothing_processed_yet():
    assert partition_lag("t", 0, None, None, NOW) == PartitionLag("t", 0, None, None)
    assert partition_lag("t", 0, 50, None, NOW) == PartitionLag("t", 0, 50, None)  # behind, by an unknown time
    assert partition_lag("t", 0, 0, None, NOW) == PartitionLag("t", 0, 0, 0.0)


def test_batch_stats_count_full_batches_and_start_again_when_taken():
    stats = BatchStats()
    for size, waiting in ((1000, 5), (1000, 2000), (3, 0), (1000, 1), (1000, 0)):
        stats.saw(size, 1000, waiting)
    assert stats.view() == {"batches": 5, "records": 4003, "full_batches": 3, "full_batch_share": 0.6}
    assert stats.take()["full_batches"] == 3 and stats.view()["batches"] == 0


def test_a_tick_batch_is_full_only_when_more_ticks_wait():
    """The tick agent takes one tick a batch: every batch reaching its bound must not read as an agent behind."""
    stats = BatchStats()
    for waiting in (0, 0, 3, 0):
        stats.saw(1, 1, waiting)
    assert stats.view()["full_batches"] == 1 and stats.view()["full_batch_share"] == 0.25


def test_worker_and_group_status_sum_lag_and_keep_the_worst_backpressure():
    lags = [partition_lag("topic1", 0, 120, (99, NOW - 2_000), NOW), partition_lag("topic2", 0, None, None, NOW)]
    mine = worker_status("http://a", lags, {"topic1": (1500, 2000)}, {"topic1": BatchStats().view()}, True, False, "t")
    assert mine["lag_records"] == 20 and mine["lag_seconds_max"] == 2.0
    assert mine["backpressure"]["taps"]["topic1"] == {"buffered": 1500, "capacity": 2000, "fill": 0.75}
    other = worker_status("http://b", [partition_lag("topic1", 1, 10, (4, NOW - 9_000), NOW)], {}, {}, True, False, "t")
    group = group_status(mine, [other], ["http://c"])
    assert group["lag_records"] == 25 and group["lag_seconds_max"] == 9.0 and group["tap_fill_max"] == 0.75
    assert group["unreachable_workers"] == ["http://c"] and len(group["workers"]) == 2
