"""Two workers share the partitions: same results as one worker, exact failover, routed web views.

Each workload here is order-insensitive (its answers do not depend on which side of a pair is read
first), so one worker, two workers and a killed worker must all end with the same audit stream and
the same window totals, exactly: nothing missing, nothing counted twice.
"""

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter, defaultdict

import orjson
import pytest

from dqhash.core.timeutil import now_ms
from tests.e2e.conftest import h, running_pipeline
from tests.e2e.test_recovery import wait_for_log

pytestmark = pytest.mark.e2e


def mixed_workload(n, run, base_ts):
    """On-prem and cloud records for ``n`` pks, and the window totals a correct pipeline reports."""
    onprem, cloud, expected = [], [], Counter()
    for i in range(n):
        pk, kind = f"{run}-{i:05d}", i % 10
        key = pk.encode() if i % 2 == 0 else f"{run}-ev{i}".encode()  # half arrive off their pk's partition
        event = {
            "event_id": f"{run}-e{i}",
            "hash_onprem": h(pk),
            "partitionColumns": [{"type": "PK", "value": pk}],
            "event_ts": base_ts + i,
            "action": "UPDATE",
        }
        if kind <= 5:
            cloud.append((pk.encode(), orjson.dumps({"pk": pk, "hash_cloud": h(pk), "cloud_ts": base_ts + n + i})))
            expected["MATCH"] += 1
            if i % 20 == 0:
                onprem.append((key, orjson.dumps(event)))  # replayed upstream: counted, not classified
                expected["DUPLICATES"] += 1
        elif kind == 6:
            cloud.append((pk.encode(), orjson.dumps({"pk": pk, "hash_cloud": h("x"), "cloud_ts": base_ts + n + i})))
            expected["MISMATCH"] += 1
        elif kind == 7:
            expected["MISSING_CLOUD"] += 1
        elif kind == 8:
            event["action"] = "DELETE"
            expected["SKIPPED_DELETE"] += 1
        elif i % 20 == 9:
            onprem.append((key, orjson.dumps(event)[:-3]))
            expected["DLQ_INVALID_JSON"] += 1
            continue
        else:
            event["partitionColumns"] = []
            expected["DLQ_MISSING_PK"] += 1
        onprem.append((key, orjson.dumps(event)))
    return onprem, cloud, expected


def audit_total(expected):
    return sum(n for k, n in expected.items() if not k.startswith("DLQ_") and k != "DUPLICATES")


def window_totals(pipeline):
    total = Counter()
    for window in list(pipeline.reader.outputs.windows.values()):
        total.update(window["counts"])
    return +total


def wait_complete(pipeline, expected, timeout_s):
    """Every classification published and every window closed with the expected totals."""
    pipeline.run(
        pipeline.reader.wait_for(
            lambda out: len(out.audit_ids) >= audit_total(expected) and window_totals(pipeline) == expected,
            timeout_s,
            lambda out: (
                f"{audit_total(expected)} audit records and window totals {dict(expected)}; have "
                f"{len(out.audit_ids)} and {dict(window_totals(pipeline))}; {unexpected_verdicts(out)}"
            ),
        )
    )


def unexpected_verdicts(out, shown=10):
    """The audit records of pks with a late verdict, or more than one: what to look at when totals differ."""
    by_pk = defaultdict(list)
    for record in list(out.audit_records):
        by_pk[record["pk"]].append(record)
    odd = {
        pk: [(r["status"], r["late"], r["classified_at"], r["reason"]) for r in records]
        for pk, records in by_pk.items()
        if len(records) > 1 or any(r["late"] for r in records)
    }
    return f"{len(odd)} pks with late or several verdicts: {dict(sorted(odd.items())[:shown])}"


def audit_map(pipeline):
    return {
        r["audit_id"]: (r["pk"], r["event_id"], r["status"], r["late"]) for r in pipeline.reader.outputs.audit_records
    }


def assert_no_conflicting_verdicts(pipeline):
    verdicts = defaultdict(set)
    for record in pipeline.reader.outputs.audit_records:
        verdicts[record["pk"], record["event_id"], record["late"]].add(record["status"])
    conflicts = {k: v for k, v in verdicts.items() if len(v) > 1}
    assert not conflicts, f"events classified two ways: {list(conflicts.items())[:5]}"


def run(pipeline, onprem, cloud):
    pipeline.send_onprem(*onprem)
    pipeline.send_cloud(*cloud)


