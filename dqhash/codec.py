"""Compact bytes for the per-PK state held in RocksDB and its changelog.

A positional JSON array (orjson) rather than a keyed object: state is written
once per event, so its size is paid in changelog bytes, RocksDB bytes and
serialisation time on the hot path. Field order is the NamedTuple order; add
fields only at the end, with a default, so older records stay readable.
"""

from __future__ import annotations

import orjson

from dqhash.classify import CloudSeen, PairState, Tracked

FORMAT = 1


def encode_state(state: PairState) -> bytes:
    tracked, cloud, recent, updated_ms = state
    return orjson.dumps([FORMAT, tuple(tracked) if tracked else None, tuple(cloud) if cloud else None, recent, updated_ms])


def decode_state(data: bytes) -> PairState:
    fmt, tracked, cloud, recent, updated_ms = orjson.loads(data)
    if fmt != FORMAT:
        raise ValueError(f"unknown pair-state format {fmt}; this worker reads format {FORMAT}")
    return PairState(
        _tracked(tracked) if tracked else None,
        _cloud(cloud) if cloud else None,
        tuple(recent),
        updated_ms,
    )


def _tracked(fields: list) -> Tracked:
    tracked = Tracked(*fields)  # fields added later have defaults, so older records still load
    return tracked._replace(recheck_results=tuple(tracked.recheck_results))


def _cloud(fields: list) -> CloudSeen:
    seen = CloudSeen(*fields)
    return seen._replace(columns_removed=tuple(seen.columns_removed))
