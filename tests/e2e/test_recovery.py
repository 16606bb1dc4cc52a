"""Tables come back complete from the changelog after local state is wiped (embedded broker, tansu://).

Tansu's ListOffsets bug makes Faust's stock recovery stop early (docs/brokers.md: 5 of 6 runs lost values);
dqhash/internals/tansu.py derives end offsets from fetch high watermarks instead. Proof used here: after a
wipe and restart, replaying every event must find each one already in the pair table — each is
counted as a duplicate and not one audit record is published again (a lost value would make its
event look new and be classified again; with the stock transport this fails most runs).
"""

import asyncio
import time

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from rocksdict import AccessType, Options, Rdict

from dqhash.core.epochs import decode_epoch, epoch_key, is_epoch_key
from dqhash.core.partitioning import partition_for
from dqhash.core.timeutil import now_ms
from dqhash.core.window_keys import is_window_key
from dqhash.tools.runner import stop_worker
from tests.e2e.conftest import h, onprem, running_pipeline

pytestmark = pytest.mark.e2e

KEYS, UPDATES = 20, 100


def test_wiped_state_is_recovered_exactly_from_the_changelog(tmp_path, broker):
    """tansu:// on the embedded broker; kafka:// on the mock, whose ListOffsets answer is right."""
    recovers_exactly(tmp_path, broker, "tansu" if broker == "embedded" else "kafka")


def test_kafka_scheme_on_the_embedded_broker_recovers_exactly(tmp_path):
    """``kafka://``, the one real clusters use, must not trust a short ListOffsets answer either."""
    recovers_exactly(tmp_path, "embedded", "kafka")


def recovers_exactly(tmp_path, broker, scheme):
    with running_pipeline(tmp_path, "recovery", scheme=scheme, broker=broker) as pipeline:
        assert pipeline.settings.broker.startswith(f"{scheme}://")
        events = [
            onprem(f"rk-{i % KEYS}", h(f"v{i}"), event_id=f"re-{i}", ts=1_714_564_800_000 + i * 1000)
            for i in range(UPDATES)
        ]
        pipeline.send_onprem(*events)
        # every update is classified once: 80 superseded by a newer update, 20 missing at their deadline
        pipeline.run(
            pipeline.reader.wait_for(
                lambda out: sum(out.audit.values()) >= UPDATES,
                60,
                lambda out: f"{UPDATES} audit records; have {dict(out.audit)}",
            )
        )
        assert pipeline.reader.outputs.audit[("SUPERSEDED", False)] == UPDATES - KEYS
        outputs = pipeline.reader.outputs
        audit_messages_before = outputs.audit_messages

        pipeline.restart_worker(wipe_state=True)
        pipeline.send_onprem(*events)  # replay everything ...
        sentinels = sentinel_pks(pipeline.settings.partitions)
        pipeline.send_onprem(*(onprem(pk, h(pk)) for pk in sentinels))  # ... then one new event per partition
        for pk in sentinels:  # each partition's replays were processed before its sentinel, and any
            pipeline.wait_audit(pk, timeout_s=90)  # re-classification is due no later than the sentinel's
        # (verdicts of the last seconds are re-published on takeover, marked dq.republished: not re-classified)
        again = outputs.audit_messages - outputs.republished_audit_messages - audit_messages_before - len(sentinels)
        assert again == 0, f"{again} replayed event(s) classified again: the tables did not come back complete"


def sentinel_pks(partitions):
    found = {}
    i = 0
    while len(found) < partitions:
        pk = f"sentinel-{i}"
        found.setdefault(partition_for(pk, partitions), pk)
        i += 1
    return list(found.values())


