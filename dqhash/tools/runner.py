"""Running dqhash against a broker from a driver process: workers, producers, output readers.

Shared by ``dqhash demo``, the benchmark and the end-to-end tests, so all three
exercise the product the way an operator runs it: ``faust -A dqhash.app worker``
in its own process, configured only through environment variables.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from dqhash.core.outputs import DLQ_REASON
from dqhash.kafka.embedded_broker import free_port
from dqhash.ops.memory import ARENA_MAX
from dqhash.tools.workload import Record


def worker_env(base: Mapping[str, str], **settings: object) -> dict[str, str]:
    """The environment for a worker: ``base`` plus DQHASH_*/DD_* overrides."""
    env = dict(base)
    env.update({name: str(value) for name, value in settings.items()})
    return env


def local_worker_env(
    broker_url: str,
    workdir: Path,
    prefix: str,
    window_s: float,
    grace_s: float,
    tick_s: float,
    dogstatsd_port: int,
    **settings: object,
) -> dict[str, str]:
    """A worker on this machine (demo, bench, e2e): its own data dir and web port on loopback, a quick group
    join, short windows, DogStatsD on loopback, topics of its own run; ``settings`` add to or override these."""
    defaults: dict[str, object] = {
        "DQHASH_BROKER": broker_url,
        "DQHASH_DATA_DIR": workdir / "data",
        "DQHASH_WEB_PORT": free_port(),
        "DQHASH_WEB_HOST": "127.0.0.1",
        "DQHASH_WEB_BIND": "127.0.0.1",  # local replicas reach each other on loopback; nothing else can
        "DQHASH_SESSION_TIMEOUT": 6,
        "DQHASH_WINDOW_SECONDS": window_s,
        "DQHASH_GRACE_SECONDS": grace_s,
        "DQHASH_TICK_SECONDS": tick_s,
        "MALLOC_ARENA_MAX": ARENA_MAX,  # glibc reads it at start (dqhash.ops.memory)
        "DD_AGENT_HOST": "127.0.0.1",
        "DD_DOGSTATSD_PORT": dogstatsd_port,
        **demo_topic_settings(prefix),
    }
    return worker_env(clean_env(), **{**defaults, **settings})


def start_worker(env: Mapping[str, str], log_path: Path, loglevel: str = "info") -> subprocess.Popen:
    log = open(log_path, "ab")
    return subprocess.Popen(
        [sys.executable, "-m", "faust", "-A", "dqhash.app", "worker", "-l", loglevel],
        env=dict(env),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )


def stop_worker(process: subprocess.Popen, timeout_s: float = 15.0) -> int:
    """SIGTERM, then SIGKILL if it has not stopped within ``timeout_s``; returns the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    return process.returncode


async def produce(kafka: Mapping[str, Any], topic: str, records: Iterable[Record], linger_ms: int = 5) -> int:
    """Send records keyed as given (murmur2 partitioner, like Java clients); returns how many."""
    producer = AIOKafkaProducer(**kafka, linger_ms=linger_ms, max_batch_size=256 * 1024)
    await producer.start()
    try:
        n = 0
        for key, value in records:
            await producer.send(topic, value, key=key)
            n += 1
        await producer.flush()
        return n
    finally:
        await producer.stop()


