"""``dqhash demo``: the whole pipeline on a mixed workload with known answers.

Starts the embedded broker (unless ``DQHASH_BROKER`` is set), creates the
topics, runs a real worker process, feeds every scenario, waits until every
event is accounted for and compares what came out with what must come out.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

from dqhash import settings as settings_module
from dqhash.broker import EmbeddedBroker, free_port
from dqhash.runner import (
    OutputReader, Outputs, clean_env, demo_topic_settings, produce, start_worker, stop_worker, worker_env,
)
from dqhash.timeutil import now_ms
from dqhash.topics import create_topics
from dqhash.workload import Workload, build

#: Short windows so MISSING_CLOUD and late arrivals play out in seconds.
DEMO_WINDOW_S, DEMO_GRACE_S = 2, 3
IN_GRACE_DELAY_S = 1.0


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class UdpCounter:
    """Stands in for the DataDog agent: counts DogStatsD datagrams and metric lines received."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.lines: Counter = Counter()

    def drain(self) -> None:
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return
            for line in data.decode(errors="replace").splitlines():
                self.lines[line.split(":", 1)[0]] += 1

    def close(self) -> None:
        self.sock.close()


async def run(events: int, timeout_s: float | None = None) -> int:
    external = os.environ.get("DQHASH_BROKER")
    workdir = Path(tempfile.mkdtemp(prefix="dqhash-demo-"))
    broker = None if external else EmbeddedBroker(log_path=workdir / "broker.log")
    statsd = UdpCounter()
    worker = reader = None
    try:
        if broker:
            broker.start()
            say(f"embedded broker (Tansu) at {broker.url}")
        url = external or broker.url
        prefix = f"dqhash-demo-{uuid.uuid4().hex[:8]}"
        env = worker_env(
            clean_env(), DQHASH_BROKER=url, DQHASH_DATA_DIR=workdir / "data", DQHASH_WEB_PORT=free_port(),
            DQHASH_WEB_HOST="127.0.0.1", DQHASH_SESSION_TIMEOUT=6, DQHASH_WINDOW_SECONDS=DEMO_WINDOW_S,
            DQHASH_GRACE_SECONDS=DEMO_GRACE_S, DQHASH_TICK_SECONDS=0.2, DD_AGENT_HOST="127.0.0.1",
            DD_DOGSTATSD_PORT=statsd.port, DD_SERVICE="dqhash-demo", **demo_topic_settings(prefix),
        )
        settings = settings_module.load(env)
        await create_topics(settings)
        worker = start_worker(env, workdir / "worker.log")
        say(f"worker started (pid {worker.pid}, log {workdir / 'worker.log'}), topics prefixed {prefix}")
        reader = await OutputReader(settings.bootstrap_servers, settings.audit_topic, settings.dlq_topic,
                                    settings.metrics_topic).start()
        workload = build(events, now_ms(), run_id=prefix[-8:])
        started = time.monotonic()
        return await _drive(settings, workload, reader, worker, statsd, started, timeout_s or 60 + events / 200)
    finally:
        if reader:
            await reader.stop()
        if worker:
            code = stop_worker(worker)
            say(f"worker stopped (exit code {code})")
        if broker:
            broker.stop()
        statsd.close()
        shutil.rmtree(workdir, ignore_errors=True)


