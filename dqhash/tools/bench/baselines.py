"""What ``dqhash bench`` compares a worker with, measured in the same run: a bare aiokafka consume → produce
loop with the worker's output volume (the ceiling), and a bare Faust agent that only parses (the floor).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from dqhash.internals.clients import partitions_now
from dqhash.kafka.topics import topic_plan
from dqhash.settings import Settings
from dqhash.tools.runner import clean_env, stop_worker


def written_topics(settings: Settings) -> list[str]:
    """Every topic a worker may write (the topic plan's all but its inputs): what the ceiling must produce as much of."""
    return [spec.name for spec in topic_plan(settings) if not spec.role.startswith("input:")]


async def topic_output(kafka: Mapping[str, Any], topics: list[str]) -> dict[str, tuple[int, float]]:
    """Per topic: (messages, mean value bytes over a sample) — what the dqhash worker produced."""
    consumer = AIOKafkaConsumer(**kafka, group_id=None, enable_auto_commit=False)
    await consumer.start()
    result = {}
    try:
        for topic in topics:
            partitions = consumer.partitions_for_topic(topic) or await partitions_now(consumer, topic)
            tps = [TopicPartition(topic, p) for p in sorted(partitions or ())]
            if not tps:
                result[topic] = (0, 0.0)
                continue
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            sizes: list[int] = []
            deadline = time.monotonic() + 30
            # the fetch high watermark is exact on the embedded broker (ListOffsets is not): fetch until
            # every partition has answered once
            while any(consumer.highwater(tp) is None for tp in tps) and time.monotonic() < deadline:
                batches = await consumer.getmany(*tps, timeout_ms=500, max_records=2000)
                for messages in batches.values():
                    sizes += [len(m.value or b"") for m in messages][:500]
            result[topic] = (sum(consumer.highwater(tp) or 0 for tp in tps), statistics.mean(sizes) if sizes else 0.0)
            consumer.unsubscribe()
    finally:
        await consumer.stop()
    return result


async def ceiling(kafka: Mapping[str, Any], topics: list[str], inputs: int, outputs: list[tuple[int, float]]) -> float:
    """Input events/s of a bare aiokafka consume → produce loop with dqhash's output volume."""
    out_total = sum(n for n, _ in outputs)
    sizes = [max(1, int(size)) for n, size in outputs for _ in range(max(1, round(100 * n / max(out_total, 1))))]
    payloads = [b"x" * s for s in sizes] or [b"x"]
    group = f"ceiling-{uuid.uuid4().hex[:6]}"
    consumer = AIOKafkaConsumer(
        *topics,
        **kafka,
        group_id=group,
        auto_offset_reset="earliest",
        session_timeout_ms=6000,
        heartbeat_interval_ms=600,
        max_poll_records=5000,
    )
    producer = AIOKafkaProducer(**kafka, linger_ms=5, max_batch_size=256 * 1024)
    await consumer.start()
    await producer.start()
    sink = f"ceiling-sink-{uuid.uuid4().hex[:6]}"
    try:
        seen = produced = 0
        first = None
        owed = 0.0
        per_input = out_total / max(inputs, 1)
        while seen < inputs:
            batches = await consumer.getmany(timeout_ms=500, max_records=5000)
            for messages in batches.values():
                for message in messages:
                    first = first or time.perf_counter()
                    try:
                        orjson.loads(message.value)  # what every consumer pays at least, as the Faust floor does
                    except orjson.JSONDecodeError:
                        pass
                    seen += 1
                    owed += per_input
                    while owed >= 1:
                        await producer.send(sink, payloads[produced % len(payloads)], key=message.key)
                        produced += 1
                        owed -= 1
        await producer.flush()
        return inputs / (time.perf_counter() - first)
    finally:
        await producer.stop()
        await consumer.stop()


def faust_floor(url: str, onprem: str, cloud: str, total: int, workdir: Path, timeout_s: float) -> float:
    """Input events/s of the bare Faust agent; on Faust's stock transport whatever scheme dqhash uses (the
    floor reads no table, so the embedded broker's recovery fix in ``tansu://`` does not concern it)."""
    out = workdir / "floor.json"
    stock_url = ",".join("kafka://" + part.split("://", 1)[-1] for part in url.split(","))
    env = {
        **clean_env(),
        "BENCH_FLOOR_APP": f"floor-{uuid.uuid4().hex[:6]}",
        "BENCH_FLOOR_BROKER": stock_url,
        "BENCH_FLOOR_DATADIR": str(workdir / "floor-data"),
        "BENCH_FLOOR_TOTAL": str(total),
        "BENCH_FLOOR_OUT": str(out),
        "BENCH_FLOOR_ONPREM": onprem,
        "BENCH_FLOOR_CLOUD": cloud,
    }
    with open(workdir / "floor.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "faust", "-A", "dqhash.tools.bench.floor", "worker", "-l", "warn"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + timeout_s
        while not out.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Faust floor did not finish; see {workdir / 'floor.log'}")
            time.sleep(0.2)  # polling a file another process writes
        result = json.loads(out.read_text())
        return result["n"] / (result["last"] - result["first"])
    finally:
        stop_worker(process)
