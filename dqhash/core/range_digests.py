"""A snapshot run proven chunk by chunk: each side digests its rows per chunk of a token range, and only the
chunks whose digests differ are published row by row.

The tools that compare large tables work this way (pt-table-checksum's chunk checksums, data-diff's segment
checksums, the Merkle trees of Cassandra's repair). Each token range of the run (``--splits``) is cut into
``chunks_per_range`` equal chunks (``core.token_ranges.chunk_of``). A side's digest of a chunk is its row count
and the sum, modulo 2**128, of a SHA-256 of each row's (PK, hash version, hash): the sum does not depend on the
order rows are read in, so an export in any order digests as the cloud's token-ordered scan does.

A chunk is **proven** when both sides' counts and sums agree: its rows count as ``MATCH`` without a pair
state each. Every other chunk (different, present on one side only, or holding a row a side could not read)
is published row by row and judged by the reconciler as in any run. Both sides derive that set from the same
two digest sets, so they publish the same rows: a row one side sent and the other did not would be a false
``MISSING_CLOUD``. Pure: the adapters (``tools.snapshot.digests``) carry the records.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from dqhash.core.token_ranges import chunk_of

#: the digest's width: a sum of 128-bit parts (two 64-bit halves on the wire)
_BITS = 128
_MASK = (1 << _BITS) - 1
#: a chunk on the wire: its id (range * chunks_per_range + chunk), its count (-1: a row it holds could not be
#: read), its sum's high and low halves
_ENTRY = struct.Struct(">QqQQ")
#: chunks per digests record: about 350 KB of base64 a record, under a broker's default message size (1 MB)
CHUNKS_PER_RECORD = 8192
#: the most chunks a token range may be cut into
MAX_CHUNKS_PER_RANGE = 1 << 20
#: a chunk holding a row that could not be read: it never agrees, so its rows are published row by row
UNREADABLE = -1
RECORD_TYPE = "digests"


def row_digest(pk: str, version: str, digest: str) -> int:
    """One row's part of its chunk's sum: what the reconciler's MATCH compares (the PK, the hash and its
    version), hashed so that different rows do not cancel out in the sum."""
    text = f"{pk}\x1f{version}\x1f{digest}".encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:16], "big")


@dataclass
class ChunkDigests:
    """One side's digests of a run: chunk id → [row count, sum]. ``ranges`` are the run's token ranges."""

    ranges: list[tuple[int, int]]
    chunks_per_range: int
    chunks: dict[int, list[int]] = field(default_factory=dict)
    rows: int = 0  # rows digested (a row in an unreadable chunk counted too: it was read)

    def chunk_id(self, token_range: int, token: int) -> int:
        return token_range * self.chunks_per_range + chunk_of(token, self.ranges[token_range], self.chunks_per_range)

    def add(self, token_range: int, token: int, pk: str, version: str, digest: str) -> int:
        """Add a row to its chunk's digest; returns the chunk's id (where the row's record is kept)."""
        chunk = self.chunk_id(token_range, token)
        entry = self.chunks.setdefault(chunk, [0, 0])
        self.rows += 1
        if entry[0] != UNREADABLE:
            entry[0] += 1
            entry[1] = (entry[1] + row_digest(pk, version, digest)) & _MASK
        return chunk

    def unreadable(self, token_range: int, token: int) -> None:
        """A row of this chunk could not be hashed: the chunk is read row by row, where the row goes to the DLQ."""
        self.chunks[self.chunk_id(token_range, token)] = [UNREADABLE, 0]


def records(
    digests: ChunkDigests, side: str, snapshot_id: str, digest_id: str, now_ms: int
) -> Iterator[tuple[str, dict[str, Any]]]:
    """The snapshots topic's records of a side's digests, as (key, value): ``parts`` records of at most
    :data:`CHUNKS_PER_RECORD` chunks, each naming the pass (``digest_id``, ``digested_ms``) so parts of two
    passes never mix."""
    items = sorted(digests.chunks.items())
    parts = max(1, -(-len(items) // CHUNKS_PER_RECORD))
    for part in range(parts):
        chunk = items[part * CHUNKS_PER_RECORD : (part + 1) * CHUNKS_PER_RECORD]
        packed = b"".join(_ENTRY.pack(cid, count, total >> 64, total & (2**64 - 1)) for cid, (count, total) in chunk)
        yield (
            f"digests:{side}:{snapshot_id}:{part}",
            {
                "type": RECORD_TYPE,
                "side": side,
                "snapshot_id": snapshot_id,
                "digest_id": digest_id,
                "digested_ms": now_ms,
                "splits": len(digests.ranges),
                "chunks_per_range": digests.chunks_per_range,
                "part": part,
                "parts": parts,
                "rows": digests.rows,
                "chunks": base64.b64encode(packed).decode(),
            },
        )


@dataclass(frozen=True)
class SideDigests:
    """A side's digests as read back from the snapshots topic: complete, from one pass."""

    digest_id: str
    splits: int
    chunks_per_range: int
    chunks: dict[int, tuple[int, int]]


def _newest_pass(found: Iterable[dict[str, Any]], side: str, snapshot_id: str) -> list[dict[str, Any]] | None:
    """The records of a side's newest digest pass of the run, in part order; None until every part is there (an
    interrupted pass may have left parts under keys a newer pass does not reach)."""
    mine = [
        r
        for r in found
        if r.get("type") == RECORD_TYPE
        and r.get("side") == side
        and r.get("snapshot_id") == snapshot_id
        and _well_formed(r)
    ]
    if not mine:
        return None
    newest = max(mine, key=lambda r: (r.get("digested_ms") or 0, r.get("digest_id") or ""))
    same = {r["part"]: r for r in mine if r.get("digest_id") == newest["digest_id"]}
    if any(part not in same for part in range(newest["parts"])):
        return None
    return [same[part] for part in range(newest["parts"])]


#: a digests record's fields and their types: a record without them is not read (a report never fails on one)
_FIELDS = {"digest_id": str, "part": int, "parts": int, "splits": int, "chunks_per_range": int, "chunks": str}


def _well_formed(record: dict[str, Any]) -> bool:
    if not all(type(record.get(name)) is kind for name, kind in _FIELDS.items()):
        return False
    try:
        return len(base64.b64decode(record["chunks"], validate=True)) % _ENTRY.size == 0
    except ValueError:
        return False


def _decoded(parts: list[dict[str, Any]]) -> SideDigests:
    chunks: dict[int, tuple[int, int]] = {}
    for record in parts:
        for cid, count, high, low in _ENTRY.iter_unpack(base64.b64decode(record["chunks"])):
            chunks[cid] = (count, (high << 64) | low)
    first = parts[0]
    return SideDigests(first["digest_id"], first["splits"], first["chunks_per_range"], chunks)


def read_side(found: Iterable[dict[str, Any]], side: str, snapshot_id: str) -> SideDigests | None:
    """A side's digests of the run from the snapshots topic's records: its newest whole pass's, or None."""
    parts = _newest_pass(found, side, snapshot_id)
    return _decoded(parts) if parts is not None else None


#: comparisons already made, by the two passes compared: a report is built again and again from the same records
_COMPARED: dict[tuple[str, str, str], Comparison | str] = {}
_COMPARED_KEPT = 256


def proven(found: list[dict[str, Any]], snapshot_id: str) -> Comparison | str | None:
    """What the run's two digest sets prove, or why they cannot be compared (a message), or None until both are
    on the topic. Each pair of passes is decoded and compared once."""
    onprem, cloud = (_newest_pass(found, side, snapshot_id) for side in ("onprem", "cloud"))
    if onprem is None or cloud is None:
        return None
    key = (snapshot_id, onprem[0]["digest_id"], cloud[0]["digest_id"])
    known = _COMPARED.get(key)
    if known is None:
        try:
            known = compare(_decoded(onprem), _decoded(cloud))
        except DigestsDiffer as exc:
            known = str(exc)
        if len(_COMPARED) >= _COMPARED_KEPT:
            _COMPARED.pop(next(iter(_COMPARED)))
        _COMPARED[key] = known
    return known


class DigestsDiffer(ValueError):
    """The two sides cut the ring differently: their chunks cannot be compared."""


@dataclass(frozen=True)
class Comparison:
    """What two sides' digests prove: the chunks read row by row, and the rows proven per token range."""

    differing: frozenset[int]
    proven_rows: dict[int, int]  # token range → rows of its proven chunks (on each side)
    chunks_proven: int

    @property
    def rows_proven(self) -> int:
        return sum(self.proven_rows.values())


def compare(onprem: SideDigests, cloud: SideDigests) -> Comparison:
    """The one rule both sides and the report apply. Raises :class:`DigestsDiffer` when the cuts differ."""
    if (onprem.splits, onprem.chunks_per_range) != (cloud.splits, cloud.chunks_per_range):
        raise DigestsDiffer(
            f"the on-prem side cut the ring into {onprem.splits} ranges of {onprem.chunks_per_range} chunks and the "
            f"cloud side into {cloud.splits} of {cloud.chunks_per_range}: run both sides with the same --splits and "
            "--chunks-per-range under a new snapshot id"
        )
    differing: set[int] = set()
    proven: dict[int, int] = {}
    for cid in onprem.chunks.keys() | cloud.chunks.keys():
        mine, theirs = onprem.chunks.get(cid), cloud.chunks.get(cid)
        if mine is None or mine != theirs or mine[0] == UNREADABLE:
            differing.add(cid)
            continue
        token_range = cid // onprem.chunks_per_range
        proven[token_range] = proven.get(token_range, 0) + mine[0]
    chunks_proven = len(onprem.chunks.keys() | cloud.chunks.keys()) - len(differing)
    return Comparison(frozenset(differing), proven, chunks_proven)


def by_range(chunk_ids: Iterable[int], chunks_per_range: int) -> dict[int, list[int]]:
    """Chunk ids grouped by token range: range → its chunks (within the range), in ring order."""
    grouped: dict[int, list[int]] = {}
    for cid in sorted(chunk_ids):
        grouped.setdefault(cid // chunks_per_range, []).append(cid % chunks_per_range)
    return grouped


def covering(
    ranges: list[tuple[int, int]],
    only_ranges: set[int] | None,
    chunks_per_range: int = 0,
    chunks: frozenset[int] | None = None,
) -> Callable[[int, int], bool]:
    """Whether a row (its token range, its token) is published row by row: in the ranges a run covers
    (``--ranges-from``; None: all) and, in a run proven chunk by chunk, in a chunk whose digests differ."""
    cut = ChunkDigests(ranges, chunks_per_range) if chunks is not None else None

    def covers(token_range: int, token: int) -> bool:
        if only_ranges is not None and token_range not in only_ranges:
            return False
        return cut is None or cut.chunk_id(token_range, token) in chunks  # type: ignore[operator]

    return covers
