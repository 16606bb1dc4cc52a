"""The Murmur3 token ring split into equal ranges, as the Cassandra tools split it for a full-table scan.

Cassandra's Murmur3Partitioner gives every partition key a token in (-2**63, 2**63 - 1]. Range ``i`` of
``n`` is ``(start, end]``; together they cover the ring once. Both sides of a snapshot number a row's range
the same way, so a report can say which ranges differ and a rerun can cover only those.
"""

from __future__ import annotations

from bisect import bisect_left

MIN_TOKEN = -(2**63)
MAX_TOKEN = 2**63 - 1


def split(n: int) -> list[tuple[int, int]]:
    """``n`` contiguous ``(start, end]`` ranges covering the ring."""
    if n < 1:
        raise ValueError("a ring splits into at least one range")
    width = (MAX_TOKEN - MIN_TOKEN) // n
    bounds = [MIN_TOKEN + i * width for i in range(n)] + [MAX_TOKEN]
    return [(bounds[i], bounds[i + 1]) for i in range(n)]


def range_of(token: int, ranges: list[tuple[int, int]]) -> int:
    """The index of the range holding ``token``."""
    index = bisect_left([end for _, end in ranges], token)
    if index >= len(ranges) or not ranges[index][0] < token <= ranges[index][1]:
        raise ValueError(f"token {token} is outside the ring's ranges")
    return index
