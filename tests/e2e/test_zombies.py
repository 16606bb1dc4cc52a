"""Paused workers (SIGSTOP: a long GC pause, a VM live migration) wake up without their partitions.

A frozen worker's group membership expires after the session timeout and another worker takes over; when
it thaws, its timers fire before its heartbeat learns it was dropped, and its producer still holds what
it queued before the pause. Required: no verdict, no table write, no output from it for partitions it may
have lost; no deadline verdict resting on a caught-up flag from before the pause; and nothing it wrote
late wins over the new owner's state on recovery. Each test checks every verdict (exactly one MATCH per
pair, nothing else), and that a worker recovering everything from the changelog alone ends with the same
state as the live owners.
"""

from __future__ import annotations

import os
import signal
import time
import urllib.parse
from collections import defaultdict

import orjson
import pytest

from dqhash.core.timeutil import now_ms
from dqhash.tools.runner import stop_worker
from tests.e2e.conftest import h, running_pipeline
from tests.e2e.test_recovery import sentinel_pks, wait_for_log
from tests.e2e.test_replicas import get_json

pytestmark = pytest.mark.e2e

PAIRS = 3_000
#: every cloud hash is produced before its pair's deadline (arrival + grace), so each pair must MATCH
GRACE_S = 6
READY = "rebuilt the deadline index"
LAPSED = "the ownership lease lapsed"


def pairs(run: str, n: int) -> tuple[list, list, list[str]]:
    base = now_ms() - 1_000
    pks = [f"{run}-{i:05d}" for i in range(n)]
    onprem = [
        (
            pk.encode(),
            orjson.dumps(
                {
                    "event_id": f"{pk}-e",
                    "hash_onprem": h(pk),
                    "partitionColumns": [{"type": "PK", "value": pk}],
                    "event_ts": base + i,
                    "action": "UPDATE",
                }
            ),
        )
        for i, pk in enumerate(pks)
    ]
    cloud = [
        (pk.encode(), orjson.dumps({"pk": pk, "hash_cloud": h(pk), "cloud_ts": base + n + i}))
        for i, pk in enumerate(pks)
    ]
    return onprem, cloud, pks


def verdicts(pipeline, pks) -> dict[str, set]:
    wanted = set(pks)
    found = defaultdict(set)
    for record in list(pipeline.reader.outputs.audit_records):
        if record["pk"] in wanted:
            found[record["pk"]].add((record["status"], record["late"]))
    return found


def wait_all_matched(pipeline, pks, timeout_s: float) -> None:
    def describe(_):
        found = verdicts(pipeline, pks)
        return f"a MATCH for each of {len(pks)} pairs; have {sum(('MATCH', False) in v for v in found.values())}"

    pipeline.run(
        pipeline.reader.wait_for(
            lambda _: sum(("MATCH", False) in v for v in verdicts(pipeline, pks).values()) >= len(pks),
            timeout_s,
            describe,
        )
    )


def wait_deadlines_swept(pipeline) -> None:
    """A probe event per partition with no cloud hash, sent now: its MISSING_CLOUD verdict comes after every
    deadline before it on its partition was swept, so a wrong deadline verdict would be out by then."""
    probes = [f"probe-{now_ms()}-{pk}" for pk in sentinel_pks(pipeline.settings.partitions)]
    pipeline.send_onprem(
        *(
            (
                pk.encode(),
                orjson.dumps(
                    {
                        "event_id": pk,
                        "hash_onprem": h(pk),
                        "partitionColumns": [{"type": "PK", "value": pk}],
                        "event_ts": now_ms() - GRACE_S * 1000,  # its deadline is due almost at once
                    }
                ),
            )
            for pk in probes
        )
    )
    for pk in probes:
        records = pipeline.wait_audit(pk, timeout_s=GRACE_S + 60)
        assert [r["status"] for r in records] == ["MISSING_CLOUD"], f"probe {pk}: {records}"


def assert_every_pair_matched_once(pipeline, pks) -> None:
    found = verdicts(pipeline, pks)
    wrong = {pk: sorted(v) for pk, v in found.items() if v != {("MATCH", False)}}
    missing = [pk for pk in pks if pk not in found]
    assert not wrong and not missing, (
        f"{len(wrong)} pairs with wrong or conflicting verdicts (first: {dict(sorted(wrong.items())[:5])}); "
        f"{len(missing)} without one"
    )


def views(port: str, pks) -> dict[str, dict]:
    """Each pk's state as its owner holds it (routed), without the answering worker's address."""
    out = {}
    for pk in pks:
        view = get_json(port, f"/dq/pairs/{urllib.parse.quote(pk)}")
        view.pop("served_by", None)
        out[pk] = view
    return out


def assert_recovery_equals_live_state(pipeline, tmp_path, pks) -> None:
    """Stop every worker, start one on an empty data dir: it recovers from the changelog alone, and must hold
    exactly what the live owners held."""
    sample = pks[::5]
    live = views(pipeline.envs[0]["DQHASH_WEB_PORT"], sample)
    for worker in pipeline.workers:
        assert stop_worker(worker) == 0
    index = pipeline.start_worker(pipeline.envs[0])  # its own, empty data dir
    wait_for_log(pipeline.log_path(index), READY, 1, timeout_s=120)
    recovered = views(pipeline.envs[index]["DQHASH_WEB_PORT"], sample)
    differ = [pk for pk in sample if recovered[pk] != live[pk]]
    assert not differ, (
        f"{len(differ)} of {len(sample)} pairs differ after recovery, e.g. {differ[0]}: live {live[differ[0]]} recovered {recovered[differ[0]]}"
    )


