"""Every scenario through a real worker on the embedded broker (real Kafka protocol, real RocksDB)."""

import subprocess
import sys

import orjson
import pytest

from dqhash.core.outputs import DLQ_OFFSET, DLQ_PARTITION, DLQ_REASON, DLQ_TOPIC
from dqhash.core.partitioning import partition_for
from dqhash.core.timeutil import format_ms, now_ms
from tests.e2e.conftest import GRACE_S, WINDOW_S, cloud, h, onprem

pytestmark = pytest.mark.e2e


def statuses(records):
    return sorted((r["status"], r["late"]) for r in records)


def test_match(pipeline):
    pk = pipeline.pk()
    pipeline.send_onprem(onprem(pk, h(pk)))
    pipeline.send_cloud(cloud(pk, h(pk)))
    [record] = pipeline.wait_audit(pk)
    assert (record["status"], record["late"]) == ("MATCH", False)
    assert record["hash_onprem"] == record["hash_cloud"] == f"v2:{h(pk)}"


def test_mismatch(pipeline):
    pk = pipeline.pk()
    pipeline.send_onprem(onprem(pk, h(pk)))
    pipeline.send_cloud(cloud(pk, h("other")))
    [record] = pipeline.wait_audit(pk)
    assert record["status"] == "MISMATCH" and record["hash_cloud"] == f"v2:{h('other')}"


def test_missing_cloud_when_no_hash_arrives(pipeline):
    pk = pipeline.pk()
    pipeline.send_onprem(onprem(pk, h(pk)))
    [record] = pipeline.wait_audit(pk, timeout_s=30)
    assert record["status"] == "MISSING_CLOUD" and record["reason"] == "no cloud hash by the deadline"
    assert record["time_to_classify_ms"] >= GRACE_S * 1000


def test_missing_cloud_when_row_not_found(pipeline):
    pk = pipeline.pk()
    pipeline.send_onprem(onprem(pk, h(pk)))
    pipeline.send_cloud(cloud(pk, None))
    [record] = pipeline.wait_audit(pk)
    assert record["status"] == "MISSING_CLOUD" and record["reason"] == "row not found in the cloud"


def test_late_cloud_inside_grace_is_reconciled(pipeline):
    pk = pipeline.pk()
    pipeline.send_onprem(onprem(pk, h(pk)))
    pipeline.send_cloud(cloud(pk, None))  # replication lag: not there yet
    pipeline.send_cloud(cloud(pk, h(pk)))  # ... and now it is, inside the grace
    [record] = pipeline.wait_audit(pk)
    assert (record["status"], record["late"]) == ("MATCH", False)


def test_late_cloud_after_grace_reclassifies_flagged_late(pipeline):
    pk = pipeline.pk()
    pipeline.send_onprem(onprem(pk, h(pk)))
    [first] = pipeline.wait_audit(pk)
    assert first["status"] == "MISSING_CLOUD"
    pipeline.send_cloud(cloud(pk, h(pk)))
    records = pipeline.wait_audit(pk, count=2)
    assert statuses(records) == [("MATCH", True), ("MISSING_CLOUD", False)]
    assert records[0]["audit_id"] != records[1]["audit_id"]


def test_delete_is_skipped(pipeline):
    pk = pipeline.pk()
    pipeline.send_onprem(onprem(pk, None, action="DELETE"))
    [record] = pipeline.wait_audit(pk)
    assert record["status"] == "SKIPPED_DELETE" and record["hash_onprem"] is None


def test_duplicate_replay_is_counted_not_classified_twice(pipeline):
    pk = pipeline.pk()
    before = pipeline.window_counts()["DUPLICATES"]
    record = onprem(pk, h(pk), event_id=f"dup-{pk}")
    pipeline.send_onprem(record, record, record)
    pipeline.send_cloud(cloud(pk, h(pk)))
    pipeline.wait_window_count("DUPLICATES", before + 2, timeout_s=WINDOW_S + GRACE_S + 30)
    assert statuses(pipeline.wait_audit(pk)) == [("MATCH", False)]
    pipeline.wait_statsd(lambda line: line.startswith("dq_duplicates:"))


