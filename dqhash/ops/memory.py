"""Giving freed memory back to the system: glibc's ``malloc_trim`` on a timer.

A worker's bursts (a deadline sweep of a large backlog, a takeover's rebuild, a batch of large outputs) free their
memory into glibc's arenas, which keep it: the worker's RSS stays at its peak. ``malloc_trim(0)`` returns the free
pages at the top of each arena, and ``MALLOC_ARENA_MAX=2`` (set in the image and for local workers: glibc reads it
at start) keeps the arenas few, so little is stranded in them. Off glibc (musl, macOS) there is nothing to call.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

#: the arenas glibc may create, for every dqhash process (docker/Dockerfile, tools.runner.local_worker_env)
ARENA_MAX = "2"


def _glibc(function: str) -> Any:
    """One of glibc's functions, or None where there is no glibc (musl, macOS) or it lacks the function."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return getattr(ctypes.CDLL(name), function)
    except (OSError, AttributeError):
        return None


def trimmer() -> Callable[[], bool] | None:
    """A call of glibc's ``malloc_trim(0)`` (True when it returned memory), or None where there is no glibc."""
    trim = _glibc("malloc_trim")
    if trim is None:
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return lambda: bool(trim(0))


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )  # fmt: skip
    ]


def _mallinfo2() -> Callable[[], _MallInfo2] | None:
    call = _glibc("mallinfo2")  # glibc 2.33 and later
    if call is None:
        return None
    call.argtypes, call.restype = [], _MallInfo2
    return call  # type: ignore[no-any-return]


_MALLINFO2 = _mallinfo2()


def process_memory() -> dict[str, int]:
    """The process's memory in bytes, by where it lives: RSS and its peak, what glibc's malloc holds in use (RocksDB's
    C++ allocations and Python's large objects) and free (freed but kept by malloc), and the rest of the RSS
    (Python's small-object arenas, code, stacks). Only what can be read cheaply: this is asked every few seconds."""
    parts = {"rss": 0, "rss_peak": 0}
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    parts["rss" if line.startswith("VmRSS") else "rss_peak"] = int(line.split()[1]) * 1024
    except OSError:  # not Linux
        return parts
    if _MALLINFO2 is not None:
        info = _MALLINFO2()
        parts["malloc_in_use"] = info.uordblks + info.hblkhd
        parts["malloc_free"] = info.fordblks
        parts["outside_malloc"] = max(0, parts["rss"] - info.arena - info.hblkhd)
    return parts