def test_two_workers_publish_exactly_what_one_worker_does(tmp_path, broker):
    base = now_ms() - 60_000
    onprem, cloud, expected = mixed_workload(400, "same", base)
    results = {}
    for workers in (1, 2):
        with running_pipeline(tmp_path / f"w{workers}", f"w{workers}", workers=workers, broker=broker) as pipeline:
            if workers == 2:
                for i in range(2):
                    wait_for_log(pipeline.log_path(i), "rebuilt the deadline index", 1, timeout_s=60)
            run(pipeline, onprem, cloud)
            wait_complete(pipeline, expected, timeout_s=120)
            assert_no_conflicting_verdicts(pipeline)
            results[workers] = (audit_map(pipeline), window_totals(pipeline))
            if workers == 2:
                assert_web_views_agree_across_workers(pipeline, onprem_pk="same-00000")
    assert results[1][0] == results[2][0], "the audit streams differ"
    assert results[1][1] == results[2][1] == expected


def assert_web_views_agree_across_workers(pipeline, onprem_pk):
    ports = [env["DQHASH_WEB_PORT"] for env in pipeline.envs]
    views = [get_json(port, f"/dq/pairs/{urllib.parse.quote(onprem_pk)}") for port in ports]
    assert views[0] == views[1] and views[0]["status"] == "MATCH", "a pk's view must not depend on the worker asked"
    windows = [get_json(port, "/dq/windows?limit=500") for port in ports]
    assert windows[0]["items"] == windows[1]["items"] and windows[0]["unreachable_workers"] == []
    summed = Counter()
    for row in windows[0]["items"]:
        summed.update(row["counts"])
    assert +summed == window_totals(pipeline), "the windows view must sum every worker's partitions"


def get_json(port, path, attempts=10):
    """GET, retrying a 503 (rebalance) as its Retry-After says; bounded."""
    for _ in range(attempts):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=15) as response:
                return orjson.loads(response.read())
        except urllib.error.HTTPError as error:
            if error.code != 503:
                raise
            time.sleep(float(error.headers.get("Retry-After", "1")))  # the server's own retry advice
    pytest.fail(f"{path} on port {port} stayed unavailable")


def poll_until_served(port, path, timeout_s):
    """Statuses answered for ``path`` until a 200; every 503 must carry Retry-After."""
    answers = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=15) as response:
                answers.append(response.status)
                return answers
        except urllib.error.HTTPError as error:
            answers.append(error.code)
            if error.code == 503:
                assert error.headers.get("Retry-After"), "a 503 without retry advice"
        time.sleep(0.5)  # a client's retry interval, shorter than the advice to sample the failover
    pytest.fail(f"{path} was not served within {timeout_s}s; answers: {answers}")


def test_a_killed_worker_loses_nothing_and_counts_nothing_twice(tmp_path, broker):
    onprem, cloud, expected = mixed_workload(1_000, "kill", now_ms() - 60_000)
    half = len(onprem) // 2
    with running_pipeline(tmp_path, "kill", workers=2, broker=broker) as pipeline:
        for i in range(2):
            wait_for_log(pipeline.log_path(i), "rebuilt the deadline index", 1, timeout_s=60)
        survivor_log = pipeline.log_path(0)
        rebuilds_before = survivor_log.read_text().count("rebuilt the deadline index")
        run(pipeline, onprem[:half], cloud[: len(cloud) // 2])
        candidates = {f"kill-{i:05d}" for i in range(0, 60, 10)}  # matches, in the first half: one is the victim's
        pipeline.run(
            pipeline.reader.wait_for(
                lambda out: len(out.audit_ids) >= 100 and candidates <= {r["pk"] for r in out.audit_records},
                60,
                lambda out: f"100 audit records, {sorted(candidates)} among them; have {len(out.audit_ids)}",
            )
        )
        survivor_port, victim_port = (env["DQHASH_WEB_PORT"] for env in pipeline.envs)
        victims_pk = next(
            pk
            for pk in sorted(candidates)
            if get_json(survivor_port, f"/dq/pairs/{pk}")["served_by"].endswith(victim_port)
        )
        t0 = time.monotonic()
        pipeline.workers[1].kill()  # SIGKILL: no commit, no flush, no leave-group
        pipeline.workers[1].wait(10)
        run(pipeline, onprem[half:], cloud[len(cloud) // 2 :])
        answers = poll_until_served(survivor_port, f"/dq/pairs/{victims_pk}", timeout_s=90)
        assert set(answers) <= {200, 503} and 503 in answers, f"answers while the owner was dead: {answers}"
        wait_for_log(survivor_log, "rebuilt the deadline index", rebuilds_before + 1, timeout_s=90)
        t_ready = time.monotonic() - t0
        pipeline.check_alive(0)
        wait_complete(pipeline, expected, timeout_s=180)
        t_done = time.monotonic() - t0
        assert_no_conflicting_verdicts(pipeline)
        assert window_totals(pipeline) == expected
        timeline = {
            "survivor_ready_s": round(t_ready, 1),
            "backlog_cleared_s": round(t_done, 1),
            "audit_messages": pipeline.reader.outputs.audit_messages,
            "distinct_audit_records": len(pipeline.reader.outputs.audit_ids),
        }
        (tmp_path / "failover-timeline.json").write_text(json.dumps(timeline))
        print(f"\nfailover timeline (from kill -9): {timeline}")
