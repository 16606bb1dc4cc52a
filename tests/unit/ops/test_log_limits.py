"""Logs during an outage: repeated warnings limited with a count, and an unreachable DogStatsD named once."""

from __future__ import annotations

import logging
import socket

from dqhash.ops.dogstatsd import Metrics
from dqhash.ops.log_limits import AgentUnreachable, RepeatLimiter


def record(name: str, msg: str, level: int = logging.WARNING, args: tuple = ()) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_a_repeated_warning_passes_once_per_interval_and_then_says_how_many_were_held():
    clock = [0.0]
    limiter = RepeatLimiter(interval_s=10, clock=lambda: clock[0])
    passed = []
    for second in range(25):  # 100 a second for 25 s
        clock[0] = float(second)
        for _ in range(100):
            r = record("aiokafka.consumer", "Unable to connect to node with id %s", args=(1,))
            if limiter.filter(r):
                passed.append(r.getMessage())
    assert len(passed) == 3, passed
    assert passed[0] == "Unable to connect to node with id 1"
    assert passed[1] == "Unable to connect to node with id 1 [and 999 more like it in the last 10 s]"


def test_other_loggers_other_messages_and_info_lines_are_not_limited():
    limiter = RepeatLimiter(interval_s=10, clock=lambda: 0.0)
    assert all(limiter.filter(record("dqhash.agents", "same")) for _ in range(5))
    assert all(limiter.filter(record("aiokafka", "same", logging.INFO)) for _ in range(5))
    assert limiter.filter(record("aiokafka", "one")) and limiter.filter(record("aiokafka", "two"))


def test_dogstatsd_errors_become_one_line_naming_the_agent_until_it_is_quiet_again(caplog):
    clock = [0.0]
    agent = AgentUnreachable("10.0.0.9:8125", quiet_s=30, clock=lambda: clock[0])
    error = ("[Errno 111] Connection refused",)
    first = record(
        "datadog.dogstatsd", "Error submitting packet: %s, dropping the packet and closing the socket", args=error
    )
    assert agent.filter(first)
    assert "DogStatsD at 10.0.0.9:8125 does not answer ([Errno 111] Connection refused)" in first.getMessage()
    assert "DD_AGENT_HOST" in first.getMessage()
    for _ in range(50):
        clock[0] += 5
        assert not agent.filter(record("datadog.dogstatsd", "Error submitting packet: %s", args=error))
    log = logging.getLogger("dqhash.test")
    with caplog.at_level(logging.INFO, logger="dqhash.test"):
        agent.check(log)
        assert caplog.records == [], "not quiet yet"
        clock[0] += 31
        agent.check(log)
    assert "metrics flow again (50 error(s) not logged)" in caplog.records[0].getMessage()
    again = record("datadog.dogstatsd", "Error submitting packet: %s", args=error)
    assert agent.filter(again) and "does not answer" in again.getMessage(), "a new outage is named again"


def test_a_worker_without_an_agent_logs_one_line_naming_dogstatsd(caplog):
    """The real client against a closed UDP port on loopback: refused sends, one line."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    metrics = Metrics("127.0.0.1", port, ["env:test"])
    try:
        with caplog.at_level(logging.WARNING, logger="datadog.dogstatsd"):
            for _ in range(200):  # each flush sends a datagram; the refusals come back as errors on later sends
                metrics.lag("topic1", 0, 1, 1.0)
                metrics.flush()
                if sum("does not answer" in r.getMessage() for r in caplog.records):
                    break
            for _ in range(20):
                metrics.lag("topic1", 0, 1, 1.0)
                metrics.flush()
    finally:
        metrics.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "datadog.dogstatsd"]
    assert len(lines) == 1, lines
    assert f"DogStatsD at 127.0.0.1:{port} does not answer" in lines[0]


def test_a_crash_whose_cause_is_known_gets_the_next_step_in_front_of_its_traceback():
    from faust.exceptions import ConsistencyError

    from dqhash.ops.log_limits import KnownCrashes

    try:
        raise ConsistencyError("The persisted offset for changelog topic partition ... is higher")
    except ConsistencyError:
        import sys

        crash = logging.LogRecord("mode", logging.ERROR, __file__, 1, "Crashed reason=%r", ("x",), sys.exc_info())
    other = logging.LogRecord("mode", logging.ERROR, __file__, 1, "Crashed", (), (ValueError, ValueError(), None))
    filters = KnownCrashes()
    assert filters.filter(crash) and filters.filter(other)
    assert crash.getMessage().startswith("dqhash: the local state in DQHASH_DATA_DIR is ahead of its changelog topic")
    assert "delete DQHASH_DATA_DIR" in crash.getMessage() and crash.getMessage().endswith("Crashed reason='x'")
    assert other.getMessage() == "Crashed"
    outside = logging.LogRecord("mode", logging.ERROR, __file__, 1, "Crashed reason=%r", (ConsistencyError("x"),), None)
    assert filters.filter(outside) and outside.getMessage().startswith("dqhash: the local state"), "passed, not raised"
