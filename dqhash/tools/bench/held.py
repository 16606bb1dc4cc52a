"""``dqhash bench --hold-keys N``: a worker's memory against the keys it holds, to millions of keys, in one run.

Classifying N pairs through a worker to hold N keys would take N / 10,000 s or more. The keys are instead added
the way a worker finds them after a restart or a takeover: as the pairs table's changelog. Their values are real
settled pair states (a MATCH each), written by the reconciler's own code on a dict table for a few thousand
template pairs, then varied per key (its digest, its event id and its times), so RocksDB stores and compresses
them as it stores a worker's own.

In five steps of N / 5 keys: the keys are produced to the changelog, then a worker starts on the data dir the step
before left (as a restarted worker would). It restores the step's new changelog records, rebuilds its derived state
from every key it holds (``engine.takeover``), then reconciles a live load of ``--pairs`` fresh pairs before it is
stopped. Per step: keys held, how long the start took, the RSS once rebuilt, the peak over the worker's life
(recovery included), the RSS and its parts at the end of the load, and the load's events/s.

With ``--pending`` the keys held are pairs still waiting for their cloud side, their deadline a day away (as a grace
of hours, or a cloud topic read hours behind, leaves them): what the deadline index and the verified-through book
keep in memory for them is bounded by DQHASH_PENDING_IN_MEMORY, not by the keys.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from dqhash import settings as settings_module
from dqhash.core.partitioning import partition_for
from dqhash.core.records import SOURCE_CLOUD, SOURCE_ONPREM, Input
from dqhash.core.timeutil import now_ms
from dqhash.kafka.embedded_broker import EmbeddedBroker, free_port
from dqhash.kafka.security import connect_args
from dqhash.kafka.topics import create_topics
from dqhash.tools.bench.memory import cpu_seconds, memory_parts_mb, parts_text, rss_mb
from dqhash.tools.bench.pipeline import (
    GRACE_S,
    TICK_S,
    WINDOW_S,
    AuditWatch,
    produce_all,
    run_guarded,
    say,
    start_until_rebuilt,
    until,
    workload,
)
from dqhash.tools.runner import local_worker_env, stop_worker

STEPS = 5
#: template pair states, varied per key: enough that RocksDB's blocks do not repeat one value
TEMPLATES = 4096
#: how long before the run the templates were classified: older than the outbox a rebuild republishes
#: (``engine.pair_updates.OUTBOX_MS``), so a restored key republishes no audit record
TEMPLATE_AGE_MS = 60_000
#: how fast the held keys were settled, before the run: a worker's own rate
CLASSIFIED_PER_S = 10_000
#: with ``--pending``: the grace the held pairs were read under, so that none comes due during the run
PENDING_GRACE_S = 86_400


def held_pk(run: str, i: int) -> str:
    return f"{run}-h{i:010d}"


def held_event_id(run: str, i: int) -> str:
    return f"{run}-he{i:010d}"


def template_states(run: str, partitions: int, pending: bool = False) -> list[tuple[bytes, bytes, bytes]]:
    """(state bytes, its digest, its event id) of TEMPLATES settled MATCH pairs, as the reconciler writes them; with
    ``pending``, of pairs whose on-prem side alone was read, their deadline PENDING_GRACE_S away."""
    from dqhash.engine.reconciler import Reconciler
    from dqhash.ops.dogstatsd import Metrics

    grace = {"DQHASH_GRACE_SECONDS": str(PENDING_GRACE_S)} if pending else {}
    settings = settings_module.load({"DQHASH_PARTITIONS": str(partitions), **grace})
    table: dict[bytes, bytes] = {}
    t0 = now_ms() - TEMPLATE_AGE_MS
    metrics = Metrics("127.0.0.1", 9, [], enabled=False)
    reconciler = Reconciler(settings, table, metrics, lambda table, partition: iter(()), clock=lambda: t0 + 10)
    onprem, cloud = [], []
    for i in range(TEMPLATES):
        pk, digest = held_pk(run, i), _digest(held_pk(run, i))
        partition = partition_for(pk, partitions)
        event = {"event_id": held_event_id(run, i), "hash_onprem": digest, "event_ts": t0, "action": "UPDATE",
                 "partitionColumns": [{"type": "PK", "value": pk}]}  # fmt: skip
        hashed = {"pk": pk, "hash_cloud": digest, "cloud_ts": t0 + 1}
        onprem.append(Input(SOURCE_ONPREM, settings.onprem_topic, partition, i, pk.encode(), orjson.dumps(event)))
        cloud.append(Input(SOURCE_CLOUD, settings.cloud_topic, partition, i, pk.encode(), orjson.dumps(hashed)))
    reconciler.process(onprem)
    if not pending:
        reconciler.process(cloud)
    metrics.close()
    made = [(table[held_pk(run, i).encode()], _digest(held_pk(run, i)).encode(), held_event_id(run, i).encode())
            for i in range(TEMPLATES)]  # fmt: skip
    expected = b"PENDING" if pending else b"MATCH"
    if any(expected not in state for state, _, _ in made):
        raise RuntimeError(f"a template pair is not {expected.decode()}")
    return made


def held_records(run: str, templates: list, start: int, count: int, keys: int) -> Iterator[tuple[bytes, bytes]]:
    """(key, state) for keys start..start+count: a template's state with the key's own digest, event id and times.

    Key ``i`` was settled (keys - i) / CLASSIFIED_PER_S seconds before the templates: a worker at full speed, so a
    restart republishes one outbox's worth of verdicts (``engine.takeover``), not one per key held.
    """
    compiled = [_compiled(*template) for template in templates]
    for i in range(start, start + count):
        literals, slots = compiled[i % len(compiled)]
        pk = held_pk(run, i)
        fill = {_DIGEST: _digest(pk).encode(), _EVENT: held_event_id(run, i).encode()}
        shift = (keys - i) * 1000 // CLASSIFIED_PER_S
        parts = [literals[0]]
        for slot, literal in zip(slots, literals[1:]):
            parts.append(fill[slot] if slot in fill else str(slot - shift).encode())  # type: ignore[operator]
            parts.append(literal)
        yield pk.encode(), b"".join(parts)


_DIGEST, _EVENT = "digest", "event"
#: the times a pair state holds: epoch milliseconds, thirteen digits
_TIMES = re.compile(rb"\d{13}")


def _compiled(state: bytes, digest: bytes, event_id: bytes) -> tuple[list[bytes], list[int | str]]:
    """A template state split around what differs per key: (literals, slots), a slot between each two literals:
    the digest, the event id, or a time (its value in the template)."""
    pattern = re.compile(b"(" + re.escape(digest) + b"|" + re.escape(event_id) + b"|" + _TIMES.pattern + b")")
    pieces = pattern.split(state)
    literals, slots = pieces[0::2], []
    for token in pieces[1::2]:
        slots.append(_DIGEST if token == digest else _EVENT if token == event_id else int(token))
    return literals, slots


def _digest(pk: str) -> str:
    return hashlib.sha256(pk.encode()).hexdigest()


async def produce_changelog(
    kafka: Mapping[str, Any], topic: str, partitions: int, records: Iterator[tuple[bytes, bytes]]
) -> int:
    """The records into their PK's partition, in whole batches (aiokafka's batch API: millions of records)."""
    producer = AIOKafkaProducer(**kafka, linger_ms=50)
    await producer.start()
    sent = 0
    try:
        batches = {p: producer.create_batch() for p in range(partitions)}
        pending = []
        for key, value in records:
            partition = partition_for(key.decode(), partitions)
            if batches[partition].append(key=key, value=value, timestamp=None) is None:
                pending.append(await _send(producer, batches, partition, topic))
                batches[partition].append(key=key, value=value, timestamp=None)
            sent += 1
            if len(pending) >= 64:
                await asyncio.gather(*pending)
                pending = []
        for partition in range(partitions):
            pending.append(await _send(producer, batches, partition, topic))
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return sent


async def _send(producer: AIOKafkaProducer, batches: dict, partition: int, topic: str) -> Any:
    batch = batches[partition]
    batches[partition] = producer.create_batch()
    batch.close()
    return await producer.send_batch(batch, topic, partition=partition)


async def load_step(settings: Any, worker: Any, run: str, pairs: int) -> dict:
    """``pairs`` fresh pairs through the started worker: its events/s and CPU per event.

    Their pairs are told apart by their PKs' prefix (the run's): a restart republishes the last moments' verdicts
    of the keys held, which are not this load's."""
    onprem, cloud, classified = workload(pairs, run, now_ms())
    watch = await AuditWatch(connect_args(settings), settings.audit_topic, f"{run}-".encode()).start()
    try:
        return await _timed_load(settings, worker, watch, onprem, cloud, classified)
    finally:
        await watch.stop()