async def _drive(settings, workload: Workload, reader: OutputReader, worker, statsd: UdpCounter, started: float,
                 timeout_s: float) -> int:
    bootstrap = settings.bootstrap_servers
    say(f"producing {len(workload.onprem)} on-prem events and {len(workload.cloud_now)} cloud hashes")
    await asyncio.gather(
        produce(bootstrap, settings.onprem_topic, workload.onprem),
        produce(bootstrap, settings.cloud_topic, workload.cloud_now),
    )
    await asyncio.sleep(IN_GRACE_DELAY_S)  # the scenario itself: cloud data one second late, inside the grace
    await produce(bootstrap, settings.cloud_topic, workload.cloud_in_grace)

    late = dict(workload.cloud_late)
    expected_audit = sum(workload.expected_audit.values())
    expected_dlq = sum(workload.expected_dlq.values())
    deadline = time.monotonic() + timeout_s
    last_progress = 0.0

    def done(out: Outputs) -> bool:
        return (sum(out.audit.values()) >= expected_audit and sum(out.dlq.values()) >= expected_dlq
                and out.window_total("DUPLICATES") >= workload.expected_duplicates and not late)

    while not done(reader.outputs):
        if worker.poll() is not None:
            say(f"the worker exited with code {worker.returncode}; see its log")
            return 1
        ready = [pk for pk in late if pk in reader.outputs.missing_cloud_pks]
        if ready:  # the scenario: the cloud copy shows up after MISSING_CLOUD was declared
            await produce(bootstrap, settings.cloud_topic, [late.pop(pk) for pk in ready])
        if time.monotonic() - last_progress >= 1.0:
            last_progress = time.monotonic()
            out = reader.outputs
            say(f"  {time.monotonic() - started:5.1f}s  audit {sum(out.audit.values())}/{expected_audit}  "
                f"dlq {sum(out.dlq.values())}/{expected_dlq}  "
                f"duplicates {out.window_total('DUPLICATES')}/{workload.expected_duplicates}  late sent "
                f"{len(workload.cloud_late) - len(late)}/{len(workload.cloud_late)}")
        if time.monotonic() > deadline:
            say(f"timed out after {timeout_s:.0f}s waiting for every event to be accounted for")
            break
        reader.changed.clear()
        try:
            await asyncio.wait_for(reader.changed.wait(), 0.5)
        except asyncio.TimeoutError:
            pass
    elapsed = time.monotonic() - started
    await asyncio.sleep(0.5)  # let the last DogStatsD flush (every 0.3 s) arrive before counting datagrams
    statsd.drain()
    return _report(workload, reader.outputs, elapsed, statsd)


def _report(workload: Workload, out: Outputs, elapsed: float, statsd: UdpCounter) -> int:
    rows = []
    ok = True
    for (status, late), expected in sorted(workload.expected_audit.items()):
        actual = out.audit.get((status, late), 0)
        ok &= actual == expected
        rows.append((f"{status}{' (late)' if late else ''}", expected, actual))
    for (status, late), actual in sorted(out.audit.items()):
        if (status, late) not in workload.expected_audit:
            ok = False
            rows.append((f"{status}{' (late)' if late else ''}", 0, actual))
    rows.append(("duplicates (counted, not classified)", workload.expected_duplicates, out.window_total("DUPLICATES")))
    ok &= rows[-1][1] == rows[-1][2]
    for reason in sorted(set(workload.expected_dlq) | set(out.dlq)):
        expected, actual = workload.expected_dlq.get(reason, 0), out.dlq.get(reason, 0)
        ok &= expected == actual
        rows.append((f"DLQ {reason}", expected, actual))
    inputs = len(workload.onprem) + workload.cloud_records
    print(f"\ndqhash demo: {len(workload.onprem)} on-prem events, {workload.cloud_records} cloud hashes")
    print(f"{'outcome':40s} {'expected':>9s} {'actual':>9s}")
    for name, expected, actual in rows:
        print(f"{name:40s} {expected:9d} {actual:9d}{'' if expected == actual else '   <-- differs'}")
    windows = len(out.windows)
    print(f"\nwindows published: {windows} (per partition); DogStatsD lines received: {sum(statsd.lines.values())} "
          f"({', '.join(f'{k} {v}' for k, v in sorted(statsd.lines.items())[:6])}...)")
    print(f"{inputs} input records in {elapsed:.1f}s = {inputs / elapsed:,.0f} records/s end to end "
          f"(includes {DEMO_WINDOW_S + DEMO_GRACE_S}s of window + grace for the MISSING_CLOUD cases)")
    print("RESULT: every event accounted for, counts agree" if ok else "RESULT: counts differ from expected")
    return 0 if ok else 1


def main(events: int) -> int:
    try:
        return asyncio.run(run(events))
    except KeyboardInterrupt:
        say("interrupted; cleaned up")
        return 130