@dataclass
class Outputs:
    """What the pipeline has published so far, deduplicated the way a downstream upsert would."""

    audit_messages: int = 0  # every audit record read, before deduplication by audit_id
    republished_audit_messages: int = 0  # of those, re-published by a new partition owner (dq.republished)
    audit_ids: set[str] = field(default_factory=set)
    audit: Counter = field(default_factory=Counter)  # (status, late) → n, distinct audit ids
    audit_records: list[dict] = field(default_factory=list)
    #: (table, pk) of every MISSING_CLOUD verdict: tables share pk values, and each declares its own rows missing
    missing_cloud_pks: set[tuple[str | None, str]] = field(default_factory=set)
    dlq: Counter = field(default_factory=Counter)  # reason → n
    dlq_records: list[tuple[bytes | None, bytes, dict[str, bytes]]] = field(default_factory=list)
    windows: dict[tuple[int, str], dict] = field(default_factory=dict)  # newest revision per window
    repairs: list[dict] = field(default_factory=list)  # repair requests (confirmed problems)
    cloud_hashes: dict[str, list[dict]] = field(default_factory=dict)  # Topic-2 records by pk
    schema_events: list[dict] = field(default_factory=list)  # schema drift reported by the producer
    verified: list[bytes] = field(default_factory=list)  # the metrics topic's ``verified`` records (core.progress)
    completeness: list[dict] = field(default_factory=list)  # its ``completeness`` records (core.transactions)
    unreadable: list[str] = field(default_factory=list)  # records this reader could not understand

    def window_total(self, key: str) -> int:
        return sum(w["counts"].get(key, 0) for w in self.windows.values())

    def add(self, topic_kind: str, key: bytes | None, value: bytes, headers) -> None:
        if topic_kind == "audit":
            self.audit_messages += 1
            if any(k == "dq.republished" for k, _ in headers or ()):
                self.republished_audit_messages += 1
            record = orjson.loads(value)
            if record["audit_id"] in self.audit_ids:
                return
            self.audit_ids.add(record["audit_id"])
            self.audit[record["status"], record["late"]] += 1
            self.audit_records.append(record)
            if record["status"] == "MISSING_CLOUD":
                self.missing_cloud_pks.add((record.get("table"), record["pk"]))
        elif topic_kind == "cloud":
            record = orjson.loads(value)
            self.cloud_hashes.setdefault(str(record.get("pk")), []).append(record)
        elif topic_kind == "repair":
            self.repairs.append(orjson.loads(value))
        elif topic_kind == "dlq":
            header_map = dict(headers or ())
            self.dlq[header_map.get(DLQ_REASON, b"?").decode()] += 1
            self.dlq_records.append((key, value, header_map))
        else:
            record = orjson.loads(value)
            if record.get("type") == "verified":
                self.verified.append(value)
                return
            if record.get("type") == "completeness":
                self.completeness.append(record)
                return
            if record.get("type") != "window":
                self.schema_events.append(record)
                return
            window = (record["partition"], record["window_start"])
            if record["revision"] >= self.windows.get(window, {"revision": 0})["revision"]:
                self.windows[window] = record


class OutputReader:
    """Reads the audit, DLQ and metrics topics from the beginning into :class:`Outputs`."""

    def __init__(
        self,
        kafka: Mapping[str, Any],
        audit_topic: str,
        dlq_topic: str,
        metrics_topic: str,
        repair_topic: str | None = None,
        cloud_topic: str | None = None,
    ) -> None:
        self.kinds = {audit_topic: "audit", dlq_topic: "dlq", metrics_topic: "metrics"}
        if repair_topic:
            self.kinds[repair_topic] = "repair"
        if cloud_topic:
            self.kinds[cloud_topic] = "cloud"
        self.kafka = kafka
        self.outputs = Outputs()
        self.consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task | None = None
        self.changed = asyncio.Event()

    async def start(self) -> OutputReader:
        self.consumer = AIOKafkaConsumer(
            *self.kinds,
            **self.kafka,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            group_id=None,
            max_poll_records=5000,
            fetch_max_wait_ms=100,
        )  # the embedded broker waits a fetch out in full
        await self.consumer.start()
        self._task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        while True:
            batches = await self.consumer.getmany(timeout_ms=200)
            for tp, messages in batches.items():
                kind = self.kinds[tp.topic]
                for message in messages:
                    try:
                        self.outputs.add(kind, message.key, message.value, message.headers)
                    except Exception as exc:  # one odd record must not stop the reading
                        self.outputs.unreadable.append(f"{tp.topic}@{message.offset}: {type(exc).__name__}: {exc}")
            if batches:
                self.changed.set()

    async def wait_for(self, condition, timeout_s: float, describe) -> None:
        """Wait until ``condition(outputs)`` holds; on time-out raise with ``describe(outputs)``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not condition(self.outputs):
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"timed out after {timeout_s:.0f}s: {describe(self.outputs)}")
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), min(remaining, 1.0))
            except TimeoutError:
                pass

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        if self.consumer:
            try:
                await self.consumer.stop()
            except (asyncio.CancelledError, Exception):  # aiokafka can raise here after a lost connection
                pass


def demo_topic_settings(prefix: str) -> dict[str, str]:
    """Topic and app-id settings unique to one run, so a run never touches another's data."""
    return {
        "DQHASH_APP_ID": prefix,
        "DQHASH_ONPREM_TOPIC": f"{prefix}-topic1",
        "DQHASH_CLOUD_TOPIC": f"{prefix}-topic2",
        "DQHASH_AUDIT_TOPIC": f"{prefix}-audit",
        "DQHASH_METRICS_TOPIC": f"{prefix}-metrics",
        "DQHASH_DLQ_TOPIC": f"{prefix}-dlq",
        "DQHASH_REPAIR_TOPIC": f"{prefix}-repair",
        "DQHASH_SNAPSHOT_TOPIC": f"{prefix}-snapshots",
        "DQHASH_TRIAGE_TOPIC": f"{prefix}-triage",
    }


def clean_env() -> dict[str, str]:
    """os.environ without DQHASH_*/DD_* variables, so only explicit settings reach a worker."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("DQHASH_", "DD_"))}
