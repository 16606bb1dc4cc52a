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

log = logging.getLogger(__name__)

#: the arenas glibc may create, for every dqhash process (docker/Dockerfile, tools.runner.local_worker_env)
ARENA_MAX = "2"


def trimmer() -> Callable[[], bool] | None:
    """A call of glibc's ``malloc_trim(0)`` (True when it returned memory), or None where there is no glibc."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return lambda: bool(trim(0))
