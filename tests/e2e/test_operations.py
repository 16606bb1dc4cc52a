"""Operator-facing commands: bad settings at start-up, topic creation, the broker command."""

import subprocess
import sys

import pytest

from dqhash.kafka.embedded_broker import EmbeddedBroker, free_port
from dqhash.tools.runner import clean_env

pytestmark = pytest.mark.e2e


def test_worker_refuses_to_start_on_a_bad_setting_and_names_it():
    env = {**clean_env(), "DQHASH_PARTITIONS": "zero"}
    result = subprocess.run(
        [sys.executable, "-m", "faust", "-A", "dqhash.app", "worker"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "DQHASH_PARTITIONS='zero' is invalid" in result.stderr


def run_worker(env: dict) -> subprocess.CompletedProcess:
    """A worker as `faust -A dqhash.app worker` starts it, to its exit (these tests expect it to refuse)."""
    return subprocess.run(
        [sys.executable, "-m", "faust", "-A", "dqhash.app", "worker", "-l", "warn"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def dqhash(*args, env):
    return subprocess.run(
        [sys.executable, "-m", "dqhash.cli", *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_topics_create_is_idempotent_and_refuses_a_partition_mismatch(pipeline):
    env = {
        **clean_env(),
        "DQHASH_BROKER": pipeline.settings.broker,
        "DQHASH_APP_ID": "ops-check",
        "DQHASH_ONPREM_TOPIC": "ops-topic1",
        "DQHASH_CLOUD_TOPIC": "ops-topic2",
        "DQHASH_AUDIT_TOPIC": "ops-audit",
        "DQHASH_METRICS_TOPIC": "ops-metrics",
        "DQHASH_DLQ_TOPIC": "ops-dlq",
        "DQHASH_PARTITIONS": "3",
    }
    first = dqhash("topics", "create", env=env)
    assert first.returncode == 0, first.stderr
    assert "created  ops-topic1" in first.stdout and "ops-check-pairs-changelog" in first.stdout
    second = dqhash("topics", "create", env=env)
    assert second.returncode == 0 and "created" not in second.stdout and "exists   ops-topic1" in second.stdout
    mismatch = dqhash("topics", "create", env={**env, "DQHASH_PARTITIONS": "5"})
    assert mismatch.returncode == 2
    assert "ops-topic1 has 3 partitions, needs 5" in mismatch.stderr and "DQHASH_PARTITIONS" in mismatch.stderr


def test_topics_create_says_what_to_do_when_the_broker_is_unreachable():
    env = {**clean_env(), "DQHASH_BROKER": f"kafka://127.0.0.1:{free_port()}"}
    result = dqhash("topics", "create", env=env)
    assert result.returncode == 1 and "is DQHASH_BROKER right?" in result.stderr


def test_broker_command_prints_its_url_and_serves_kafka():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "dqhash.cli", "broker", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    try:
        line = process.stdout.readline()  # blocks until the broker listens (or the command fails)
        assert f"DQHASH_BROKER=tansu://127.0.0.1:{port}" in line, process.stderr.read() if process.poll() else line
        env = {**clean_env(), "DQHASH_BROKER": f"tansu://127.0.0.1:{port}", "DQHASH_PARTITIONS": "2"}
        assert dqhash("topics", "create", env=env).returncode == 0
    finally:
        process.terminate()
        process.wait(timeout=15)
    orphans = subprocess.run(["pgrep", "-f", f"tcp://127.0.0.1:{port}"], capture_output=True, text=True).stdout
    assert not orphans.strip(), f"the broker outlived `dqhash broker` after SIGTERM: pids {orphans.split()}"


def test_producer_refuses_to_start_with_a_store_it_cannot_use(tmp_path):
    from dqhash.kafka.embedded_broker import EmbeddedBroker

    with EmbeddedBroker(log_path=tmp_path / "broker.log") as broker:
        env = {
            **clean_env(),
            "DQHASH_BROKER": broker.url,
            "DQHASH_ROLE": "producer",
            "DQHASH_CLOUD_STORE": "sqlite",
            "DQHASH_SQLITE_PATH": str(tmp_path / "missing.db"),
            "DQHASH_WEB_PORT": str(free_port()),
            "DQHASH_SESSION_TIMEOUT": "6",
            "DQHASH_DATA_DIR": str(tmp_path / "data"),
        }
        result = run_worker(env)
    assert result.returncode != 0
    assert (
        f"the cloud hash producer cannot start: DQHASH_SQLITE_PATH={tmp_path / 'missing.db'} does not exist"
        in result.stderr
    )


def test_starting_the_embedded_broker_twice_runs_one_broker():
    with EmbeddedBroker().start() as broker:  # ``__enter__`` starts it again
        first = broker.process
        assert broker.start().process is first and first.poll() is None
    assert first.poll() is not None, "the broker must be stopped on leaving the block"


def _create_topic(broker_url: str, name: str, partitions: int, configs: dict | None = None) -> None:
    import asyncio

    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    async def create() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=broker_url.split("://", 1)[1])
        await admin.start()
        try:
            await admin.create_topics([NewTopic(name, partitions, 1, topic_configs=configs or {})])
        finally:
            await admin.close()

    asyncio.run(create())


def test_a_worker_refuses_to_start_on_an_input_topic_with_another_partition_count(tmp_path):
    """Topic-1 made by someone else with 2 partitions, DQHASH_PARTITIONS=4: the worker says so and exits, instead
    of running for minutes pairing nothing."""
    with EmbeddedBroker(log_path=tmp_path / "broker.log") as broker:
        _create_topic(broker.url, "preflight-topic1", 2)
        env = {
            **clean_env(),
            "DQHASH_BROKER": broker.url,
            "DQHASH_APP_ID": "preflight",
            "DQHASH_ONPREM_TOPIC": "preflight-topic1",
            "DQHASH_PARTITIONS": "4",
            "DQHASH_WEB_PORT": str(free_port()),
            "DQHASH_SESSION_TIMEOUT": "6",
            "DQHASH_DATA_DIR": str(tmp_path / "data"),
            "DQHASH_METRICS_ENABLED": "false",
        }
        result = run_worker(env)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "refusing to start" in result.stderr and "preflight-topic1 has 2 partitions, needs 4" in result.stderr
    assert "DQHASH_PARTITIONS" in result.stderr and "Traceback" not in result.stderr


def test_topics_create_verifies_everything_before_creating_anything(tmp_path):
    """A compacted topic (triage) made without compaction: refused, and no other topic is created meanwhile."""
    import asyncio

    from aiokafka.admin import AIOKafkaAdminClient

    with EmbeddedBroker(log_path=tmp_path / "broker.log") as broker:
        _create_topic(broker.url, "verify-triage", 1, {"cleanup.policy": "delete"})
        env = {
            **clean_env(),
            "DQHASH_BROKER": broker.url,
            "DQHASH_APP_ID": "verify",
            "DQHASH_TRIAGE_TOPIC": "verify-triage",
            "DQHASH_ONPREM_TOPIC": "verify-topic1",
        }
        result = dqhash("topics", "create", env=env)

        async def topics() -> set[str]:
            admin = AIOKafkaAdminClient(bootstrap_servers=broker.url.split("://", 1)[1])
            await admin.start()
            try:
                return set(await admin.list_topics())
            finally:
                await admin.close()

        existing = asyncio.run(topics())
    assert result.returncode == 2, result.stderr
    assert "verify-triage has cleanup.policy=delete, needs compact" in result.stderr
    assert "verify-topic1" not in existing, "nothing is created while an existing topic is wrong"


def test_tail_prints_a_verdict_and_a_dead_letter_as_json_lines_and_follows_new_ones(pipeline):
    import json
    import select

    from tests.e2e.conftest import cloud, h, onprem

    pk = pipeline.pk()
    pipeline.send_onprem(onprem(pk, h(pk)))
    pipeline.send_cloud(cloud(pk, h(pk)))
    pipeline.wait_audit(pk)
    marker = pipeline.pk()
    pipeline.send_onprem((marker.encode(), b"{broken"))
    pipeline.wait_dlq(lambda key, value, headers: key == marker.encode())
    env = {**clean_env(), **{k: v for k, v in pipeline.env.items() if k.startswith("DQHASH_")}}

    audit = dqhash("tail", "audit", "--pk", pk, env=env)
    assert audit.returncode == 0, audit.stderr
    lines = [json.loads(text) for text in audit.stdout.splitlines()]
    assert [(doc["pk"], doc["status"]) for doc in lines] == [(pk, "MATCH")]
    assert {"_partition", "_offset", "audit_id"} <= set(lines[0])

    dlq = dqhash("tail", "dlq", "--status", "INVALID_JSON", env=env)
    assert dlq.returncode == 0, dlq.stderr
    assert marker in [json.loads(text)["key"] for text in dlq.stdout.splitlines()]

    later = pipeline.pk()
    follow = subprocess.Popen(
        [sys.executable, "-m", "dqhash.cli", "tail", "audit", "--follow", "--since", "1s", "--pk", later],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        pipeline.send_onprem(onprem(later, h(later), action="DELETE"))
        ready, _, _ = select.select([follow.stdout], [], [], 60)
        assert ready, "dqhash tail --follow printed nothing within 60 s of a new verdict"
        assert json.loads(follow.stdout.readline())["pk"] == later
    finally:
        follow.terminate()
        follow.wait(timeout=15)
    assert follow.returncode == 0, "Ctrl-C or SIGTERM ends --follow quietly"


def test_a_worker_refuses_a_web_port_in_use_and_names_the_setting(tmp_path):
    import socket

    taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    taken.bind(("0.0.0.0", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        with EmbeddedBroker(log_path=tmp_path / "broker.log") as broker:
            env = {
                **clean_env(),
                "DQHASH_BROKER": broker.url,
                "DQHASH_WEB_PORT": str(port),
                "DQHASH_DATA_DIR": str(tmp_path / "data"),
                "DQHASH_METRICS_ENABLED": "false",
            }
            result = run_worker(env)
    finally:
        taken.close()
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"port {port} on 0.0.0.0 is in use" in result.stderr and "DQHASH_WEB_PORT" in result.stderr
    assert "Traceback" not in result.stderr


def test_snapshot_commands_name_the_setting_to_check_instead_of_a_traceback(tmp_path):
    export = tmp_path / "export.jsonl"
    export.write_text('{"id": 1, "name": "a"}\n')
    env = {**clean_env(), "DQHASH_BROKER": f"kafka://127.0.0.1:{free_port()}"}
    published = subprocess.run(
        [sys.executable, "-m", "dqhash.cli", "snapshot", "publish", str(export), "--snapshot-id", "s1"]
        + ["--key-columns", "id"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert published.returncode == 1 and "is DQHASH_BROKER right" in published.stderr, published.stderr
    assert "Traceback" not in published.stderr and "Unclosed" not in published.stderr
    scanned = subprocess.run(
        [sys.executable, "-m", "dqhash.cli", "snapshot", "scan", "--snapshot-id", "s1"],
        env={**env, "DQHASH_CASSANDRA_CONTACT_POINTS": "127.0.0.1", "DQHASH_CASSANDRA_PORT": str(free_port())},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert scanned.returncode == 1, scanned.stderr
    assert "DQHASH_CASSANDRA_CONTACT_POINTS" in scanned.stderr and "DQHASH_CLOUD_STORE" in scanned.stderr
    assert "Traceback" not in scanned.stderr
