"""The real DogStatsD wire format, read from a loopback UDP socket."""

import socket
import time

import pytest

from dqhash.ops.dogstatsd import Metrics


@pytest.fixture
def agent():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    yield sock
    sock.close()


def read_lines(sock, want, timeout_s=5.0):
    lines = []
    deadline = time.monotonic() + timeout_s
    while not all(any(line.startswith(w) for line in lines) for w in want):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            pytest.fail(f"no DogStatsD lines starting with {want} within {timeout_s}s; got {lines}")
        sock.settimeout(remaining)
        try:
            lines += sock.recv(65536).decode().splitlines()
        except TimeoutError:
            continue
    return lines


def test_counters_gauges_distribution_on_the_wire(agent):
    metrics = Metrics("127.0.0.1", agent.getsockname()[1], ["service:dqhash", "env:test"], on_time_ms=100)
    metrics.classified("MATCH", False, 120)
    metrics.classified("MATCH", False, 80)
    metrics.classified("MISSING_CLOUD", True, 5)
    metrics.dead_lettered("INVALID_HASH_FORMAT", "topic1")
    metrics.duplicate("topic1")
    metrics.window_closed(3, 10, 0.9)
    metrics.flush()
    lines = read_lines(
        agent,
        [
            "dq_hash_match:",
            "dq_missing_cloud:",
            "dq_late_arrival:",
            "dq_invalid_hash:",
            "dq_dlq_records:",
            "dq_duplicates:",
            "dq_window_match_rate:",
            "dq_time_to_classify_ms:",
            "dq_classified:",
            "dq_classified_on_time:",
        ],
    )
    metrics.close()
    match = next(line for line in lines if line.startswith("dq_hash_match:"))
    assert match.startswith("dq_hash_match:2|c|#") and "service:dqhash" in match and "env:test" in match
    assert "status:MATCH" in match
    assert next(line for line in lines if line.startswith("dq_classified:")).startswith("dq_classified:2|c")
    assert next(line for line in lines if line.startswith("dq_classified_on_time:")).startswith(
        "dq_classified_on_time:1|c"
    )
    rate = next(line for line in lines if line.startswith("dq_window_match_rate:"))
    assert rate.startswith("dq_window_match_rate:0.9|g|#") and "partition:3" in rate
    assert any(line.startswith("dq_time_to_classify_ms:") and "|d|" in line for line in lines)
    assert "reason:INVALID_HASH_FORMAT" in next(line for line in lines if line.startswith("dq_dlq_records:"))
    allowed = {"service", "env", "version", "status", "topic", "reason", "partition", "table"}
    for line in lines:  # low cardinality only: never a PK or a hash as a tag
        tags = line.split("|#", 1)[1].split(",")
        assert {tag.split(":", 1)[0] for tag in tags} <= allowed, line


def test_a_batch_sends_its_distribution_samples_packed_every_one_of_them(agent):
    """One line per status and batch, ``name:v1:v2:...|d`` (DogStatsD v1.1), short enough for one packet."""
    metrics = Metrics("127.0.0.1", agent.getsockname()[1], ["service:dqhash"])
    with metrics.batch():
        for ms in range(1, 401):
            metrics.classified("MATCH", False, ms)
        metrics.classified("MISMATCH", False, 7)
    metrics.flush()
    want = 400 + 1
    lines, deadline = [], time.monotonic() + 5
    while sum(len(line.split("|", 1)[0].split(":")) - 1 for line in lines) < want:
        lines += [
            line
            for line in read_lines(agent, ["dq_time_to_classify_ms:"], deadline - time.monotonic())
            if line.startswith("dq_time_to_classify_ms:")
        ]
    metrics.close()
    matched = [line for line in lines if "status:MATCH" in line]
    samples = [int(v) for line in matched for v in line.split("|", 1)[0].split(":")[1:]]
    assert sorted(samples) == list(range(1, 401)), "every sample is sent, none sampled away"
    assert len(matched) == 3 and all(len(line) < 1432 for line in matched)
    assert all("|d|#" in line for line in matched)
    assert any(line.startswith("dq_time_to_classify_ms:7|d|") and "status:MISMATCH" in line for line in lines)


def test_missing_agent_never_slows_or_breaks_processing():
    metrics = Metrics("127.0.0.1", 9, ["service:dqhash"])  # discard port: nothing listens
    start = time.perf_counter()
    for _ in range(20_000):
        metrics.classified("MATCH", False, 1)
    metrics.flush()
    metrics.close()
    assert time.perf_counter() - start < 5  # generous; a blocking send would take far longer


def test_disabled_metrics_do_nothing():
    metrics = Metrics("127.0.0.1", 9, [], enabled=False)
    metrics.classified("MATCH", False, 1)
    metrics.close()
    assert metrics.client is None


