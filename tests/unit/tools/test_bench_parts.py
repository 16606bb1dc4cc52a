"""The benchmark's own pieces stay correct (its figures are not tested: they are printed)."""

import orjson
import pytest

from dqhash.tools.bench.pipeline import MIX, workload
from dqhash.tools.bench.sweep import sweep_ms


def test_workload_mix_and_expected_classifications():
    onprem, cloud, classified = workload(1000, "t", 1_714_564_800_000)
    assert len(onprem) == 1000
    broken = sum(1 for _, value in onprem if not value.endswith(b"}"))
    assert broken == round(1000 * MIX["bad"])
    duplicates = len(onprem) - len(set(onprem))
    assert classified == 1000 - broken - duplicates
    assert len(cloud) == round(1000 * (MIX["match"] + MIX["mismatch"]))
    assert {orjson.loads(v)["action"] for _, v in onprem if v.endswith(b"}")} == {"UPDATE", "DELETE"}


def test_sweep_measures_a_tick_that_decides_every_due_pair():
    assert sweep_ms(held=2_000, due=100) > 0  # it asserts the 100 audit records itself


def test_the_pending_sweep_gives_every_pending_pair_its_verdict_past_the_bound():
    from dqhash.tools.bench.sweep import pending_sweep_us

    assert pending_sweep_us(10_000, 4_096) > 0  # 2,500 a partition past 1,024 kept: it counts the verdicts itself


def test_the_domain_bench_reconciles_every_pair_it_times():
    from dqhash.tools.bench.domain import _reconcile_rate, sample_messages

    onprem, cloud = sample_messages(300)
    assert _reconcile_rate(onprem, cloud, batch=64) > 0
    with pytest.raises(RuntimeError, match="classified 0 of 300"):
        _reconcile_rate(onprem, [b"{}"] * 300, batch=64)  # cloud records that classify nothing


def test_the_tables_bench_deals_the_same_pairs_over_its_tables_each_keyed_by_its_pair_key():
    import os

    from dqhash.core.catalog import parse_catalog
    from dqhash.core.contracts import parse_cloud, parse_onprem
    from dqhash.tools.bench.tables import CATALOG, table_names, worker_files
    from dqhash.tools.bench.tables import workload as tables_workload

    catalog = parse_catalog(CATALOG)
    names = table_names(4)
    onprem, cloud, classified = tables_workload(400, names, 1_714_564_800_000)
    assert classified == len(onprem) == 400 and len(cloud) == 380  # 5 % of the rows never reach the cloud
    events = [parse_onprem(value, tables=catalog) for _, value in onprem]
    assert all(event.pk == key.decode() for event, (key, _) in zip(events, onprem))
    assert len({event.pk for event in events}) == 400 and len({event.pk.split("\x1f")[0] for event in events}) == 4
    answers = [parse_cloud(value, tables=catalog) for _, value in cloud]
    assert {a.pk for a in answers} <= {e.pk for e in events}
    files, rocksdb = worker_files(os.getpid())
    assert files > 0 and rocksdb >= 0


def test_the_bench_reads_a_workers_memory_parts_in_mb_and_says_when_there_are_none():
    import http.server
    import os
    import threading

    from dqhash.kafka.embedded_broker import free_port
    from dqhash.tools.bench.memory import memory_parts_mb, parts_text, rss_mb

    class View(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the handler's own name)
            body = b'{"rss": 250000000, "rocksdb_instances": 4, "rocksdb_block_cache": 1500000}'
            self.send_response(200 if self.path == "/dq/memory" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), View)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        parts = memory_parts_mb({"DQHASH_WEB_PORT": str(server.server_port)})
    finally:
        server.shutdown()
    assert parts == {"rss": 250.0, "rocksdb_instances": 4, "rocksdb_block_cache": 1.5}
    assert parts_text(parts) == "rss 250.0, RocksDB instances 4, RocksDB block_cache 1.5"
    assert memory_parts_mb({"DQHASH_WEB_PORT": str(free_port())}) == {} and parts_text({}) == "(none)"
    current, peak = rss_mb(os.getpid())
    assert 0 < current <= peak


