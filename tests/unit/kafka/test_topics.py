"""The topic plan's checks: partition counts and compaction, and the worker's wait for the broker."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace

from dqhash.kafka.preflight import wait_for_topics
from dqhash.kafka.topics import _policies_of, mismatch_error, mismatches, topic_plan
from dqhash.settings import load

SETTINGS = load({"DQHASH_PARTITIONS": "4"})
PLAN = topic_plan(SETTINGS)


def test_existing_topics_are_checked_and_missing_ones_are_not():
    counts = {SETTINGS.onprem_topic: 2, SETTINGS.cloud_topic: 4, SETTINGS.triage_topic: 1}
    policies = {SETTINGS.triage_topic: "delete"}
    assert mismatches(PLAN, counts, policies) == [
        f"{SETTINGS.onprem_topic} has 2 partitions, needs 4",
        f"{SETTINGS.triage_topic} has cleanup.policy=delete, needs compact",
    ]


def test_compaction_is_accepted_with_deletion_and_unchecked_where_the_broker_does_not_say():
    counts = {SETTINGS.triage_topic: 1, SETTINGS.snapshot_topic: 1}
    assert mismatches(PLAN, counts, {SETTINGS.triage_topic: "compact,delete"}) == []


def test_the_message_names_the_setting_and_every_problem():
    text = str(mismatch_error(["a has 2 partitions, needs 4", "b has cleanup.policy=delete, needs compact"]))
    assert "DQHASH_PARTITIONS" in text and "a has 2 partitions" in text and "b has cleanup.policy" in text


def test_cleanup_policies_are_read_from_a_describe_configs_response_and_errors_are_skipped():
    ok = (
        0,
        "",
        2,
        "t1",
        [("retention.ms", "1", False, 5, False, []), ("cleanup.policy", "compact", False, 5, False, [])],
    )
    failed = (3, "unknown topic", 2, "t2", [])
    assert _policies_of([SimpleNamespace(resources=[ok, failed])]) == {"t1": "compact"}


def test_a_worker_waits_for_the_broker_with_one_line_per_interval_naming_the_setting(caplog):
    calls = []

    async def verify(settings):
        calls.append(1)
        if len(calls) < 4:
            raise ConnectionError("refused")
        return ["x has 2 partitions, needs 4"]

    with caplog.at_level(logging.INFO, logger="dqhash.preflight"):
        wrong = asyncio.run(wait_for_topics(SETTINGS, verify, retry_s=0, report_every_s=3600))
    assert wrong == ["x has 2 partitions, needs 4"] and len(calls) == 4
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, "three failed attempts in one interval: one line"
    assert "DQHASH_BROKER" in warnings[0] and SETTINGS.broker in warnings[0]
    assert any("after 3 failed attempt(s)" in r.getMessage() for r in caplog.records)