def test_counts_held_in_a_batch_reach_the_wire_summed(agent):
    metrics = Metrics("127.0.0.1", agent.getsockname()[1], ["service:dqhash"], on_time_ms=100)
    with metrics.batch():
        for _ in range(3):
            metrics.classified("MATCH", False, 10)
        with metrics.batch():  # nested: still the outer batch
            metrics.dead_lettered("MISSING_PK", "topic1")
        # held, not yet handed to the client: three verdicts tallied, two counters
        assert sum(metrics._verdicts.values()) == 3 and sum(metrics._held.values()) == 2
    assert not metrics._held and not metrics._verdicts  # handed over at the batch's end (hand_over_s=0)
    metrics.flush()
    lines = read_lines(agent, ["dq_hash_match:", "dq_classified_on_time:", "dq_missing_pk:"])
    metrics.close()
    assert next(line for line in lines if line.startswith("dq_hash_match:")).startswith("dq_hash_match:3|c|#")
    assert next(line for line in lines if line.startswith("dq_classified_on_time:")).startswith(
        "dq_classified_on_time:3|c|#"
    )
    missing_pk = next(line for line in lines if line.startswith("dq_missing_pk:"))
    assert missing_pk.startswith("dq_missing_pk:1|c|#") and "reason:MISSING_PK" in missing_pk


def test_a_busy_worker_hands_its_batches_over_once_per_interval_with_nothing_lost(agent):
    metrics = Metrics("127.0.0.1", agent.getsockname()[1], ["service:dqhash"], hand_over_s=3600)
    for n in range(5):  # five batches within the interval: held, not handed over
        with metrics.batch():
            metrics.classified("MATCH", False, 10, f"shop.t{n % 2}")
        assert sum(metrics._verdicts.values()) == n + 1
    metrics._handed_over -= 3600  # the interval has passed
    with metrics.batch():
        metrics.classified("MISMATCH", False, 10, "shop.t0")
    assert not metrics._verdicts and not metrics._held  # the second passed: all six handed over at once
    metrics.flush()
    lines = read_lines(agent, ["dq_hash_match:", "dq_hash_mismatch:"])
    metrics.close()
    matches = {
        next(t for t in line.split("|#", 1)[1].split(",") if t.startswith("table:")): line.split("|", 1)[0]
        for line in lines
        if line.startswith("dq_hash_match:")
    }
    assert matches == {"table:shop.t0": "dq_hash_match:3", "table:shop.t1": "dq_hash_match:2"}
    assert any(line.startswith("dq_hash_mismatch:1|c") for line in lines)


def test_what_is_held_reaches_the_wire_at_flush_even_before_the_interval(agent):
    metrics = Metrics("127.0.0.1", agent.getsockname()[1], ["service:dqhash"], hand_over_s=3600)
    with metrics.batch():
        metrics.classified("MISSING_CLOUD", False, 10)
    assert sum(metrics._verdicts.values()) == 1
    metrics.flush()  # shutdown: nothing held back
    lines = read_lines(agent, ["dq_missing_cloud:"])
    metrics.close()
    assert any(line.startswith("dq_missing_cloud:1|c") for line in lines)


def test_column_mismatches_are_tagged_by_the_schemas_columns_never_by_the_data(agent):
    metrics = Metrics("127.0.0.1", agent.getsockname()[1], ["service:dqhash"], columns=("id", "name", "amount"))
    with metrics.batch():
        metrics.column_mismatch(("name",))
        metrics.column_mismatch(("amount", "name"))
        metrics.column_mismatch(("surprise-from-the-data",))
    metrics.flush()
    lines = [line for line in read_lines(agent, ["dq_column_mismatch:"]) if line.startswith("dq_column_mismatch:")]
    metrics.close()
    by_tag = {next(t for t in line.split("|#", 1)[1].split(",") if t.startswith("column:")): line for line in lines}
    assert set(by_tag) == {"column:name", "column:amount", "column:_other"}
    assert by_tag["column:name"].startswith("dq_column_mismatch:2|c")


def test_without_configured_columns_at_most_64_column_tags_are_made():
    metrics = Metrics("127.0.0.1", 9, [], enabled=True)
    with metrics.batch():
        for i in range(100):
            metrics.column_mismatch((f"c{i}",))
        tags = {tags for (name, tags) in metrics._held if name == "dq_column_mismatch"}
    metrics.close()
    assert len(tags) == 65 and ("column:_other", "table:default") in tags


def test_tables_past_the_limit_are_tagged_other_so_the_tag_count_stays_bounded(agent):
    metrics = Metrics("127.0.0.1", agent.getsockname()[1], ["service:dqhash"], max_tables=3)
    with metrics.batch():
        for n in range(10):
            metrics.classified("MATCH", False, 5, f"shop.t{n}")
        metrics.classified("MISMATCH", False, 5, "shop.t1")  # a table seen before keeps its own tag
    metrics.flush()
    lines = read_lines(agent, ["dq_hash_match:", "dq_hash_mismatch:"])
    metrics.close()
    counts = {
        (line.split(":", 1)[0], next(t for t in line.split("|#", 1)[1].split(",") if t.startswith("table:"))): line
        for line in lines
        if line.startswith(("dq_hash_match:", "dq_hash_mismatch:"))
    }
    assert set(counts) == {
        ("dq_hash_match", "table:shop.t0"),
        ("dq_hash_match", "table:shop.t1"),
        ("dq_hash_match", "table:shop.t2"),
        ("dq_hash_match", "table:_other"),
        ("dq_hash_mismatch", "table:shop.t1"),
    }
    assert counts["dq_hash_match", "table:_other"].startswith("dq_hash_match:7|c")
