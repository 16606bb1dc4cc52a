"""Readiness: the broker, the lease and time behind, each named when it fails."""

from __future__ import annotations

from dqhash.ops.status import Health, group_status, readiness

OK = Health(1.0, 10.0, True, True, False, 3.0, 300.0)


def test_a_worker_that_hears_the_coordinator_holds_its_lease_and_keeps_up_is_ready():
    assert readiness(OK) == {"ready": True, "reasons": []}


def test_no_heartbeat_for_a_session_timeout_is_an_unreachable_broker():
    answer = readiness(OK._replace(heartbeat_age_s=12.0, lease_held=False))
    assert answer["ready"] is False
    assert (
        answer["reasons"][0]
        == "broker unreachable: no heartbeat answered for 12 s (DQHASH_BROKER, the broker's health)"
    )
    assert "ownership lease lapsed" in answer["reasons"][1]
    assert readiness(OK._replace(heartbeat_age_s=None))["reasons"][0].startswith(
        "broker unreachable: no heartbeat answered yet"
    )


def test_time_behind_above_the_bound_is_named_with_its_setting_and_zero_means_no_bound():
    assert readiness(OK._replace(behind_s=400.0))["reasons"] == [
        "time behind 400 s is above DQHASH_READY_MAX_BEHIND_SECONDS=300"
    ]
    assert readiness(OK._replace(behind_s=400.0, max_behind_s=0.0))["ready"] is True


def test_a_rebalance_is_not_ready_and_an_unassigned_worker_has_no_lease_to_lose():
    assert readiness(OK._replace(rebalancing=True, lease_held=False))["reasons"] == [
        "rebalancing: partitions are being reassigned"
    ]
    assert readiness(OK._replace(assigned=False, lease_held=False))["ready"] is True


def test_the_group_is_ready_only_if_every_worker_is_and_every_worker_answered():
    worker = {
        "lag_records": 0,
        "lag_seconds_max": 0.0,
        "backpressure": {"tap_fill_max": 0.0, "full_batch_share_max": 0.0},
    }
    ready = {**worker, "readiness": {"ready": True, "reasons": []}}
    lapsed = {**worker, "readiness": {"ready": False, "reasons": ["ownership lease lapsed"]}}
    assert group_status(ready, [ready], [])["ready"] is True
    assert group_status(ready, [lapsed], [])["ready"] is False
    assert group_status(ready, [], ["http://w2:6066"])["ready"] is False