def test_the_held_keys_bench_writes_each_key_a_settled_match_of_its_own_in_its_pks_partition():
    import hashlib

    from dqhash.core import pair_state
    from dqhash.core.codec import decode_state
    from dqhash.tools.bench.held import CLASSIFIED_PER_S, held_pk, held_records, template_states

    templates = template_states("t", 4)
    keys = 3 * len(templates)
    records = list(held_records("t", templates, len(templates) - 2, 4, keys))  # across the templates' wrap
    assert [key.decode() for key, _ in records] == [
        held_pk("t", i) for i in range(len(templates) - 2, len(templates) + 2)
    ]
    newest = None
    for (key, value), i in zip(records, range(len(templates) - 2, len(templates) + 2)):
        state = decode_state(value)
        assert state.tracked.status == "MATCH" and pair_state.pending_deadline(state) is None
        assert state.tracked.hash_digest == state.cloud.hash_digest == hashlib.sha256(key).hexdigest()
        assert state.tracked.event_id == f"t-he{i:010d}"
        if newest is not None:  # one key a CLASSIFIED_PER_S-th of a second after the one before, at most
            assert 0 <= state.updated_ms - newest <= 1000 // CLASSIFIED_PER_S + 1
        newest = state.updated_ms
    first_template = decode_state(templates[0][0])
    assert decode_state(records[-2][1]).updated_ms < first_template.updated_ms  # held keys are older than the run


def test_the_held_keys_bench_can_hold_pairs_still_waiting_for_their_cloud_side_a_day_from_their_deadline():
    import hashlib

    from dqhash.core import pair_state
    from dqhash.core.codec import decode_state
    from dqhash.core.timeutil import now_ms
    from dqhash.tools.bench.held import PENDING_GRACE_S, held_records, template_states

    templates = template_states("t", 4, pending=True)
    for key, value in held_records("t", templates, 0, 8, 8):
        state = decode_state(value)
        assert state.tracked.status == "PENDING" and state.cloud is None
        assert state.tracked.hash_digest == hashlib.sha256(key).hexdigest()
        assert pair_state.pending_deadline(state) >= now_ms() + (PENDING_GRACE_S - 3_600) * 1000


def test_the_ceiling_produces_to_every_topic_a_worker_writes_and_reads_none_of_its_inputs():
    from dqhash import settings as settings_module
    from dqhash.kafka.topics import topic_plan
    from dqhash.tools.bench.baselines import written_topics

    settings = settings_module.load({"DQHASH_APP_ID": "bench-topics"})
    written = written_topics(settings)
    assert settings.onprem_topic not in written and settings.cloud_topic not in written
    assert {settings.audit_topic, settings.repair_topic, settings.dlq_topic, "bench-topics-pairs-changelog"} <= set(
        written
    )
    assert len(written) == len(topic_plan(settings)) - 2


def test_the_held_keys_bench_reads_the_records_each_recovery_restored_from_the_worker_log():
    from dqhash.tools.bench.held import restored_from_log

    log = (
        "[2026-12-06 10:00:00,000] [1] [INFO] restored 1,200 changelog records in 0.4 s (3,000 a second)\n"
        "... rebalance ...\n"
        "[2026-12-06 10:00:09,000] [1] [INFO] restored 300 changelog records in 0.1 s (3,000 a second)\n"
    )
    assert restored_from_log(log) == (1_500, 0.5)
    assert restored_from_log("no recovery was needed\n") == (0, 0.0)


