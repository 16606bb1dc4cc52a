"""``dqhash bench``: one dqhash worker end to end, next to two floors measured in the same run.

1. Pre-load N on-prem events and their cloud hashes (a realistic mix) into fresh topics.
2. **dqhash**: start one worker; time from its first to its last audit record (every event classified).
   Its peak RSS is read from /proc. Then a paced latency phase: pairs produced at a steady rate, latency =
   audit record time - the cloud record's produce time (both sides present).
3. **Faust floor**: a bare Faust agent that only parses the same input (dqhash/tools/bench/floor.py), on Faust's own
   transport (``kafka://``, none of dqhash's consumer changes: Faust itself, as the issue asks).
4. **Ceiling**: a bare aiokafka loop that consumes the same input and produces as many messages, of the same
   sizes, as the dqhash worker produced (changelog, re-key, ticks, audit, metrics, DLQ; counted in step 2).
5. **Sweep**: the time of one tick that sweeps 1,000 due pairs with 10,000 and with 1,000,000 PKs held.

Ratios are the point: the machine is shared and noisy, the same-run floors are not.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from dqhash import settings as settings_module
from dqhash.core import compiled_engine
from dqhash.core.jsontext import dumps_kept
from dqhash.core.statuses import PROBLEMS, Status
from dqhash.core.timeutil import now_ms
from dqhash.kafka.embedded_broker import EmbeddedBroker, free_port
from dqhash.kafka.security import connect_args
from dqhash.kafka.topics import create_topics
from dqhash.tools.bench.baselines import ceiling, faust_floor, topic_output, written_topics
from dqhash.tools.bench.memory import cpu_seconds, memory_parts_mb, parts_text, rss_mb
from dqhash.tools.bench.sweep import sweep_ms
from dqhash.tools.runner import local_worker_env, start_worker, stop_worker

#: The mix of on-prem events (shares of N); every event but the bad ones is classified once.
MIX = {"match": 0.85, "mismatch": 0.04, "missing_cloud": 0.03, "delete": 0.03, "duplicate": 0.03, "bad": 0.02}
LATENCY_PAIRS = 2_000
WINDOW_S, GRACE_S, TICK_S = 1, 1, 0.2


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def workload(n: int, run: str, ts: int) -> tuple[list, list, int]:
    """(on-prem records, cloud records, classifications expected)."""
    onprem, cloud = [], []
    classified = 0
    bounds, edge = [], 0  # per-mille, in integers: float sums would shift a boundary
    for name, share in MIX.items():
        edge += round(share * 1000)
        bounds.append((edge, name))
    for i in range(n):
        kind = next(name for edge, name in bounds if i % 1000 < edge)
        pk = f"{run}-{i:08d}"
        digest = hashlib.sha256(pk.encode()).hexdigest()
        event = {
            "event_id": f"{run}-e{i}",
            "hash_onprem": digest,
            "partitionColumns": [{"type": "PK", "value": pk}],
            "event_ts": ts,
            "action": "UPDATE",
        }
        key = pk.encode() if i % 2 == 0 else event["event_id"].encode()  # Topic-1 keys are not always the PK
        if kind == "bad":
            onprem.append((key, dumps_kept(event)[:-5]))
            continue
        if kind == "duplicate" and onprem:
            onprem.append(onprem[-1])
            continue
        if kind == "delete":
            event["action"] = "DELETE"
        onprem.append((key, dumps_kept(event)))
        classified += 1
        if kind in ("match", "mismatch"):
            cloud_digest = digest if kind == "match" else hashlib.sha256(b"x" + pk.encode()).hexdigest()
            cloud.append((pk.encode(), dumps_kept({"pk": pk, "hash_cloud": cloud_digest, "cloud_ts": ts + 1})))
    return onprem, cloud, classified


async def produce_all(kafka: Mapping[str, Any], topic: str, records: list) -> None:
    producer = AIOKafkaProducer(**kafka, linger_ms=20, max_batch_size=512 * 1024)
    await producer.start()
    try:
        for key, value in records:
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


#: the statuses given as soon as a pair's input is applied; a problem verdict waits for its deadline, and for the
#: inputs to be read past it (no false alarm), so the backlog's last ones come a fixed wait after its last input
_PROMPT = frozenset(status.value for status in Status) - {status.value for status in PROBLEMS}


class AuditWatch:
    """Counts audit records and keeps the timestamps the benchmark needs, without holding the records.

    ``prompt_last_ms``: the last verdict given as its input was applied (``_PROMPT``). The time to it is the
    backlog's applying alone; the time to ``last_ms`` adds the wait of the last problem verdicts for their deadline.
    """

    def __init__(self, kafka: Mapping[str, Any], topic: str, latency_prefix: bytes) -> None:
        self.consumer = AIOKafkaConsumer(
            topic, **kafka, group_id=None, auto_offset_reset="earliest", fetch_max_wait_ms=100
        )
        self.latency_prefix = latency_prefix
        self.count = 0
        self.first_ms = self.last_ms = self.prompt_last_ms = None
        self.latency_audit_ms: dict[bytes, int] = {}
        self._task = None

    async def start(self) -> AuditWatch:
        await self.consumer.start()
        self._task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        while True:
            for messages in (await self.consumer.getmany(timeout_ms=200, max_records=10_000)).values():
                for message in messages:
                    self.saw(message.key, message.value, message.timestamp)

    def saw(self, key: bytes | None, value: bytes, timestamp_ms: int) -> None:
        """One audit record, in the order of its partition."""
        if key is not None and key.startswith(self.latency_prefix):
            self.latency_audit_ms.setdefault(key, timestamp_ms)
            return
        self.count += 1
        self.first_ms = self.first_ms or timestamp_ms
        self.last_ms = timestamp_ms
        if orjson.loads(value)["status"] in _PROMPT:
            self.prompt_last_ms = timestamp_ms

    async def stop(self) -> None:
        self._task.cancel()
        try:
            await self._task
        except (asyncio.CancelledError, Exception):
            pass
        await self.consumer.stop()


async def until(condition, timeout_s: float, progress, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    last = 0.0
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        if time.monotonic() - last >= 5:
            last = time.monotonic()
            progress()
        await asyncio.sleep(0.1)  # polling counters another task updates


async def classify_phase(url: str, workdir: Path, pairs: int, workers: int) -> float:
    """The same backlog on fresh topics, classified by ``workers`` workers: input events/s, first to last audit."""
    run_id = uuid.uuid4().hex[:8]
    prefix = f"dqhash-bench-{run_id}"
    env = local_worker_env(url, workdir, prefix, WINDOW_S, GRACE_S, TICK_S, free_port())
    settings = settings_module.load(env)
    await create_topics(settings)
    onprem, cloud, classified = workload(pairs, run_id, now_ms())
    inputs = len(onprem) + len(cloud)
    await asyncio.gather(
        produce_all(connect_args(settings), settings.onprem_topic, onprem),
        produce_all(connect_args(settings), settings.cloud_topic, cloud),
    )
    del onprem, cloud
    watch = await AuditWatch(connect_args(settings), settings.audit_topic, b"\xff-none").start()
    processes = []
    try:
        for index in range(workers):
            own = {
                **env,
                "DQHASH_DATA_DIR": str(workdir / f"data-{run_id}-{index}"),
                "DQHASH_WEB_PORT": str(free_port()),
            }
            processes.append(start_worker(own, workdir / f"worker-{run_id}-{index}.log", loglevel="warn"))

        def done() -> bool:
            for process in processes:
                if process.poll() is not None:
                    raise RuntimeError(f"a dqhash worker exited ({process.returncode}); see {workdir}")
            return watch.count >= classified

        def progress() -> None:
            say(f"  {workers} workers: {watch.count:,}/{classified:,} classified")

        await until(done, 120 + inputs / 200, progress, f"every event to be classified by {workers} workers")
        return inputs / ((watch.last_ms - watch.first_ms) / 1000)
    finally:
        for process in processes:
            stop_worker(process)
        await watch.stop()


async def run(pairs: int, workers: int = 1) -> dict:
    external = os.environ.get("DQHASH_BROKER")
    workdir = Path(tempfile.mkdtemp(prefix="dqhash-bench-"))
    broker = None if external else EmbeddedBroker(log_path=workdir / "broker.log").start()
    url = external or broker.url
    run_id = uuid.uuid4().hex[:8]
    prefix = f"dqhash-bench-{run_id}"
    worker = watch = None
    try:
        env = local_worker_env(url, workdir, prefix, WINDOW_S, GRACE_S, TICK_S, free_port())
        settings = settings_module.load(env)
        await create_topics(settings)
        onprem, cloud, classified = workload(pairs, run_id, now_ms())
        inputs = len(onprem) + len(cloud)
        say(f"pre-loading {len(onprem):,} on-prem events and {len(cloud):,} cloud hashes ...")
        await asyncio.gather(
            produce_all(connect_args(settings), settings.onprem_topic, onprem),
            produce_all(connect_args(settings), settings.cloud_topic, cloud),
        )
        del onprem, cloud

        latency_prefix = f"lat-{run_id}".encode()
        watch = await AuditWatch(connect_args(settings), settings.audit_topic, latency_prefix).start()
        worker = start_worker(env, workdir / "worker.log", loglevel="warn")
        say(f"dqhash worker started (pid {worker.pid}); waiting for {classified:,} classifications")
        peak = [0.0, 0.0]  # current, peak RSS
        baseline = []  # RSS when the first classification appeared (the worker running, its tables empty)

        curve: dict[int, tuple[int, float]] = {}  # RSS as each fifth of the classifications is passed
        cpu_from: list[float] = []  # the worker's CPU seconds at its first classification

        def progress() -> None:
            peak[:] = rss_mb(worker.pid)
            rate = (
                f", {watch.count / max(1e-3, (watch.last_ms - watch.first_ms) / 1000):,.0f} pairs/s"
                if watch.count > 1 and watch.last_ms > watch.first_ms
                else ""
            )
            say(f"  dqhash: {watch.count:,}/{classified:,} classified{rate}, RSS {peak[0]:.0f} MB")

        def done() -> bool:
            if worker.poll() is not None:
                raise RuntimeError(f"the dqhash worker exited ({worker.returncode}); see {workdir / 'worker.log'}")
            if watch.count and not baseline:
                baseline.append(rss_mb(worker.pid)[0])
                cpu_from.append(cpu_seconds(worker.pid))
            fifth = min(5, watch.count * 5 // max(1, classified))
            if fifth and fifth not in curve:
                curve[fifth] = (watch.count, rss_mb(worker.pid)[0])
            return watch.count >= classified

        await until(done, 120 + inputs / 200, progress, "every event to be classified")
        progress()
        seconds = (watch.last_ms - watch.first_ms) / 1000
        events_per_s, pairs_per_s = inputs / seconds, classified / seconds
        applying_s = (watch.prompt_last_ms - watch.first_ms) / 1000
        cpu_us_per_event = 1e6 * (cpu_seconds(worker.pid) - cpu_from[0]) / inputs
        rss_loaded = peak[0]
        memory_at_end = memory_parts_mb(env)
        say(f"  dqhash: {events_per_s:,.0f} input events/s; now the latency phase ({LATENCY_PAIRS} pairs)")
        p50, p99 = await latency_phase(settings, watch, latency_prefix, min(500.0, pairs_per_s / 2))
        current, hwm = rss_mb(worker.pid)
        stop_worker(worker)
        worker = None
        say("restart: a new worker on the data dir the run left ...")
        restarted = await restart_phase(env, workdir, settings.partitions)
        say(f"  memory at the end of the backlog, MB: {memory_at_end}")

        produced = await topic_output(connect_args(settings), written_topics(settings))
        say("Faust floor: a bare agent parsing the same input ...")
        floor = faust_floor(url, settings.onprem_topic, settings.cloud_topic, inputs, workdir, 120 + inputs / 500)
        say("ceiling: bare aiokafka consume + produce of the same volume ...")
        ceiling_rate = await ceiling(
            connect_args(settings), [settings.onprem_topic, settings.cloud_topic], inputs, list(produced.values())
        )
        scaled = None
        if workers > 1:
            say(f"the same backlog on {workers} workers, fresh topics ...")
            scaled = await classify_phase(url, workdir, pairs, workers)
        say("deadline sweep: 1,000 due pairs with 10,000 and 1,000,000 PKs held ...")
        sweep_small, sweep_large = sweep_ms(10_000), sweep_ms(1_000_000)
        held = pairs + LATENCY_PAIRS
        return {
            "pairs": pairs,
            "input_events": inputs,
            "classified": classified,
            "events_per_s": round(events_per_s),
            "pairs_per_s": round(pairs_per_s),
            "p50_ms": p50,
            "p99_ms": p99,
            "peak_rss_mb": round(hwm),
            "rss_mb_at_end": round(max(current, rss_loaded)),
            "rss_mb_baseline": round(baseline[0]),
            "rss_mb_per_million_pks": round((max(current, rss_loaded) - baseline[0]) / held * 1_000_000),
            "memory_mb_at_end_of_backlog": memory_at_end,
            "rss_mb_by_pks_classified": {f"{count:,}": round(mb) for count, mb in sorted(curve.values())},
            **restarted,
            "ceiling_events_per_s": round(ceiling_rate),
            "ratio": round(events_per_s / ceiling_rate, 3),
            "applying_s": round(applying_s, 2),
            "deadline_tail_s": round(seconds - applying_s, 2),
            "events_per_s_applying": round(inputs / applying_s),
            "ratio_applying": round(inputs / applying_s / ceiling_rate, 3),
            "worker_cpu_us_per_event": round(cpu_us_per_event, 1),
            "faust_floor_events_per_s": round(floor),
            "ratio_faust": round(events_per_s / floor, 3),
            "sweep_ms": round(sweep_large, 2),
            "sweep_ms_10k_pks": round(sweep_small, 2),
            "sweep_growth": round(sweep_large / sweep_small, 2),
            "worker_output_messages": {t.removeprefix(prefix + "-"): n for t, (n, _) in produced.items()},
            "output_messages_per_input": round(sum(n for n, _ in produced.values()) / inputs, 2),
            "broker": "embedded (Tansu)" if broker else external,
            "engine": compiled_engine.describe(),  # the worker's: the same install, started from the same directory
            **(
                {
                    "workers": workers,
                    "events_per_s_workers": round(scaled),
                    "ratio_workers": round(scaled / events_per_s, 3),
                }
                if scaled
                else {}
            ),
        }
    finally:
        if watch:
            await watch.stop()
        if worker:
            stop_worker(worker)
        if broker:
            broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)


async def restart_phase(env: dict[str, str], workdir: Path, partitions: int) -> dict[str, Any]:
    """A new worker on the data dir the run left, holding every key it classified: its peak RSS while it restores
    its tables and rebuilds its derived state from every key (``engine.takeover``), and how long that takes."""
    worker, seconds = await start_until_rebuilt(env, workdir / "worker-restart.log", partitions, 600, "restart")
    try:
        current, peak = rss_mb(worker.pid)
        return {"restart_s": round(seconds, 1), "restart_peak_rss_mb": round(peak), "restart_rss_mb": round(current),
                "restart_memory_mb": memory_parts_mb(env)}  # fmt: skip
    finally:
        stop_worker(worker)


async def start_until_rebuilt(
    env: dict[str, str], log_path: Path, partitions: int, timeout_s: float, label: str
) -> tuple[Any, float]:
    """A worker started on its data dir, once it has restored its tables and rebuilt its derived state for every
    partition (its log's "rebuilt the deadline index" line): the process, and the seconds that took."""
    started = time.monotonic()
    worker = start_worker(env, log_path, loglevel="info")
    wanted = f"partitions {list(range(partitions))} from"

    def rebuilt() -> bool:
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited ({worker.returncode}) while starting ({label}); see {log_path}")
        return wanted in log_path.read_text(errors="replace")

    def progress() -> None:
        say(f"    {label}: RSS {rss_mb(worker.pid)[0]:.0f} MB, restoring and rebuilding")

    try:
        await until(rebuilt, timeout_s, progress, f"the worker to restore its tables and rebuild ({label})")
    except BaseException:
        stop_worker(worker)
        raise
    return worker, time.monotonic() - started


async def latency_phase(settings, watch: AuditWatch, prefix: bytes, rate: float) -> tuple[float, float]:
    """Pairs at a steady rate after the backlog: audit time - produce time of the pair's second side."""
    producer = AIOKafkaProducer(**connect_args(settings), linger_ms=0)
    await producer.start()
    sent: dict[bytes, int] = {}
    try:
        start = time.perf_counter()
        for i in range(LATENCY_PAIRS):
            pk = prefix + f"-{i:06d}".encode()
            digest = hashlib.sha256(pk).hexdigest()
            text = pk.decode()
            await producer.send(
                settings.onprem_topic,
                orjson.dumps(
                    {
                        "event_id": f"{text}-e",
                        "hash_onprem": digest,
                        "partitionColumns": [{"type": "PK", "value": text}],
                        "event_ts": now_ms(),
                        "action": "UPDATE",
                    }
                ),
                key=pk,
            )
            metadata = await (
                await producer.send(
                    settings.cloud_topic, orjson.dumps({"pk": text, "hash_cloud": digest, "cloud_ts": now_ms()}), key=pk
                )
            )
            sent[pk] = metadata.timestamp
            pause = start + (i + 1) / rate - time.perf_counter()
            if pause > 0:
                await asyncio.sleep(pause)  # pacing the offered load
    finally:
        await producer.stop()
    await until(lambda: len(watch.latency_audit_ms) >= LATENCY_PAIRS, 120, lambda: None, "the latency pairs")
    latencies = sorted(watch.latency_audit_ms[pk] - ts for pk, ts in sent.items())
    return float(latencies[len(latencies) // 2]), float(latencies[int(len(latencies) * 0.99) - 1])


def run_guarded(coroutine: Any) -> dict | int:
    """The bench's result, or the exit status after saying why there is none (interrupted, a worker died)."""
    try:
        result: dict = asyncio.run(coroutine)
    except KeyboardInterrupt:
        say("interrupted; cleaned up")
        return 130
    except (RuntimeError, TimeoutError) as exc:
        say(f"dqhash bench: {exc}")
        return 1
    return result


def main(pairs: int, as_json: bool, workers: int = 1) -> int:
    result = run_guarded(run(pairs, workers))
    if isinstance(result, int):
        return result
    if as_json:
        print(json.dumps(result))
        return 0
    rows = [
        ("input events/s (both topics)", f"{result['events_per_s']:,}"),
        ("pairs classified/s", f"{result['pairs_per_s']:,}"),
        ("classify latency p50 / p99", f"{result['p50_ms']:.0f} / {result['p99_ms']:.0f} ms"),
        ("worker peak RSS", f"{result['peak_rss_mb']} MB ({result['rss_mb_per_million_pks']} MB per 1M PKs)"),
        ("restart on its data dir", f"{result['restart_s']} s to rebuild, peak RSS {result['restart_peak_rss_mb']} MB"),
        (
            "Faust floor (bare parsing agent)",
            f"{result['faust_floor_events_per_s']:,}/s  -> ratio_faust {result['ratio_faust']}",
        ),
        ("ceiling (bare aiokafka, same output)", f"{result['ceiling_events_per_s']:,}/s  -> ratio {result['ratio']}"),
        (
            "the backlog applied, without the deadline tail",
            f"{result['events_per_s_applying']:,}/s  -> ratio_applying {result['ratio_applying']} "
            f"(the last problem verdicts came {result['deadline_tail_s']} s later)",
        ),
        ("worker CPU per input event", f"{result['worker_cpu_us_per_event']} µs"),
        (
            "deadline sweep, 1,000 due",
            f"{result['sweep_ms']} ms at 1M PKs, {result['sweep_ms_10k_pks']} ms at 10k (x{result['sweep_growth']})",
        ),
        ("worker output messages per input", f"{result['output_messages_per_input']}"),
        ("RSS MB by PKs classified", ", ".join(f"{k}: {v}" for k, v in result["rss_mb_by_pks_classified"].items())),
        ("memory at the end of the backlog, MB", parts_text(result["memory_mb_at_end_of_backlog"])),
        ("memory after the restart, MB", parts_text(result["restart_memory_mb"])),
    ]
    if "ratio_workers" in result:
        rows.append(
            (
                f"input events/s on {result['workers']} workers",
                f"{result['events_per_s_workers']:,}/s  -> ratio to one worker {result['ratio_workers']}",
            )
        )
    print(f"dqhash bench: {result['pairs']:,} pairs, {result['input_events']:,} input events, {result['broker']}")
    for name, value in rows:
        print(f"  {name:40s} {value}")
    return 0