async def _timed_load(
    settings: Any, worker: Any, watch: AuditWatch, onprem: list, cloud: list, classified: int
) -> dict:
    inputs = len(onprem) + len(cloud)
    cpu_before, started = cpu_seconds(worker.pid), time.monotonic()
    await asyncio.gather(
        produce_all(connect_args(settings), settings.onprem_topic, onprem),
        produce_all(connect_args(settings), settings.cloud_topic, cloud),
    )
    onprem.clear()
    cloud.clear()

    def done() -> bool:
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited ({worker.returncode}) under load")
        return len(watch.latency_audit_ms) >= classified

    def progress() -> None:
        say(f"    load: {len(watch.latency_audit_ms):,}/{classified:,} pairs, RSS {rss_mb(worker.pid)[0]:.0f} MB")

    await until(done, 120 + inputs / 200, progress, "the load to be classified")
    seconds = time.monotonic() - started
    return {
        "classified": classified,
        "events_per_s": round(inputs / seconds),
        "worker_cpu_us_per_event": round(1e6 * (cpu_seconds(worker.pid) - cpu_before) / inputs, 1),
    }


#: the recovery's own line (dqhash.internals.recovery): records applied to active partitions, and the seconds taken
RESTORED_LINE = re.compile(r"restored ([\d,]+) changelog records in ([\d.]+) s")