def freeze(worker) -> None:
    os.kill(worker.pid, signal.SIGSTOP)


def thaw(worker) -> None:
    os.kill(worker.pid, signal.SIGCONT)


def wait_verdicts(pipeline, at_least: int, timeout_s: float) -> None:
    pipeline.run(
        pipeline.reader.wait_for(
            lambda out: len(out.audit_ids) >= at_least,
            timeout_s,
            lambda out: f"{at_least} audit records; have {len(out.audit_ids)}",
        )
    )


def both_workers_ready(pipeline) -> None:
    for i in range(2):
        wait_for_log(pipeline.log_path(i), READY, 1, timeout_s=60)


def freeze_until_taken_over(pipeline, pks, during=()) -> None:
    """Freezes worker 1 until worker 0 has taken over its partitions and matched every pair, then thaws it and
    waits until it has rejoined and recovered. ``during``: cloud hashes sent while it is frozen."""
    survivor_log, zombie_log = pipeline.log_path(0), pipeline.log_path(1)
    rebuilds, zombie_rebuilds = (log.read_text().count(READY) for log in (survivor_log, zombie_log))
    zombie = pipeline.workers[1]
    freeze(zombie)
    try:
        if during:
            pipeline.send_cloud(*during)
        wait_for_log(survivor_log, READY, rebuilds + 1, timeout_s=120)  # frozen past its session: taken over
        wait_all_matched(pipeline, pks, timeout_s=240)
    finally:
        thaw(zombie)
    wait_for_log(zombie_log, READY, zombie_rebuilds + 1, timeout_s=120)  # it rejoined and recovered
    pipeline.check_alive()


def test_a_worker_frozen_past_its_session_wakes_up_without_emitting_for_lost_partitions(tmp_path, broker):
    """The issue's scenario: every on-prem event and half the cloud hashes; freeze one worker once about half the
    verdicts are out; the other half of the cloud hashes; the survivor classifies everything; thaw."""
    onprem, cloud, pks = pairs("zombie", PAIRS)
    with running_pipeline(tmp_path, "zombie", workers=2, DQHASH_GRACE_SECONDS=GRACE_S, broker=broker) as pipeline:
        both_workers_ready(pipeline)
        pipeline.send_onprem(*onprem)
        pipeline.send_cloud(*cloud[: PAIRS // 2])
        wait_verdicts(pipeline, PAIRS // 4, timeout_s=120)
        freeze_until_taken_over(pipeline, pks, during=cloud[PAIRS // 2 :])
        wait_deadlines_swept(pipeline)
        assert_every_pair_matched_once(pipeline, pks)
        assert LAPSED in pipeline.log_path(1).read_text(), "the thawed worker never noticed its lease lapsed"
        assert_recovery_equals_live_state(pipeline, tmp_path, pks)


def test_a_worker_frozen_in_the_middle_of_a_busy_backlog(tmp_path, broker):
    """Both sides of every pair queued at once, the worker frozen while it is working through them."""
    onprem, cloud, pks = pairs("busy", PAIRS * 2 // 3)
    with running_pipeline(tmp_path, "busy", workers=2, DQHASH_GRACE_SECONDS=GRACE_S, broker=broker) as pipeline:
        both_workers_ready(pipeline)
        pipeline.send_onprem(*onprem)
        pipeline.send_cloud(*cloud)
        wait_verdicts(pipeline, len(pks) // 50, timeout_s=120)  # the backlog is being worked through
        freeze_until_taken_over(pipeline, pks)
        wait_deadlines_swept(pipeline)
        assert_every_pair_matched_once(pipeline, pks)
        assert_recovery_equals_live_state(pipeline, tmp_path, pks)


def test_a_lone_worker_frozen_past_its_session_carries_on_correctly(tmp_path, broker):
    """No one takes over. The worker wakes either still a member (the embedded broker keeps a lone member: a
    heartbeat of the same generation renews the lease) or dropped (the mock: it rejoins, wipes and recovers);
    either way every pair is classified right, the cloud hashes sent while it was frozen included."""
    onprem, cloud, pks = pairs("lone", PAIRS // 2)
    with running_pipeline(tmp_path, "lone", DQHASH_GRACE_SECONDS=GRACE_S, broker=broker) as pipeline:
        wait_for_log(pipeline.log_path(0), READY, 1, timeout_s=60)
        pipeline.send_onprem(*onprem)
        half = len(cloud) // 2
        pipeline.send_cloud(*cloud[:half])
        wait_verdicts(pipeline, half // 2, timeout_s=120)
        freeze(pipeline.worker)
        try:
            pipeline.send_cloud(*cloud[half:])
            time.sleep(2 * float(pipeline.env["DQHASH_SESSION_TIMEOUT"]))  # the pause itself: nothing to await
        finally:
            thaw(pipeline.worker)
        wait_all_matched(pipeline, pks, timeout_s=180)
        wait_deadlines_swept(pipeline)
        assert_every_pair_matched_once(pipeline, pks)
        assert_recovery_equals_live_state(pipeline, tmp_path, pks)