def test_topic1_key_that_is_not_the_pk_is_rekeyed(pipeline):
    pk = pipeline.pk()
    key, value = onprem(pk, h(pk))
    pipeline.send_onprem((b"some-other-key-" + key, value), (None, onprem(pk + "x", h(pk))[1]))
    pipeline.send_cloud(cloud(pk, h(pk)), cloud(pk + "x", h(pk)))
    assert statuses(pipeline.wait_audit(pk)) == [("MATCH", False)]
    assert statuses(pipeline.wait_audit(pk + "x")) == [("MATCH", False)]


@pytest.mark.parametrize(
    "mutate, reason",
    [
        (lambda doc: {**doc, "hash_onprem": "zz"}, "INVALID_HASH_FORMAT"),
        (lambda doc: {**doc, "partitionColumns": []}, "MISSING_PK"),
        (lambda doc: {**doc, "action": "MERGE"}, "UNKNOWN_ACTION"),
        (None, "INVALID_JSON"),
    ],
)
def test_bad_records_go_to_the_dlq_with_their_reason(pipeline, mutate, reason):
    pk = pipeline.pk()
    _, value = onprem(pk, h(pk))
    bad = orjson.dumps(mutate(orjson.loads(value))) if mutate else value[:-3]
    pipeline.send_onprem((pk.encode(), bad))
    key, dlq_value, headers = pipeline.wait_dlq(lambda k, v, hd: v == bad)
    assert key == pk.encode() and headers[DLQ_REASON] == reason.encode()
    assert headers[DLQ_TOPIC] == pipeline.settings.onprem_topic.encode()
    assert int(headers[DLQ_PARTITION]) >= 0 and int(headers[DLQ_OFFSET]) >= 0
    pipeline.wait_statsd(lambda line: line.startswith("dq_dlq_records:") and f"reason:{reason}" in line)


def test_poison_message_is_dead_lettered_and_the_next_message_still_processed(pipeline):
    pk = pipeline.pk()
    poison = b"\xff\xfe not even utf-8 {"
    pipeline.send_onprem((pk.encode(), poison), onprem(pk, h(pk)))
    pipeline.send_cloud((pk.encode(), b"[]"), cloud(pk, h(pk)))
    _, _, headers = pipeline.wait_dlq(lambda k, v, hd: v == poison)
    assert headers[DLQ_REASON] == b"INVALID_JSON" and headers[b"dq.error.message".decode()]
    _, _, headers = pipeline.wait_dlq(lambda k, v, hd: v == b"[]" and k == pk.encode())
    assert headers[DLQ_REASON] == b"NOT_AN_OBJECT"
    assert statuses(pipeline.wait_audit(pk)) == [("MATCH", False)]
    assert pipeline.worker.poll() is None


def test_windows_are_published_with_counts_and_match_rate(pipeline):
    """The test's own window: an event time ten minutes back (a backfill) that no other test uses."""
    pk = pipeline.pk()
    window_ms = WINDOW_S * 1000
    ts = (now_ms() - 600_000) // window_ms * window_ms + window_ms // 2
    pipeline.send_onprem(onprem(pk, h(pk), ts=ts))
    pipeline.send_cloud(cloud(pk, h(pk)))
    [record] = pipeline.wait_audit(pk)
    assert record["status"] == "MATCH"
    start = ts // window_ms * window_ms
    key = (partition_for(pk, pipeline.settings.partitions), format_ms(start))

    def own_window():
        return next(
            (w for w in list(pipeline.reader.outputs.windows.values()) if (w["partition"], w["window_start"]) == key),
            None,
        )

    pipeline._wait(
        lambda out: own_window() is not None, WINDOW_S + GRACE_S + 30, lambda out: f"the metrics record of window {key}"
    )
    window = own_window()
    assert set(window) >= {"window_start", "window_end", "partition", "counts", "match_rate", "revision"}
    assert window["window_end"] == format_ms(start + window_ms)
    assert window["counts"] == {"MATCH": 1} and window["compared"] == 1 and window["match_rate"] == 1.0