def test_the_held_keys_bench_measures_a_data_dir_on_disk(tmp_path):
    from dqhash.tools.bench.held import directory_mb

    (tmp_path / "db" / "0").mkdir(parents=True)
    (tmp_path / "db" / "0" / "000001.sst").write_bytes(b"x" * 3_000_000)
    (tmp_path / "LOCK").write_bytes(b"")
    assert 3.0 <= directory_mb(tmp_path) < 3.1
    assert directory_mb(tmp_path / "missing") == 0


@pytest.mark.asyncio  # the consumer it reads with is made on a running loop (never started here)
async def test_the_bench_times_the_backlog_applied_apart_from_the_last_problem_verdicts_deadline():
    """A MATCH or a SKIPPED_DELETE is given as its input is applied; a MISMATCH or a MISSING_CLOUD waits for its
    deadline and for the inputs to be read past it, so the backlog's last ones come a fixed wait later."""
    from dqhash.tools.bench.pipeline import AuditWatch

    watch = AuditWatch({"bootstrap_servers": "127.0.0.1:9"}, "audit", b"lat-")
    verdicts = [("MATCH", 1_000), ("MISSING_CLOUD", 1_500), ("SKIPPED_DELETE", 2_000), ("MISMATCH", 2_400)]
    verdicts += [("MISSING_CLOUD", 3_000), ("MISMATCH", 3_200)]
    for status, at in verdicts:
        watch.saw(b"pk", orjson.dumps({"status": status}), at)
    watch.saw(b"lat-7", orjson.dumps({"status": "MATCH"}), 9_000)  # the latency phase's: timed apart
    assert (watch.count, watch.first_ms, watch.prompt_last_ms, watch.last_ms) == (6, 1_000, 2_000, 3_200)
    assert watch.latency_audit_ms == {b"lat-7": 9_000}


def test_the_instruction_workloads_match_every_pair_and_row_they_run():
    from dqhash.tools.bench import instructions

    runs = instructions.workloads(300)
    assert set(runs) == set(instructions.WORKLOADS)
    for run in runs.values():
        run()  # each checks its own verdicts: 300 MATCHes, or it raises


def test_an_instruction_workload_that_matches_nothing_is_refused(monkeypatch):
    from dqhash.tools.bench import instructions

    made = instructions.snapshot_records

    def mismatched(n):  # a scan that read other values than the publish
        (source, cloud), onprem = made(n)
        return [(source, [orjson.dumps({**orjson.loads(v), "hash_cloud": "0" * 64}) for v in cloud]), onprem]

    monkeypatch.setattr(instructions, "snapshot_records", mismatched)
    with pytest.raises(RuntimeError, match="snapshot workload matched 0 of 200 pairs"):
        instructions.workloads(200)["snapshot"]()


def test_valgrinds_instruction_count_is_read_from_its_summary():
    from dqhash.tools.bench.instructions import refs

    assert refs("==12== Collected : 4870988782\n==12== \n==12== I   refs:      4,870,988,782\n") == 4_870_988_782
    with pytest.raises(RuntimeError, match="no instruction count"):
        refs("valgrind: command not found")


def test_counting_instructions_without_valgrind_says_how_to_get_it(monkeypatch, capsys):
    from dqhash.cli import main
    from dqhash.cli.common import EXIT_USAGE

    monkeypatch.setattr("shutil.which", lambda name: None)
    assert main(["bench-domain", "--instructions", "--records", "100"]) == EXIT_USAGE
    assert "apt-get install valgrind" in capsys.readouterr().err


@pytest.mark.slow
def test_instructions_are_counted_under_valgrind_for_each_workload():
    import shutil

    from dqhash.tools.bench import instructions

    if shutil.which("valgrind") is None:
        pytest.skip("valgrind is not installed here: the instruction count cannot be taken")
    figures = instructions.run(100)
    assert figures["setup_instructions"] > 0
    # a snapshot record carries column digests and a run's book; every record costs more than the floor's
    assert figures["instructions_per_snapshot_record"] > figures["instructions_per_streaming_record"]
    assert figures["instructions_per_streaming_record"] > figures["floor_instructions_per_record"] > 0
