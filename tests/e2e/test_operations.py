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
        result = subprocess.run(
            [sys.executable, "-m", "faust", "-A", "dqhash.app", "worker", "-l", "warn"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
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
