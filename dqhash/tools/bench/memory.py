"""A benchmarked worker's memory (its RSS from ``/proc``, its parts from its own ``/dq/memory`` view) and CPU."""

from __future__ import annotations

from collections.abc import Mapping

import orjson


def memory_parts_mb(env: Mapping[str, str]) -> dict[str, float]:
    """The worker's ``/dq/memory`` view in MB: RocksDB's parts (block cache, memtables, table readers) apart from
    what malloc holds in use and free and the rest of the RSS; {} when the worker does not answer."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{env['DQHASH_WEB_PORT']}/dq/memory", timeout=10) as answer:
            parts = orjson.loads(answer.read())
    except OSError:  # a worker that has exited or does not answer in time: no parts, the RSS still stands
        return {}
    return {k: v if k == "rocksdb_instances" else round(v / 1e6, 1) for k, v in parts.items()}


def rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident set size of a process, MB."""
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            fields[name] = value
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def cpu_seconds(pid: int) -> float:
    """CPU time a process has used (user and system): the work a run cost it, less noisy than wall time on a
    shared machine."""
    import os

    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()  # past the command name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def parts_text(parts: Mapping[str, float]) -> str:
    return ", ".join(f"{name.replace('rocksdb_', 'RocksDB ')} {value}" for name, value in parts.items()) or "(none)"
