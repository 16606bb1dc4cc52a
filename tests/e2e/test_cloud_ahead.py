"""No verdict ahead of the on-prem stream: the cloud runs versions ahead of Topic-1, end to end.

Every version's cloud state is published (or stored, with lookups) before its on-prem event, and Topic-1 is
behind by anything from 0 to just under the grace. No key whose cloud copy is right may get a problem verdict,
on time or late, nor a repair request; a cloud that stays wrong, or stays a version behind, is still reported.
The lag is the workload's shape: the on-prem waves are sent at set times, and every wait on an outcome is a
bounded wait on the output topics.
"""

from __future__ import annotations

import asyncio
import os
import time

import pytest
from aiokafka import AIOKafkaProducer

from dqhash.core.hashing import RowHasher
from dqhash.core.partitioning import partition_for
from dqhash.kafka.security import connect_args
from tests.e2e.conftest import GRACE_S, cloud, h, onprem, sqlite_pipeline

pytestmark = pytest.mark.e2e

#: Topic-1 behind Topic-2 by these many seconds, one group of keys each: from almost 0 to just under the grace
LAGS_S = (0.05, 0.6, 1.2, 0.9 * GRACE_S)
#: keys whose cloud copy is right (DQHASH_TEST_AHEAD_KEYS scales it up for a measurement), stays wrong, stays behind
IN_SYNC = int(os.environ.get("DQHASH_TEST_AHEAD_KEYS", "24"))
WRONG = BEHIND = max(3, IN_SYNC // 8)
PROBLEMS = {"MISMATCH", "MISSING_CLOUD", "HASH_VERSION_MISMATCH", "DELETE_NOT_PROPAGATED"}
HASHER = RowHasher("v2", ["id", "name"])


def versions_of(index: int) -> int:
    return 2 + index % 3  # 2 to 4 versions a key


def commit_times(base: float, lag: float, n: int) -> list[float]:
    """When a key's n versions were committed: within its lag of each other, so that the cloud can hold the
    newest before Topic-1 has delivered the first."""
    return [base + i * lag / n for i in range(n)]


async def send_on_schedule(kafka: dict, schedule: list[tuple[float, str, tuple]]) -> None:
    """Sends each (at, topic, record) at its wall-clock time (the workload's shape, not a wait for an outcome)."""
    producer = AIOKafkaProducer(**kafka, linger_ms=2)
    await producer.start()
    try:
        for at, topic, (key, value) in sorted(schedule, key=lambda item: item[0]):
            delay = at - time.time()
            if delay > 0:
                await producer.flush()
                await asyncio.sleep(delay)
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


def wait_settled(pipeline, keys: dict[str, int]) -> dict[str, list[dict]]:
    """Every event of every key has its verdict, and a sentinel per partition has had its deadline: a verdict
    still waiting for Topic-1 (due by cloud_ts + grace) would have come before the sentinel's."""
    for pk, count in keys.items():
        pipeline.wait_audit(pk, count=count, timeout_s=60)
    partitions = pipeline.settings.partitions
    sentinels: dict[int, str] = {}
    while len(sentinels) < partitions:
        pk = pipeline.pk()
        sentinels.setdefault(partition_for(pk, partitions), pk)
    pipeline.send_onprem(*(onprem(pk, h(pk)) for pk in sentinels.values()))
    for pk in sentinels.values():
        [sentinel] = pipeline.wait_audit(pk, timeout_s=60)
        assert sentinel["status"] == "MISSING_CLOUD", sentinel
    return {pk: pipeline.audits_for(pk) for pk in keys}


def final_status(records: list[dict], event_id: str) -> str:
    mine = [r for r in records if r["event_id"] == event_id]
    return mine[-1]["status"]


def check(pipeline, verdicts: dict[str, list[dict]], in_sync: list[str], wrong: list[str], behind: list[str]) -> None:
    false_alarms = [
        (pk, r["event_id"], r["status"], r["late"], r["reason"])
        for pk in in_sync
        for r in verdicts[pk]
        if r["status"] in PROBLEMS
    ]
    assert false_alarms == [], f"{len(false_alarms)} false alarm(s): {false_alarms[:5]}"
    for pk in in_sync:  # each version matched, or was superseded by the next; the newest matched
        assert {r["status"] for r in verdicts[pk]} <= {"MATCH", "SUPERSEDED"}, (pk, verdicts[pk])
        assert max(verdicts[pk], key=lambda r: r["event_ts"])["status"] == "MATCH", (pk, verdicts[pk])
    repairs = {r["pk"] for r in list(pipeline.reader.outputs.repairs)}
    assert not repairs & set(in_sync), "repair requests for keys whose cloud copy is right"
    for pk in wrong + behind:
        last = max(verdicts[pk], key=lambda r: r["event_ts"])
        assert last["status"] == "MISMATCH" and not last["late"], (pk, verdicts[pk])
        assert pk in repairs
    events = sum(len(verdicts[pk]) for pk in in_sync)
    latency = sorted(max(verdicts[pk], key=lambda r: r["event_ts"])["time_to_classify_ms"] for pk in wrong + behind)
    print(  # the figures behind docs/classification.md's latency statement (pytest -s shows them)
        f"\ncloud ahead: {events} events of {len(in_sync)} in-sync keys, 0 false alarms; "
        f"{len(wrong) + len(behind)} planted problems all found; MISMATCH time to classify "
        f"median {latency[len(latency) // 2]} ms, max {latency[-1]} ms"
    )


def plan(pipeline, with_cloud_hashes: bool):
    """The workload: keys with 2-4 versions, each version's cloud state before its on-prem event, Topic-1 behind
    by one of LAGS_S; IN_SYNC keys whose cloud is right, WRONG ones whose cloud stays wrong, BEHIND ones whose
    cloud stays a version behind. Returns (schedule, versions per key, final cloud row per key, the groups)."""
    settings = pipeline.settings
    base = time.time() + 1.0
    schedule, keys, rows = [], {}, {}
    groups: dict[str, list[str]] = {"in_sync": [], "wrong": [], "behind": []}
    for index in range(IN_SYNC + WRONG + BEHIND):
        pk = pipeline.pk()
        n = keys[pk] = versions_of(index)
        lag = LAGS_S[index % len(LAGS_S)]
        group = "in_sync" if index < IN_SYNC else "wrong" if index < IN_SYNC + WRONG else "behind"
        groups[group].append(pk)
        for version, committed in enumerate(commit_times(base, lag, n), start=1):
            digest = HASHER.hash({"id": pk, "name": f"n{version}"}).digest
            event = onprem(pk, digest, event_id=f"{pk}:v{version}", ts=int(committed * 1000))
            schedule.append((committed + lag, settings.onprem_topic, event))
            cloud_sees = version if group == "in_sync" or (group == "behind" and version < n) else None
            if with_cloud_hashes and cloud_sees is not None:
                schedule.append(
                    (committed + 0.02, settings.cloud_topic, cloud(pk, digest, ts=int(committed * 1000) + 20))
                )
        if with_cloud_hashes and group == "wrong":
            schedule.append((base + lag, settings.cloud_topic, cloud(pk, h("wrong"), ts=int((base + lag) * 1000))))
        rows[pk] = {"in_sync": f"n{n}", "wrong": "wrong", "behind": f"n{n - 1}"}[group]
    return schedule, keys, rows, groups


def test_a_cloud_versions_ahead_of_topic_1_raises_no_false_alarm(pipeline):
    """External Topic-2 (an independent cloud CDC): every version's cloud hash is published before its event."""
    schedule, keys, _, groups = plan(pipeline, with_cloud_hashes=True)
    pipeline.run(send_on_schedule(connect_args(pipeline.settings), schedule))
    check(pipeline, wait_settled(pipeline, keys), groups["in_sync"], groups["wrong"], groups["behind"])


@pytest.fixture(scope="session")
def lookup_pipeline(tmp_path_factory, broker):
    with sqlite_pipeline(
        tmp_path_factory.mktemp(f"ahead-{broker}"),
        "ahead",
        broker,
        DQHASH_LOOKUP_DELAY_SECONDS=0.2,
        DQHASH_RECHECKS=0,  # no recheck's wait to hide a verdict given ahead of Topic-1
    ) as running:
        yield running


def test_with_lookups_a_cloud_store_versions_ahead_raises_no_false_alarm(lookup_pipeline):
    """dqhash's own producer reads a cloud store that already holds each row's newest version (or a wrong one,
    or the one before) when the first on-prem event arrives."""
    pipeline = lookup_pipeline
    schedule, keys, rows, groups = plan(pipeline, with_cloud_hashes=False)
    with pipeline.cloud_db:
        pipeline.cloud_db.executemany("INSERT OR REPLACE INTO rows VALUES (?, ?)", list(rows.items()))
    pipeline.run(send_on_schedule(connect_args(pipeline.settings), schedule))
    check(pipeline, wait_settled(pipeline, keys), groups["in_sync"], groups["wrong"], groups["behind"])
