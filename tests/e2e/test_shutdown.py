"""Graceful shutdown and broker outages: SIGTERM stops a worker within 10 s; a lost broker is waited out."""

import signal
import subprocess
import time

import pytest

from dqhash.internals.worker import EXIT_SHUTDOWN_TIMEOUT
from tests.e2e.conftest import cloud, h, onprem, running_pipeline

pytestmark = pytest.mark.e2e

STOP_WITHIN_S = 10


def matched_pair(pipeline, timeout_s=60):
    pk = pipeline.pk()
    pipeline.send_onprem(onprem(pk, h(pk)))
    pipeline.send_cloud(cloud(pk, h(pk)))
    [record] = pipeline.wait_audit(pk, timeout_s=timeout_s)
    assert record["status"] == "MATCH"


def sigterm_and_time(process):
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail("the worker ignored SIGTERM for 30 s")
    return code, time.monotonic() - started


def test_sigterm_stops_a_busy_worker_within_10_seconds(tmp_path, broker):
    with running_pipeline(tmp_path, "term", broker=broker) as pipeline:
        matched_pair(pipeline)
        pipeline.send_onprem(*(onprem(f"busy-{i}", h(str(i))) for i in range(3_000)))  # a backlog in flight
        code, took = sigterm_and_time(pipeline.worker)
        assert code == 0, f"unclean stop (exit {code}); log: {pipeline.log_path()}"
        assert took < STOP_WITHIN_S, f"stopping took {took:.1f} s"
        log = pipeline.log_path().read_text()
        assert "Signal received: 15" in log and "Traceback" not in log


def test_a_worker_waits_out_a_broker_outage_and_still_stops_on_sigterm(tmp_path):
    with running_pipeline(tmp_path, "outage", proxy=True) as pipeline:
        matched_pair(pipeline)
        pipeline.run(pipeline.proxy.cut())
        time.sleep(15)  # the outage itself (longer than the 6 s session timeout), not a synchronisation
        pipeline.check_alive()
        pipeline.run(pipeline.proxy.restore())
        matched_pair(pipeline, timeout_s=120)  # it rejoined the group and works again
        pipeline.check_alive()

        pipeline.run(pipeline.proxy.cut())  # now the broker is gone for good
        code, took = sigterm_and_time(pipeline.worker)
        pipeline.run(pipeline.proxy.restore())  # for the test's own reader to stop cleanly
        assert code in (0, EXIT_SHUTDOWN_TIMEOUT), f"exit {code}; log: {pipeline.log_path()}"
        assert took < STOP_WITHIN_S, f"stopping without a broker took {took:.1f} s"
        print(f"\nstop without a broker: exit {code} after {took:.1f} s")