def test_every_key_of_the_tables_equals_the_changelog_after_a_wipe(tmp_path, broker):
    """Stop, wipe local state, restart; every key of the table (pairs and window counts) equals the changelog's."""
    with running_pipeline(tmp_path, "exact", broker=broker) as pipeline:
        base = now_ms() - UPDATES * 1000  # recent: windows older than retention are dropped once closed
        events = [onprem(f"xk-{i % KEYS}", h(f"x{i}"), event_id=f"xe-{i}", ts=base + i * 1000) for i in range(UPDATES)]
        pipeline.send_onprem(*events)
        pipeline.run(
            pipeline.reader.wait_for(
                lambda out: sum(out.audit.values()) >= UPDATES,
                60,
                lambda out: f"{UPDATES} audit records; have {dict(out.audit)}",
            )
        )
        log = pipeline.workdir / "worker.log"
        rebuilt_before = log.read_text().count("rebuilt the deadline index")
        pipeline.restart_worker(wipe_state=True)
        wait_for_log(log, "rebuilt the deadline index", rebuilt_before + 1, timeout_s=90)
        stop_worker(pipeline.worker)  # closes RocksDB, so the files can be read
        for table in ("pairs",):
            topic = f"{pipeline.settings.app_id}-{table}-changelog"
            expected = pipeline.run(
                changelog_state(pipeline.settings.bootstrap_servers, topic, pipeline.settings.partitions)
            )
            actual = rocksdb_state(pipeline.settings.data_dir, table, pipeline.settings.partitions)
            pair_keys = sum(
                1 for keys in expected.values() for k in keys if not is_window_key(k) and not is_epoch_key(k)
            )
            assert pair_keys == KEYS, f"{topic} holds {pair_keys} pair keys, not {KEYS}"
            assert any(is_window_key(k) for keys in expected.values() for k in keys), f"{topic}: no window counts"
            epochs = {p: decode_epoch(keys.get(epoch_key(p))) for p, keys in expected.items()}
            assert all(epoch >= 2 for epoch in epochs.values()), f"an owner per start claims each partition: {epochs}"
            for partition in range(pipeline.settings.partitions):
                missing = expected[partition].keys() - actual[partition].keys()
                stale = [
                    k
                    for k in expected[partition].keys() & actual[partition].keys()
                    if expected[partition][k] != actual[partition][k]
                ]
                extra = actual[partition].keys() - expected[partition].keys()
                assert not missing and not stale and not extra, (
                    f"{table}[{partition}] after recovery: {len(missing)} keys missing, {len(stale)} stale, "
                    f"{len(extra)} not in the changelog {sorted(extra)[:3]}"
                )


def wait_for_log(path, text, occurrences, timeout_s):
    deadline = time.monotonic() + timeout_s
    while path.read_text().count(text) < occurrences:
        if time.monotonic() > deadline:
            pytest.fail(f"{text!r} did not appear in {path} within {timeout_s}s")
        time.sleep(0.2)  # polling a log file: no event to await across processes


async def changelog_state(bootstrap, topic, partitions):
    """Last value per key and partition, read up to each partition's fetch high watermark."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=100
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        state = {p: {} for p in range(partitions)}
        done = set()
        deadline = asyncio.get_running_loop().time() + 30
        while len(done) < partitions and asyncio.get_running_loop().time() < deadline:
            for tp, messages in (await consumer.getmany(timeout_ms=300)).items():
                for message in messages:
                    if message.value is None:
                        state[tp.partition].pop(message.key, None)
                    else:
                        state[tp.partition][message.key] = message.value
            for tp in tps:
                highwater = consumer.highwater(tp)
                if highwater is not None and await consumer.position(tp) >= highwater:
                    done.add(tp.partition)
        assert len(done) == partitions, f"could not read {topic} to its end"
        return state
    finally:
        await consumer.stop()


def rocksdb_state(data_dir, table, partitions):
    state = {}
    for partition in range(partitions):
        path = data_dir / "v1" / "tables" / f"{table}-{partition}.db"
        state[partition] = {}
        if not path.exists():
            continue
        db = Rdict(str(path), Options(raw_mode=True), access_type=AccessType.read_only())
        try:
            state[partition] = {k: v for k, v in db.items() if not k.startswith(b"__faust")}
        finally:
            db.close()
    return state
