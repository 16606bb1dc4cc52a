"""One embedded broker + one real worker process for the e2e tests (short windows)."""

from __future__ import annotations

import asyncio
import socket
import threading
import uuid
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import orjson
import pytest

from dqhash import settings as settings_module
from dqhash.broker import EmbeddedBroker, free_port
from dqhash.runner import OutputReader, clean_env, demo_topic_settings, produce, start_worker, stop_worker, worker_env
from dqhash.timeutil import now_ms
from dqhash.topics import create_topics

WINDOW_S, GRACE_S = 2, 2


class StatsdListener:
    """A stand-in DataDog agent on loopback UDP, collecting DogStatsD lines in a thread."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.lines: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.lines.extend(self.sock.recv(65536).decode().splitlines())
            except socket.timeout:
                continue

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


class Pipeline:
    """Drives the running worker: send records, wait for outputs (bounded, with clear failures)."""

    def __init__(self, loop, settings, reader: OutputReader, workdir: Path, statsd: StatsdListener, worker) -> None:
        self.loop, self.settings, self.reader, self.workdir, self.statsd, self.worker = (
            loop, settings, reader, workdir, statsd, worker)

    def run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(120)

    @staticmethod
    def pk() -> str:
        return f"pk-{uuid.uuid4().hex[:12]}"

    def send_onprem(self, *records):
        self.run(produce(self.settings.bootstrap_servers, self.settings.onprem_topic, records))

    def send_cloud(self, *records):
        self.run(produce(self.settings.bootstrap_servers, self.settings.cloud_topic, records))

    def audits_for(self, pk: str) -> list[dict]:
        return [r for r in list(self.reader.outputs.audit_records) if r["pk"] == pk]

    def wait_audit(self, pk: str, count: int = 1, timeout_s: float = 30.0) -> list[dict]:
        self._wait(lambda out: len(self.audits_for(pk)) >= count, timeout_s,
                   lambda out: f"{count} audit record(s) for {pk}; have {self.audits_for(pk)}")
        return self.audits_for(pk)

    def wait_dlq(self, predicate, timeout_s: float = 30.0):
        self._wait(lambda out: any(predicate(*r) for r in list(out.dlq_records)), timeout_s,
                   lambda out: f"a matching DLQ record; have {[r[2].get('dq.error.reason') for r in out.dlq_records]}")
        return next(r for r in list(self.reader.outputs.dlq_records) if predicate(*r))

    def window_counts(self) -> Counter:
        total = Counter()
        for window in list(self.reader.outputs.windows.values()):
            total.update(window["counts"])
        return total

    def wait_window_count(self, key: str, at_least: int, timeout_s: float = 30.0) -> None:
        self._wait(lambda out: self.window_counts()[key] >= at_least, timeout_s,
                   lambda out: f"window count {key} >= {at_least}; have {dict(self.window_counts())}")

    def restart_worker(self, wipe_state: bool) -> None:
        """SIGTERM the worker, optionally delete its local RocksDB state, start it again."""
        import shutil
        code = stop_worker(self.worker)
        assert code == 0, f"the worker did not stop cleanly (exit {code}); log: {self.workdir / 'worker.log'}"
        if wipe_state:
            shutil.rmtree(self.settings.data_dir, ignore_errors=True)
        self.worker = start_worker(self.env, self.workdir / "worker.log")

    def wait_statsd(self, predicate, timeout_s: float = 10.0) -> str:
        """The first DogStatsD line the worker sent that satisfies ``predicate``."""
        def found(_):
            return any(predicate(line) for line in list(self.statsd.lines))
        self._wait(found, timeout_s, lambda _: f"a matching DogStatsD line; last: {self.statsd.lines[-5:]}")
        return next(line for line in list(self.statsd.lines) if predicate(line))

    def _wait(self, condition, timeout_s, describe):
        if self.worker.poll() is not None:
            pytest.fail(f"the worker died (exit {self.worker.returncode}); log: {self.workdir / 'worker.log'}")
        self.run(self.reader.wait_for(condition, timeout_s, describe))


@contextmanager
def running_pipeline(workdir: Path, prefix: str, **settings):
    """Broker + topics + one worker + output reader, torn down on exit."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    broker = EmbeddedBroker(log_path=workdir / "broker.log").start()
    statsd = StatsdListener()
    env = worker_env(
        clean_env(), DQHASH_BROKER=broker.url, DQHASH_DATA_DIR=workdir / "data", DQHASH_WEB_PORT=free_port(),
        DQHASH_WEB_HOST="127.0.0.1", DQHASH_SESSION_TIMEOUT=6, DQHASH_WINDOW_SECONDS=WINDOW_S,
        DQHASH_GRACE_SECONDS=GRACE_S, DQHASH_TICK_SECONDS=0.2, DD_AGENT_HOST="127.0.0.1",
        DD_DOGSTATSD_PORT=statsd.port, DD_ENV="e2e", **demo_topic_settings(prefix), **settings,
    )
    config = settings_module.load(env)
    worker = reader = running = None
    try:
        asyncio.run_coroutine_threadsafe(create_topics(config), loop).result(60)
        worker = start_worker(env, workdir / "worker.log")
        reader = asyncio.run_coroutine_threadsafe(
            OutputReader(config.bootstrap_servers, config.audit_topic, config.dlq_topic, config.metrics_topic,
                         config.repair_topic, config.cloud_topic).start(), loop).result(60)
        running = Pipeline(loop, config, reader, workdir, statsd, worker)
        running.env = env
        yield running
    finally:
        if running is not None:
            worker = running.worker  # the test may have restarted it; stop that one too, even after a failure
        if reader:
            asyncio.run_coroutine_threadsafe(reader.stop(), loop).result(30)
        if worker:
            stop_worker(worker)
        broker.stop()
        statsd.close()
        loop.call_soon_threadsafe(loop.stop)


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory):
    """A worker fed Topic-2 directly (an external cloud pipeline)."""
    with running_pipeline(tmp_path_factory.mktemp("e2e"), "e2e") as running:
        yield running


def onprem(pk, digest, event_id=None, action="UPDATE", ts=None, **extra):
    doc = {"event_id": event_id or f"ev-{uuid.uuid4().hex[:10]}", "hash_onprem": digest,
           "partitionColumns": [{"type": "PK", "value": pk}], "event_ts": ts or now_ms(), "action": action, **extra}
    return pk.encode(), orjson.dumps({k: v for k, v in doc.items() if v is not None})


def cloud(pk, digest, ts=None):
    return pk.encode(), orjson.dumps({"pk": pk, "hash_cloud": digest, "cloud_ts": ts or now_ms() + 1})
