"""The records that flow through dqhash: what comes in from a topic, and what goes out to one.

Plain tuples, built once per record on the hot path, so they stay NamedTuples (see ``dqhash.core.tuples``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

#: Inputs whose offsets each pair and window remember (index into ``PairState.applied`` / window "applied").
SOURCE_ONPREM, SOURCE_CLOUD, SOURCE_REKEY, SOURCE_TICK = range(4)

Headers = Sequence[tuple[str, bytes]]


class Out(NamedTuple):
    """A record to produce."""

    topic: str
    key: bytes | None
    value: bytes | None  # None: a tombstone (a table key deleted)
    headers: list[tuple[str, bytes]] | None = None
    partition: int | None = None


class Input(NamedTuple):
    """One record of a batch; ``source`` is one of the ``SOURCE_*`` inputs."""

    source: int
    topic: str
    partition: int
    offset: int
    key: bytes | None = None
    value: bytes | None = None
    headers: Headers | None = None
    timestamp_ms: int | None = None