def test_worker_reports_to_dogstatsd(pipeline):
    """Counters carry no PK (by design), so the test counts its own: the lines sent after it started add up to at
    least its own three matches, in the real wire format."""
    mark = len(pipeline.statsd.lines)
    pks = [pipeline.pk() for _ in range(3)]
    for pk in pks:
        pipeline.send_onprem(onprem(pk, h(pk)))
        pipeline.send_cloud(cloud(pk, h(pk)))
    for pk in pks:
        pipeline.wait_audit(pk)

    def matches_since_mark():
        lines = [line for line in list(pipeline.statsd.lines)[mark:] if line.startswith("dq_hash_match:")]
        return sum(int(line.split(":", 1)[1].split("|", 1)[0]) for line in lines), lines

    pipeline._wait(
        lambda out: matches_since_mark()[0] >= len(pks),
        10,
        lambda out: f"dq_hash_match counting this test's {len(pks)} matches; have {matches_since_mark()}",
    )
    line = matches_since_mark()[1][0]
    assert "|c|" in line and "env:e2e" in line and "status:MATCH" in line


def test_demo_cli_end_to_end(tmp_path):
    """The README's main job: `dqhash demo` on its own embedded broker."""
    result = subprocess.run(
        [sys.executable, "-m", "dqhash.cli", "demo", "--events", "600"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "RESULT: every event accounted for, counts agree" in result.stdout
    assert "MATCH (late)" in result.stdout and "DLQ INVALID_JSON" in result.stdout
    # several tables: one with a composite key, one with a renamed column, each with its own verdicts
    assert "-- table shop.orders: key (region, order_id)" in result.stdout
    assert "-- table shop.accounts: key (id), renamed email (cloud email_address)" in result.stdout


def test_demo_keeps_running_with_its_dashboard_and_cleans_its_topics_off_a_given_broker(tmp_path):
    """`dqhash demo --keep` against a broker given by DQHASH_BROKER: it prints the dashboard and the next commands,
    serves the dashboard until Ctrl-C, then ends with the run's status and deletes every topic it made there."""
    import asyncio
    import re
    import signal
    import threading
    import urllib.request

    from aiokafka.admin import AIOKafkaAdminClient

    from dqhash.kafka.embedded_broker import EmbeddedBroker
    from dqhash.tools.runner import clean_env

    async def topics(url: str) -> set[str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=url.split("://", 1)[1])
        await admin.start()
        try:
            return set(await admin.list_topics())
        finally:
            await admin.close()

    with EmbeddedBroker(log_path=tmp_path / "broker.log") as broker:
        before = asyncio.run(topics(broker.url))
        demo = subprocess.Popen(
            [sys.executable, "-m", "dqhash.cli", "demo", "--events", "300", "--keep"],
            env={**clean_env(), "DQHASH_BROKER": broker.url},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
            preexec_fn=interruptible,
        )
        said: list[str] = []
        kept = threading.Event()

        def read_stderr() -> None:
            try:
                for line in demo.stderr:
                    said.append(line)
                    if "still running (--keep)" in line:
                        kept.set()
            except ValueError:  # communicate() read the rest and closed the pipe: those lines are in its `rest`
                return

        reader = threading.Thread(target=read_stderr, daemon=True)
        reader.start()
        try:
            assert kept.wait(240), "the demo never said it keeps running: " + "".join(said)
            [url] = {m.group(1) for line in said for m in [re.search(r"dashboard: (http://\S+/)", line)] if m}
            with urllib.request.urlopen(url, timeout=10) as page:
                assert page.status == 200 and b'id="chart"' in page.read()
            assert any("dqhash tail audit" in line for line in said)
            demo.send_signal(signal.SIGINT)
            try:  # each clean-up step is bounded (the worker 20 s, the reader 15 s, the topics 60 s)
                out, rest = demo.communicate(timeout=150)
            except subprocess.TimeoutExpired:
                pytest.fail("the demo did not end within 150 s of Ctrl-C; it said: " + "".join(said)[-3000:])
            reader.join(10)
            # communicate() reads stderr too, racing the reader thread for its last lines: both halves count
            err = "".join(said) + (rest or "")
        finally:
            if demo.poll() is None:
                demo.kill()
        assert demo.returncode == 0, err[-3000:]
        assert "RESULT: every event accounted for, counts agree" in out and "stopped; cleaned up" in err
        left = asyncio.run(topics(broker.url)) - before
        assert not [t for t in left if t.startswith("dqhash-demo-")], f"the demo left topics behind: {sorted(left)}"


def interruptible() -> None:
    """In the child, before exec: Ctrl-C delivered and handled as a terminal's would be. A test worker's thread may
    block SIGINT (a library's thread set-up), or a shell ignore it in the background: both pass on through exec,
    and the demo would never see its Ctrl-C."""
    import signal

    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.SIG_DFL)
