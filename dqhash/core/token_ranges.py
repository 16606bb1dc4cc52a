"""The Murmur3 token ring split into equal ranges, as the Cassandra tools split it for a full-table scan.

Cassandra's Murmur3Partitioner gives every partition key a token in (-2**63, 2**63 - 1]. Range ``i`` of
``n`` is ``(start, end]``; together they cover the ring once. Both sides of a snapshot number a row's range
the same way, so a report can say which ranges differ and a rerun can cover only those.
"""

from __future__ import annotations

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
    """The index of the range of :func:`split` holding ``token``: found by arithmetic, as the ranges are equal."""
    index = min((token - MIN_TOKEN - 1) // ((MAX_TOKEN - MIN_TOKEN) // len(ranges)), len(ranges) - 1)
    if index < 0 or not ranges[index][0] < token <= ranges[index][1]:
        raise ValueError(f"token {token} is outside the ring's ranges")
    return index


def chunk_of(token: int, bounds: tuple[int, int], chunks: int) -> int:
    """The index of the chunk holding ``token`` when the range ``(start, end]`` is cut into ``chunks`` equal parts."""
    start, end = bounds
    return (token - start - 1) * chunks // (end - start)


def chunk_bounds(bounds: tuple[int, int], chunk: int, chunks: int) -> tuple[int, int]:
    """Chunk ``chunk`` of ``chunks`` of the range ``(start, end]``, as :func:`chunk_of` places tokens: ``(start, end]``."""
    start, end = bounds
    width = end - start

    def edge(i: int) -> int:  # the last token of chunk i - 1: the largest t with (t - start - 1) * chunks < i * width
        return start + (i * width + chunks - 1) // chunks

    return edge(chunk), edge(chunk + 1)
