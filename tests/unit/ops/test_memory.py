"""Freed memory given back: glibc's malloc_trim, called on a timer in every worker."""

import platform

import pytest

from dqhash.ops.memory import ARENA_MAX, trimmer


def test_malloc_trim_is_called_where_there_is_glibc():
    trim = trimmer()
    if platform.libc_ver()[0] != "glibc":
        pytest.skip(f"no glibc here ({platform.libc_ver()[0] or 'unknown libc'}): nothing to trim")
    assert trim is not None
    big = [bytearray(1 << 20) for _ in range(64)]  # 64 MB freed below: something to give back
    del big
    assert trim() in (True, False) and ARENA_MAX == "2"


def test_every_local_worker_bounds_its_arenas():
    from pathlib import Path

    from dqhash.tools.runner import local_worker_env

    assert local_worker_env("tansu://127.0.0.1:1", Path("/tmp/x"), "p", 1, 1, 0.2, 9)["MALLOC_ARENA_MAX"] == "2"
    assert "MALLOC_ARENA_MAX=2" in (Path(__file__).parents[3] / "docker" / "Dockerfile").read_text()
