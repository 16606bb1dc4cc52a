"""Compact bytes for the per-PK state held in RocksDB and its changelog.

A positional JSON array (orjson) rather than a keyed object: state is written
once per event, so its size is paid in changelog bytes, RocksDB bytes and
serialisation time on the hot path. Field order is the NamedTuple order; add
fields only at the end, with a default, so older records stay readable.
"""

from __future__ import annotations

import orjson

from dqhash.classify import CloudSeen, PairState, Status, Tracked, Verdict

FORMAT = 1


def encode_state(state: PairState) -> bytes:
    tracked, cloud, recent, updated_ms, applied, history, origins, outbox = state
    return orjson.dumps([FORMAT, tuple(tracked) if tracked else None, tuple(cloud) if cloud else None, recent,
                         updated_ms, applied, history, origins, [tuple(v) for v in outbox]])


def decode_state(data: bytes) -> PairState:
    fmt, tracked, cloud, recent, updated_ms, *later = orjson.loads(data)
    if fmt != FORMAT:
        raise ValueError(f"unknown pair-state format {fmt}; this worker reads format {FORMAT}")
    applied, history, origins, outbox = (later + [None] * 4)[:4]  # absent in records written before these fields
    return PairState(
        _tracked(tracked) if tracked else None,
        _cloud(cloud) if cloud else None,
        tuple(recent),
        updated_ms,
        tuple(applied) if applied else (-1, -1, -1),
        tuple(tuple(entry) for entry in history) if history else (),
        tuple(origins) if origins else (),
        tuple(_verdict(fields) for fields in outbox) if outbox else (),
    )


def _verdict(fields: list) -> Verdict:
    verdict = Verdict(*fields)
    return verdict._replace(status=Status(verdict.status), recheck_results=tuple(verdict.recheck_results))


def _tracked(fields: list) -> Tracked:
    tracked = Tracked(*fields)  # fields added later have defaults, so older records still load
    return tracked._replace(recheck_results=tuple(tracked.recheck_results))


def _cloud(fields: list) -> CloudSeen:
    seen = CloudSeen(*fields)
    return seen._replace(columns_removed=tuple(seen.columns_removed))