def directory_mb(path: Path) -> float:
    """What a directory's files take on disk (a worker's data dir: RocksDB's files), in MB."""
    return sum(f.stat().st_blocks * 512 for f in path.rglob("*") if f.is_file()) / 1e6


def restored_from_log(text: str) -> tuple[int, float]:
    """The records a worker restored from its changelogs and the seconds that took, summed over its recoveries."""
    found = [(int(records.replace(",", "")), float(seconds)) for records, seconds in RESTORED_LINE.findall(text)]
    return sum(r for r, _ in found), round(sum(s for _, s in found), 1)


async def run(keys: int, pairs: int, pending: bool = False) -> dict:
    external = os.environ.get("DQHASH_BROKER")
    workdir = Path(tempfile.mkdtemp(prefix="dqhash-bench-held-"))
    broker = None if external else EmbeddedBroker(log_path=workdir / "broker.log").start()
    run_id = uuid.uuid4().hex[:8]
    try:
        env = local_worker_env(external or broker.url, workdir, f"dqhash-held-{run_id}", WINDOW_S, GRACE_S, TICK_S,
                               free_port())  # fmt: skip
        settings = settings_module.load(env)
        await create_topics(settings)
        changelog = f"{settings.app_id}-pairs-changelog"
        templates = template_states(run_id, settings.partitions, pending)
        steps, held, classified = [], 0, 0
        for step in range(1, STEPS + 1):
            count = keys * step // STEPS - keys * (step - 1) // STEPS
            say(f"step {step}/{STEPS}: {count:,} more keys into the changelog ({held + count:,} held) ...")
            began = time.monotonic()
            await produce_changelog(connect_args(settings), changelog, settings.partitions,
                                    held_records(run_id, templates, held, count, keys))  # fmt: skip
            produced_s = time.monotonic() - began
            held += count
            worker, start_s = await start_until_rebuilt(
                env, workdir / f"worker-{step}.log", settings.partitions, 1800, f"step {step}"
            )
            try:
                started_rss, started_peak = rss_mb(worker.pid)
                restored = restored_from_log((workdir / f"worker-{step}.log").read_text(errors="replace"))
                say(f"  restored and rebuilt in {start_s:.1f} s: RSS {started_rss:.0f} MB, peak {started_peak:.0f}; "
                    f"restored {restored[0]:,} changelog records in {restored[1]:.1f} s")  # fmt: skip
                loaded = await load_step(settings, worker, f"{run_id}s{step}", pairs)
                classified += loaded["classified"]
                current, peak = rss_mb(worker.pid)
                parts = memory_parts_mb(env)
            finally:
                stop_worker(worker, timeout_s=120)
            disk_mb = directory_mb(Path(env["DQHASH_DATA_DIR"]))
            say(f"  under load: {loaded['events_per_s']:,} events/s, RSS {current:.0f} MB, peak {peak:.0f} MB, "
                f"data dir {disk_mb:,.0f} MB; "
                f"{parts_text(parts)}")  # fmt: skip
            steps.append({
                "keys_held": held + classified,
                "changelog_records_per_s": round(count / produced_s),
                "start_s": round(start_s, 1),
                "restored_records": restored[0],
                "restore_s": restored[1],
                "restore_records_per_s": round(restored[0] / restored[1]) if restored[1] else None,
                "rss_mb_started": round(started_rss),
                "peak_rss_mb_start": round(started_peak),
                "rss_mb_after_load": round(current),
                "data_dir_mb": round(disk_mb),
                "peak_rss_mb": round(peak),
                "load_events_per_s": loaded["events_per_s"],
                "load_worker_cpu_us_per_event": loaded["worker_cpu_us_per_event"],
                "memory_mb_after_load": parts,
            })  # fmt: skip
        return {
            "keys": keys,
            "held": "pending" if pending else "settled",
            "pending_in_memory": settings.pending_in_memory,
            "load_pairs_per_step": pairs,
            "steps": steps,
            "peak_rss_mb": max(s["peak_rss_mb"] for s in steps),
            "broker": "embedded (Tansu)" if broker else external,
        }
    finally:
        if broker:
            broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main(keys: int, pairs: int, as_json: bool, pending: bool = False) -> int:
    result = run_guarded(run(keys, pairs, pending))
    if isinstance(result, int):
        return result
    if as_json:
        print(orjson.dumps(result).decode())
        return 0
    print(f"{result['held']} keys held, by step (live load {pairs:,} pairs a step), broker {result['broker']}:")
    for s in result["steps"]:
        print(f"  {s['keys_held']:>12,} keys: started in {s['start_s']} s (peak {s['peak_rss_mb_start']} MB), "
              f"RSS {s['rss_mb_after_load']} MB after the load, peak {s['peak_rss_mb']} MB, "
              f"{s['load_events_per_s']:,} events/s")  # fmt: skip
    print(f"peak RSS over the run: {result['peak_rss_mb']} MB")
    return 0
