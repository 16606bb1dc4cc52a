"""Where window counts live in the pair table: under keys no PK can have (0xFF never occurs in UTF-8).

Window counts share the pair table (and so its changelog partition) with the pair changes that caused
them, so both are recovered together.
"""

from __future__ import annotations

from functools import lru_cache

WINDOW_PREFIX = b"\xff"


@lru_cache(maxsize=4096)  # every verdict counts into its window: the key of a few windows, over and over
def window_key(partition: int, start: int) -> bytes:
    return WINDOW_PREFIX + f"{partition}:{start}".encode()


def is_window_key(key: bytes) -> bool:
    return key[:1] == WINDOW_PREFIX


def window_start_of(key: bytes) -> int:
    return int(key[1:].decode().rsplit(":", 1)[1])


def window_partition_of(key: bytes) -> int:
    return int(key[1:].decode().split(":", 1)[0])
