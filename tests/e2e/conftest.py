"""A broker + real worker processes for the e2e tests (short windows), on either test broker.

``--broker`` picks the brokers the suite runs on (default: both): ``embedded`` is Tansu, through the
``tansu://`` transport; ``mock`` is librdkafka's mock cluster (``tests/e2e/mock_cluster.py``), through
``kafka://``, the path real clusters use, with Faust's stock recovery and fault injection. A test takes
the ``broker`` fixture to run on each; tests of what only one broker can do (TLS through a proxy, a cut
connection) run on the embedded broker, and the fault tests on the mock.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
import ssl
import subprocess
import threading
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import orjson
import pytest

from dqhash import settings as settings_module
from dqhash.core.timeutil import now_ms
from dqhash.kafka.embedded_broker import EmbeddedBroker, free_port
from dqhash.kafka.security import connect_args
from dqhash.kafka.topics import create_topics
from dqhash.tools.runner import (
    OutputReader,
    local_worker_env,
    produce,
    start_worker,
    stop_worker,
)
from tests.e2e.mock_cluster import MockCluster

WINDOW_S, GRACE_S = 2, 2
BROKERS = ("embedded", "mock")


def pytest_generate_tests(metafunc):
    if "broker" in metafunc.fixturenames:
        chosen = metafunc.config.getoption("--broker")
        metafunc.parametrize("broker", BROKERS if chosen == "both" else (chosen,), scope="session")


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
            except TimeoutError:
                continue

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


class Pipeline:
    """Drives the running worker: send records, wait for outputs (bounded, with clear failures)."""

    def __init__(self, loop, settings, reader: OutputReader, workdir: Path, statsd: StatsdListener) -> None:
        self.loop, self.settings, self.reader, self.workdir, self.statsd = loop, settings, reader, workdir, statsd
        self.workers: list = []  # worker processes, in start order
        self.envs: list[dict] = []  # their environments (own data dir, web port, log)
        self.proxy = None  # the TcpProxy clients reach the broker through, when asked for
        self.cluster: MockCluster | None = None  # the mock cluster, for fault injection

    @property
    def worker(self):
        return self.workers[0]

    @property
    def env(self) -> dict:
        return self.envs[0]

    def log_path(self, index: int = 0) -> Path:
        return self.workdir / ("worker.log" if index == 0 else f"worker-{index}.log")

    def start_worker(self, env: dict) -> int:
        index = len(self.workers)
        if index:
            env = {**env, "DQHASH_DATA_DIR": str(self.workdir / f"data-{index}"), "DQHASH_WEB_PORT": str(free_port())}
        self.envs.append(env)
        self.workers.append(start_worker(env, self.log_path(index)))
        return index

    def run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(600)  # waits inside are bounded themselves

    @staticmethod
    def pk() -> str:
        return f"pk-{uuid.uuid4().hex[:12]}"

    def send_onprem(self, *records):
        self.run(produce(connect_args(self.settings), self.settings.onprem_topic, records))

    def send_cloud(self, *records):
        self.run(produce(connect_args(self.settings), self.settings.cloud_topic, records))

    def audits_for(self, pk: str) -> list[dict]:
        return [r for r in list(self.reader.outputs.audit_records) if r["pk"] == pk]

    def wait_audit(self, pk: str, count: int = 1, timeout_s: float = 30.0) -> list[dict]:
        self._wait(
            lambda out: len(self.audits_for(pk)) >= count,
            timeout_s,
            lambda out: f"{count} audit record(s) for {pk}; have {self.audits_for(pk)}",
        )
        return self.audits_for(pk)

    def wait_dlq(self, predicate, timeout_s: float = 30.0):
        self._wait(
            lambda out: any(predicate(*r) for r in list(out.dlq_records)),
            timeout_s,
            lambda out: f"a matching DLQ record; have {[r[2].get('dq.error.reason') for r in out.dlq_records]}",
        )
        return next(r for r in list(self.reader.outputs.dlq_records) if predicate(*r))

    def window_counts(self) -> Counter:
        total = Counter()
        for window in list(self.reader.outputs.windows.values()):
            total.update(window["counts"])
        return total

    def wait_window_count(self, key: str, at_least: int, timeout_s: float = 30.0) -> None:
        self._wait(
            lambda out: self.window_counts()[key] >= at_least,
            timeout_s,
            lambda out: f"window count {key} >= {at_least}; have {dict(self.window_counts())}",
        )

    def restart_worker(self, wipe_state: bool) -> None:
        """SIGTERM the worker, optionally delete its local RocksDB state, start it again."""
        import shutil

        code = stop_worker(self.worker)
        assert code == 0, f"the worker did not stop cleanly (exit {code}); log: {self.log_path()}"
        if wipe_state:
            shutil.rmtree(self.settings.data_dir, ignore_errors=True)
        self.workers[0] = start_worker(self.env, self.log_path())

    def wait_statsd(self, predicate, timeout_s: float = 10.0) -> str:
        """The first DogStatsD line the worker sent that satisfies ``predicate``."""

        def found(_):
            return any(predicate(line) for line in list(self.statsd.lines))

        self._wait(found, timeout_s, lambda _: f"a matching DogStatsD line; last: {self.statsd.lines[-5:]}")
        return next(line for line in list(self.statsd.lines) if predicate(line))

    def _wait(self, condition, timeout_s, describe):
        self.check_alive()
        self.run(self.reader.wait_for(condition, timeout_s, describe))

    def wait_web(self, index: int = 0, timeout_s: float = 90.0) -> None:
        """Until worker ``index`` has its partitions: a pk's view answers (404 for a pk never seen, 400 when the
        catalog wants a table named) rather than refusing the connection (no web server yet) or 503 (assigning,
        recovering)."""
        import urllib.error
        import urllib.request

        url = f"http://127.0.0.1:{self.envs[index]['DQHASH_WEB_PORT']}/dq/pairs/readiness-probe"
        deadline = time.monotonic() + timeout_s
        while True:
            self.check_alive(index)
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except urllib.error.HTTPError as error:
                if error.code in (400, 404):  # 400: a catalog without a default table wants ?table= (not busy)
                    return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"worker {index}'s web server did not answer {url} within {timeout_s:.0f}s")
            time.sleep(0.2)  # polling another process's port: there is no event to await

    def check_alive(self, *indexes: int) -> None:
        for i in indexes or range(len(self.workers)):
            if self.workers[i].poll() is not None:
                pytest.fail(f"worker {i} died (exit {self.workers[i].returncode}); log: {self.log_path(i)}")


@contextmanager
def running_pipeline(
    workdir: Path,
    prefix: str,
    workers: int = 1,
    proxy: bool = False,
    tls: bool = False,
    scheme: str | None = None,
    broker: str = "embedded",
    sasl: tuple[str, str, str] | None = None,
    extra_topics: tuple[str, ...] = (),
    **settings,
):
    """Broker + topics + ``workers`` workers + output reader, torn down on exit.

    ``proxy``: every client reaches the broker through a TcpProxy (``Pipeline.proxy``) that a test
    can cut and restore, as a network outage would. ``tls``: that proxy speaks TLS only, with a
    self-signed certificate, and every client is configured for it (DQHASH_KAFKA_SECURITY_PROTOCOL=SSL).
    ``sasl``: (mechanism, user, password) the mock's relays require, and every client is configured with.
    ``extra_topics``: topics of other systems (a Debezium connector's) created before the workers start.
    ``scheme``: the transport the workers use (``tansu://`` or ``kafka://``, the one real clusters use); by
    default the broker's own. ``broker``: ``embedded`` (Tansu) or ``mock`` (librdkafka's mock cluster).
    """
    if broker == "mock" and (proxy or tls):
        raise ValueError("the proxy and TLS run in front of the embedded broker only")
    if sasl and broker != "mock":
        raise ValueError("SASL (mechanism, user, password) is served by the mock cluster's relays only")
    if sasl:
        mechanism, user, password = sasl
        settings = {
            **settings,
            "DQHASH_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "DQHASH_KAFKA_SASL_MECHANISM": mechanism,
            "DQHASH_KAFKA_USERNAME": user,
            "DQHASH_KAFKA_PASSWORD": password,
        }
    workdir.mkdir(parents=True, exist_ok=True)
    server_tls = None
    if tls:
        proxy = True
        certificate, key = self_signed_certificate(workdir)
        server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_tls.load_cert_chain(certificate, key)
        settings = {**settings, "DQHASH_KAFKA_SECURITY_PROTOCOL": "SSL", "DQHASH_KAFKA_SSL_CA": str(certificate)}
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    cluster = embedded = None
    if broker == "mock":
        cluster = asyncio.run_coroutine_threadsafe(MockCluster(sasl=sasl).start(), loop).result(30)
        url = ",".join(f"{scheme or 'kafka'}://{address}" for address in cluster.bootstrap.split(","))
    else:
        broker_port = free_port()
        advertised = free_port() if proxy else broker_port
        embedded = EmbeddedBroker(port=broker_port, advertised_port=advertised, log_path=workdir / "broker.log").start()
        url = embedded.url.replace("tansu://", f"{scheme or 'tansu'}://", 1)
    tcp_proxy = None
    if proxy:
        tcp_proxy = asyncio.run_coroutine_threadsafe(
            TcpProxy(advertised, broker_port, server_tls).start(), loop
        ).result(10)
    statsd = StatsdListener()
    env = local_worker_env(url, workdir, prefix, WINDOW_S, GRACE_S, 0.2, statsd.port, DD_ENV="e2e", **settings)
    config = settings_module.load(env)
    reader = running = None
    try:
        asyncio.run_coroutine_threadsafe(create_topics(config), loop).result(60)
        if extra_topics:
            asyncio.run_coroutine_threadsafe(create_other_topics(config, extra_topics), loop).result(60)
        reader = asyncio.run_coroutine_threadsafe(
            OutputReader(
                connect_args(config),
                config.audit_topic,
                config.dlq_topic,
                config.metrics_topic,
                config.repair_topic,
                config.cloud_topic,
            ).start(),
            loop,
        ).result(60)
        running = Pipeline(loop, config, reader, workdir, statsd)
        running.proxy, running.cluster = tcp_proxy, cluster
        for _ in range(workers):
            running.start_worker(env)
        for index in range(workers):
            running.wait_web(index)
        yield running
    finally:  # every step runs even if an earlier one fails: no orphaned worker or broker
        with contextlib.ExitStack() as teardown:  # callbacks run last-registered first
            teardown.callback(loop.call_soon_threadsafe, loop.stop)
            teardown.callback(statsd.close)
            if embedded:
                teardown.callback(embedded.stop)
            if cluster:
                teardown.callback(lambda: asyncio.run_coroutine_threadsafe(cluster.stop(), loop).result(30))
            if tcp_proxy:
                teardown.callback(lambda: asyncio.run_coroutine_threadsafe(tcp_proxy.close(), loop).result(10))
            for worker in running.workers if running else ():  # restarted ones too, even after a failure
                teardown.callback(stop_worker, worker)
            if reader:
                teardown.callback(lambda: asyncio.run_coroutine_threadsafe(reader.stop(), loop).result(30))


async def create_other_topics(config, names) -> None:
    """Topics another system owns (a Debezium connector's change topics), of one partition each: Debezium's
    default, a table's changes in one ordered stream."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(**connect_args(config))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 1, 1) for name in names])
    finally:
        await admin.close()


@contextmanager
def sqlite_pipeline(workdir: Path, prefix: str, broker: str, **settings):
    """A pipeline whose cloud hash producer reads a SQLite table ``rows (id, name)``: ``cloud_db`` (a connection)
    and ``db_path`` on the pipeline let a test play the cloud copy."""
    import sqlite3

    workdir.mkdir(parents=True, exist_ok=True)
    db = workdir / "cloud.db"
    connection = sqlite3.connect(db, check_same_thread=False)
    connection.execute("CREATE TABLE rows (id TEXT PRIMARY KEY, name TEXT)")
    connection.commit()
    try:
        with running_pipeline(
            workdir,
            prefix,
            broker=broker,
            DQHASH_LOOKUPS="true",
            DQHASH_CLOUD_STORE="sqlite",
            DQHASH_SQLITE_PATH=db,
            DQHASH_SQLITE_TABLE="rows",
            DQHASH_SQLITE_KEY_COLUMNS="id",
            DQHASH_HASH_COLUMNS="id,name",
            **settings,
        ) as running:
            running.cloud_db, running.db_path = connection, db
            yield running
    finally:
        connection.close()


#: Secrets the session's worker is given; tests/e2e/test_web.py checks they never come out.
WEB_TOKEN = "tok-" + uuid.uuid4().hex
CASSANDRA_PASSWORD = "pw-" + uuid.uuid4().hex


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory, broker):
    """A worker fed Topic-2 directly (an external cloud pipeline), one per broker."""
    secrets = {"DQHASH_WEB_TOKEN": WEB_TOKEN, "DQHASH_CASSANDRA_PASSWORD": CASSANDRA_PASSWORD}
    with running_pipeline(tmp_path_factory.mktemp(f"e2e-{broker}"), "e2e", broker=broker, **secrets) as running:
        yield running


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made by openssl (Debian has it; so does every CI image)."""
    certificate, key = folder / "broker-cert.pem", folder / "broker-key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(certificate)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return certificate, key


class TcpProxy:
    """A loopback TCP relay in front of the broker: ``cut()`` drops every connection and refuses new
    ones (a network outage), ``restore()`` listens again on the same port."""

    def __init__(self, listen_port: int, target_port: int, tls: ssl.SSLContext | None = None) -> None:
        self.listen_port, self.target_port, self.tls = listen_port, target_port, tls
        self.server = None
        self.connections: set = set()

    async def start(self) -> TcpProxy:
        self.server = await asyncio.start_server(
            self._serve, "127.0.0.1", self.listen_port, reuse_address=True, ssl=self.tls
        )
        return self

    async def _serve(self, reader, writer) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        pair = (writer, upstream_writer)
        self.connections.add(pair)

        async def pipe(src, dst):
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))
        self.connections.discard(pair)

    async def cut(self) -> None:
        self.server.close()
        for client, upstream in list(self.connections):
            client.transport.abort()
            upstream.transport.abort()
        self.connections.clear()
        await self.server.wait_closed()

    async def restore(self) -> None:
        await self.start()

    async def close(self) -> None:
        if self.server is not None:
            await self.cut()


def h(text: str) -> str:
    """The SHA-256 hex digest the tests use as a row hash."""
    return hashlib.sha256(text.encode()).hexdigest()


def onprem(pk, digest, event_id=None, action="UPDATE", ts=None, **extra):
    doc = {
        "event_id": event_id or f"ev-{uuid.uuid4().hex[:10]}",
        "hash_onprem": digest,
        "partitionColumns": [{"type": "PK", "value": pk}],
        "event_ts": ts or now_ms(),
        "action": action,
        **extra,
    }
    return pk.encode(), orjson.dumps({k: v for k, v in doc.items() if v is not None})


def cloud(pk, digest, ts=None):
    return pk.encode(), orjson.dumps({"pk": pk, "hash_cloud": digest, "cloud_ts": ts or now_ms() + 1})
