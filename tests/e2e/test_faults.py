"""Faults only the mock cluster can inject (``rd_kafka_mock_*``), on the ``kafka://`` path real clusters use.

Two workers share the partitions. Each test injects one fault while its own pairs are in flight: half
of them sent before the fault, half during it. Each pair must end with exactly one verdict, the right
one; each upstream replay is counted as a duplicate and not classified again; and the window totals of
the test's own windows (event times no other test uses) must be exact: 0 lost, 0 counted twice, 0 wrong.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter, defaultdict

import orjson
import pytest

from dqhash.core.timeutil import format_ms, now_ms
from tests.e2e.conftest import h, running_pipeline
from tests.e2e.mock_cluster import (
    API_HEARTBEAT,
    API_OFFSET_COMMIT,
    API_PRODUCE,
    COORDINATOR_NOT_AVAILABLE,
    NOT_LEADER_FOR_PARTITION,
    REBALANCE_IN_PROGRESS,
)
from tests.e2e.test_recovery import wait_for_log

pytestmark = pytest.mark.e2e

PAIRS = 200
OUTAGE_S = 8
#: longer than any fault delays a cloud hash behind its on-prem event: every verdict is decided by the data alone
GRACE_S = 12
READY = "rebuilt the deadline index"


@pytest.fixture(scope="module")
def faulty(tmp_path_factory):
    with running_pipeline(
        tmp_path_factory.mktemp("faults"), "faults", workers=2, broker="mock", DQHASH_GRACE_SECONDS=GRACE_S
    ) as pipeline:
        for i in range(2):
            wait_for_log(pipeline.log_path(i), READY, 1, timeout_s=60)
        pipeline.next_base = (now_ms() - 3_600_000) // 60_000 * 60_000  # an hour back: windows of their own
        yield pipeline


def workload(pipeline, run: str):
    """Pairs with their own event times: matches, mismatches, upstream replays; and what must come of them."""
    base = pipeline.next_base
    pipeline.next_base += 60_000
    onprem, cloud, expected = [], [], {}
    for i in range(PAIRS):
        pk = f"{run}-{i:04d}"
        event = {
            "event_id": f"{pk}-e",
            "hash_onprem": h(pk),
            "partitionColumns": [{"type": "PK", "value": pk}],
            "event_ts": base + i * 10,
        }
        onprem.append((pk.encode(), orjson.dumps(event)))
        mismatch = i % 10 == 3
        cloud.append(
            (
                pk.encode(),
                orjson.dumps({"pk": pk, "hash_cloud": h("other" if mismatch else pk), "cloud_ts": base + 30_000 + i}),
            )
        )
        expected[pk] = "MISMATCH" if mismatch else "MATCH"
        if i % 15 == 0:
            onprem.append((pk.encode(), orjson.dumps(event)))  # replayed upstream: counted, not classified
    return onprem, cloud, expected, (base, base + 60_000)


def own_window_totals(pipeline, span) -> Counter:
    start, end = format_ms(span[0]), format_ms(span[1])
    total = Counter()
    for window in list(pipeline.reader.outputs.windows.values()):
        if start <= window["window_start"] < end:
            total.update(window["counts"])
    return +total


def check_exact(pipeline, onprem, expected, span, timeout_s=GRACE_S + 120) -> None:
    counts = Counter(expected.values())
    counts["DUPLICATES"] = len(onprem) - len(expected)

    def verdicts():
        found = defaultdict(set)
        for record in list(pipeline.reader.outputs.audit_records):
            if record["pk"] in expected:
                found[record["pk"]].add((record["status"], record["late"]))
        return found

    pipeline.check_alive()
    pipeline.run(
        pipeline.reader.wait_for(
            lambda _: len(verdicts()) >= len(expected) and own_window_totals(pipeline, span) == counts,
            timeout_s,
            lambda _: (
                f"{len(expected)} verdicts and window totals {dict(counts)}; have {len(verdicts())} and "
                f"{dict(own_window_totals(pipeline, span))}"
            ),
        )
    )
    found = verdicts()
    wrong = {pk: v for pk, v in found.items() if v != {(expected[pk], False)}}
    assert not wrong, f"{len(wrong)} pairs with wrong or conflicting verdicts: {dict(list(wrong.items())[:5])}"


def in_two_halves(pipeline, run, fault, heal=None):
    onprem, cloud, expected, span = workload(pipeline, run)
    half = len(onprem) // 2
    pipeline.send_onprem(*onprem[:half])
    pipeline.send_cloud(*cloud[: len(cloud) // 2])
    fault(pipeline.cluster)
    try:
        pipeline.send_onprem(*onprem[half:])
        pipeline.send_cloud(*cloud[len(cloud) // 2 :])
    finally:
        if heal:
            heal(pipeline.cluster)
    check_exact(pipeline, onprem, expected, span)


def test_not_leader_for_partition_on_produce(faulty):
    """Every producer (the workers' outputs and changelogs, the test's own) retries after a metadata refresh."""
    in_two_halves(faulty, "notleader", lambda c: c.push_request_errors(API_PRODUCE, *[NOT_LEADER_FOR_PARTITION] * 6))


def test_coordinator_not_available_on_commit(faulty):
    """Commits fail, the offsets they would have committed are committed later; nothing is read twice as new."""
    in_two_halves(
        faulty, "nocoord", lambda c: c.push_request_errors(API_OFFSET_COMMIT, *[COORDINATOR_NOT_AVAILABLE] * 4)
    )


def test_rebalance_in_progress_on_heartbeat(faulty):
    """The heartbeat answer forces the workers to rejoin: a rebalance in the middle of the pairs."""
    rebalances = faulty.log_path(0).read_text().count(READY)
    in_two_halves(faulty, "rebalance", lambda c: c.push_request_errors(API_HEARTBEAT, REBALANCE_IN_PROGRESS))
    assert faulty.log_path(0).read_text().count(READY) > rebalances, "no rebalance came of it"


def test_a_broker_down_then_up(faulty):
    """Broker 1 leads some partitions; for 8 s (longer than the session timeout) their records wait, then go
    through. The second half is sent during the outage."""

    def down(cluster):
        cluster.set_down(1)
        threading.Timer(OUTAGE_S, cluster.set_up, (1,)).start()  # the outage's length: a duration, not a wait

    in_two_halves(faulty, "down", down)


def test_added_request_latency(faulty):
    """300 ms on every request to every broker."""
    brokers = [b.broker_id for b in faulty.cluster.brokers]
    try:
        in_two_halves(faulty, "latency", lambda c: [c.set_rtt(b, 300) for b in brokers])
    finally:
        for broker in brokers:
            faulty.cluster.set_rtt(broker, 0)


def readyz(pipeline, index=0):
    import urllib.error
    import urllib.request

    url = f"http://127.0.0.1:{pipeline.envs[index]['DQHASH_WEB_PORT']}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, orjson.loads(error.read())


def wait_readyz(pipeline, wanted, timeout_s):
    import time

    deadline = time.monotonic() + timeout_s
    answer = None
    while time.monotonic() < deadline:
        answer = readyz(pipeline)
        if wanted(answer):
            return answer
        pipeline.run(asyncio.sleep(0.5))
    raise AssertionError(f"GET /readyz never answered as expected within {timeout_s}s; last: {answer}")


def test_readiness_fails_while_every_broker_is_down_says_why_and_comes_back(faulty):
    """Last in this module: the whole cluster goes away, and the workers rejoin once it is back."""
    wait_readyz(faulty, lambda answer: answer[0] == 200 and answer[1]["ready"], 60)
    brokers = [b.broker_id for b in faulty.cluster.brokers]
    for broker in brokers:
        faulty.cluster.set_down(broker)
    try:
        status, body = wait_readyz(
            faulty, lambda answer: answer[0] == 503 and "unreachable" in " ".join(answer[1]["reasons"]), 60
        )
        assert body["ready"] is False and any(r.startswith("broker unreachable") for r in body["reasons"]), body
    finally:
        for broker in brokers:
            faulty.cluster.set_up(broker)
    wait_readyz(faulty, lambda answer: answer[0] == 200, 180)
