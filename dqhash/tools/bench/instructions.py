"""Instructions a record costs the engine, counted by valgrind: a figure the machine's load does not move.

On a shared machine the CPU time of the same code moves between runs by more than most changes to the engine
are worth (docs/performance.md, "How to measure"); the instructions a fixed workload executes do not. With hash
randomisation fixed, the count repeats to the instruction. ``dqhash bench-domain --instructions`` runs each workload below in a process of
its own under callgrind, and a process that builds the same inputs and runs none of them; the difference, per
record, is what ``Reconciler.process`` (or the floor) executed. It needs valgrind (``apt-get install valgrind``).

The workloads go through ``Reconciler.process`` on a dict table, the worker's work without Kafka or RocksDB, with
the worker's garbage collector settings:

- ``streaming``: each pair's on-prem event, then its cloud hash (a MATCH), as ``dqhash bench-domain`` times them;
- ``snapshot``: the rows of a snapshot run, the cloud scan's record of each row first, then the publish's (the
  scan runs ahead in ``dqhash bench --snapshot-rows``), both with the 9-column typed row's column digests;
- ``floor``: ``orjson.loads`` and a SHA-256 of each streaming record, the floor ``dqhash bench-domain`` divides by.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable

import orjson

from dqhash.core import compiled_engine
from dqhash.core.records import SOURCE_CLOUD, SOURCE_ONPREM, Input
from dqhash.tools.bench.domain import T0, TYPED_COLUMNS, input_batches, print_figures, sample_messages, typed_rows

#: the processes run: ``setup`` builds every input and runs nothing; each other one runs one workload
WORKLOADS = ("setup", "streaming", "snapshot", "floor")
#: valgrind's summary line: ``==123== I   refs:      4,870,988,782``
_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")
SNAPSHOT_ID = "bench-instructions"


class ValgrindMissing(RuntimeError):
    """valgrind is not installed: the count cannot be taken."""


def run(n: int) -> dict[str, object]:
    """Instructions per record of each workload over ``n`` pairs (streaming) and ``n`` rows (snapshot)."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise ValgrindMissing("valgrind is not installed; install it (apt-get install valgrind) to count instructions")
    counts = {workload: _count(valgrind, workload, n) for workload in WORKLOADS}
    setup = counts["setup"]
    streaming = (counts["streaming"] - setup) / (2 * n)
    snapshot = (counts["snapshot"] - setup) / (2 * n)
    floor = (counts["floor"] - setup) / n
    return {
        "pairs": n,
        "snapshot_rows": n,
        "engine": compiled_engine.describe(),
        "instructions_per_streaming_record": round(streaming),
        "instructions_per_snapshot_record": round(snapshot),
        "floor_instructions_per_record": round(floor),
        "streaming_to_floor": round(streaming / floor, 2),
        "snapshot_to_floor": round(snapshot / floor, 2),
        "setup_instructions": setup,
    }


def _count(valgrind: str, workload: str, n: int) -> int:
    with tempfile.TemporaryDirectory(prefix="dqhash-instructions-") as scratch:
        command = [valgrind, "--tool=callgrind", f"--callgrind-out-file={scratch}/callgrind.out"]
        command += [sys.executable, "-m", "dqhash.tools.bench.instructions", workload, str(n)]
        done = subprocess.run(
            command, capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"}, cwd=scratch
        )
    if done.returncode != 0:
        raise RuntimeError(f"the {workload} workload failed under valgrind:\n{done.stderr[-2000:]}")
    return refs(done.stderr)


def refs(valgrind_output: str) -> int:
    """The instructions valgrind counted, from its summary."""
    found = _REFS.search(valgrind_output)
    if found is None:
        raise RuntimeError(f"valgrind printed no instruction count:\n{valgrind_output[-2000:]}")
    return int(found.group(1).replace(",", ""))


def workloads(n: int) -> dict[str, Callable[[], None]]:
    """Each workload over inputs built beforehand, with a check that it did its work."""
    import hashlib

    from dqhash.engine.reconciler import Reconciler
    from dqhash.internals.worker import tune_garbage_collector
    from dqhash.ops.dogstatsd import Metrics
    from dqhash.settings import load

    settings = load({"DQHASH_SNAPSHOT_TOPIC": "bench-snapshots"})
    metrics = Metrics("127.0.0.1", 9, [], enabled=False)
    onprem, cloud = sample_messages(n)
    streaming_sides = [(SOURCE_ONPREM, settings.onprem_topic, onprem), (SOURCE_CLOUD, settings.cloud_topic, cloud)]
    streaming = input_batches(settings.partitions, streaming_sides, str)
    snapshot_sides = [(source, "bench", records) for source, records in snapshot_records(n)]
    snapshot = input_batches(settings.partitions, snapshot_sides, lambda i: str(i + 1))
    reconcilers = [
        Reconciler(settings, {}, metrics, lambda table, partition: iter(()), clock=lambda: T0 + 10) for _ in range(2)
    ]
    loads, sha256 = orjson.loads, hashlib.sha256
    tune_garbage_collector(settings.gc_threshold)  # as a worker runs

    def matches(reconciler: Reconciler, batches: list[list[Input]], want: int, name: str) -> None:
        made = sum(
            out.topic == settings.audit_topic and b'"status":"MATCH"' in (out.value or b"")
            for records in batches
            for out in reconciler.process(records)
        )
        if made != want:  # a count for work not done would be no figure
            raise RuntimeError(f"the {name} workload matched {made} of {want} pairs")

    def floor() -> None:
        for raw in onprem:
            loads(raw)
            sha256(raw).hexdigest()

    return {
        "setup": lambda: None,
        "streaming": lambda: matches(reconcilers[0], streaming, n, "streaming"),
        "snapshot": lambda: matches(reconcilers[1], snapshot, n, "snapshot"),
        "floor": floor,
    }


def snapshot_records(n: int) -> list[tuple[int, list[bytes]]]:
    """A snapshot run's records of ``n`` typed rows, as ``snapshot scan`` and ``snapshot publish`` write them."""
    from dqhash.core.hashing import RowHasher

    hasher = RowHasher("v2", types=TYPED_COLUMNS)
    onprem, cloud = [], []
    for row in typed_rows(n):
        pk = str(row["id"])
        digest, columns = hasher.hash_and_digests(row)
        shared = {"hash_version": digest.version, "snapshot_id": SNAPSHOT_ID, "range": 0, "column_digests": columns}
        cloud.append(orjson.dumps({"pk": pk, "hash_cloud": digest.digest, "cloud_ts": T0 + 5, **shared}))
        onprem.append(
            orjson.dumps(
                {
                    "event_id": f"{SNAPSHOT_ID}:{pk}",
                    "hash_onprem": digest.digest,
                    "partitionColumns": [{"type": "PK", "value": pk}],
                    "event_ts": T0,
                    "action": "SNAPSHOT",
                    **shared,
                }
            )
        )
    return [(SOURCE_CLOUD, cloud), (SOURCE_ONPREM, onprem)]


def main(n: int, as_json: bool) -> int:
    print_figures(run(n), as_json)
    return 0


if __name__ == "__main__":  # one workload, in the process valgrind counts
    workloads(int(sys.argv[2]))[sys.argv[1]]()
