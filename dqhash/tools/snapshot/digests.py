"""The digest exchange of a snapshot run with ``--chunks-per-range`` (``core.range_digests``), for either side.

A side digests every row once, publishes its digests to the snapshots topic, and waits (bounded) for the
other side's; both then publish, row by row, only the chunks whose digests differ. A side run again under the
same snapshot id reuses the digests it published, so the two sides always compare the same two sets: a side
that digested again might see a changed table and publish other rows than its partner.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson

from dqhash.core import range_digests
from dqhash.core.range_digests import ChunkDigests, Comparison, SideDigests
from dqhash.core.snapshots import SIDES
from dqhash.core.timeutil import now_ms
from dqhash.kafka.snapshot_log import read_snapshot_records
from dqhash.tools.snapshot.common import SidePublisher, say

#: how often the snapshots topic is read again while waiting for the other side's digests
POLL_S = 1.0


@dataclass(frozen=True)
class DigestPlan:
    """A run proven chunk by chunk: each token range cut into ``chunks_per_range`` chunks; the other side's
    digests awaited for at most ``wait_s``."""

    chunks_per_range: int
    wait_s: float = 600.0


class DigestWaitTimeout(RuntimeError):
    """The other side's digests did not come in time: nothing was published row by row."""


class DigestPassFailed(RuntimeError):
    """Rows could not be read to digest them: no digests were published, and no row."""


#: why a run proven chunk by chunk stops before its rows; each message says what to do
NOT_PROVEN = (DigestWaitTimeout, DigestPassFailed, range_digests.DigestsDiffer)


def failure(exc: BaseException) -> str:
    """What a side's failed progress record says: the message alone where it already says what to do."""
    return str(exc) if isinstance(exc, NOT_PROVEN) else f"{type(exc).__name__}: {exc}"


async def exchange(
    side: SidePublisher, plan: DigestPlan, splits: int, digest_pass: Callable[[], Awaitable[ChunkDigests]]
) -> Comparison:
    """This side's digests (published now, or earlier under the same run), the other side's, and what they prove.

    Raises :class:`DigestWaitTimeout` when the other side's digests do not come, and
    ``range_digests.DigestsDiffer`` when the two sides cut the ring differently (:data:`NOT_PROVEN`)."""
    settings, run = side.settings, side.snapshot_id
    other = SIDES[1 - SIDES.index(side.side)]
    found = await read_snapshot_records(settings)
    mine = range_digests.read_side(found, side.side, run)
    if mine is not None and (mine.splits, mine.chunks_per_range) == (splits, plan.chunks_per_range):
        say(f"  {side.side} {run}: using the digests this side published earlier ({len(mine.chunks):,} chunks)")
    else:
        mine = await _publish(side, await digest_pass())
    theirs = await _wait_for(side, other, plan.wait_s)
    onprem, cloud = (mine, theirs) if side.side == SIDES[0] else (theirs, mine)
    comparison = range_digests.compare(onprem, cloud)
    side.extra["digests"] = {
        "chunks_per_range": plan.chunks_per_range,
        "chunks_proven": comparison.chunks_proven,
        "chunks_differing": len(comparison.differing),
        "rows_proven": comparison.rows_proven,
    }
    say(
        f"  {side.side} {run}: {comparison.chunks_proven:,} chunks ({comparison.rows_proven:,} rows) proven by "
        f"their digests; {len(comparison.differing):,} chunks to publish row by row"
    )
    return comparison


async def _publish(side: SidePublisher, digests: ChunkDigests) -> SideDigests:
    digest_id, at = uuid.uuid4().hex[:12], now_ms()
    for key, value in range_digests.records(digests, side.side, side.snapshot_id, digest_id, at):
        await side.producer.send(side.settings.snapshot_topic, orjson.dumps(value), key=key.encode())
    await side.producer.flush()
    frozen = {cid: (count, total) for cid, (count, total) in digests.chunks.items()}
    return SideDigests(digest_id, len(digests.ranges), digests.chunks_per_range, frozen)


async def _wait_for(side: SidePublisher, other: str, wait_s: float) -> SideDigests:
    deadline = time.monotonic() + wait_s
    while True:
        theirs = range_digests.read_side(await read_snapshot_records(side.settings), other, side.snapshot_id)
        if theirs is not None:
            return theirs
        if time.monotonic() >= deadline:
            error = (
                f"the {other} side's digests of {side.snapshot_id} did not come within {wait_s:.0f}s: run the {other} "
                "side with the same --snapshot-id, --splits and --chunks-per-range (both sides must run within "
                "--digest-wait of each other), then run this side again"
            )
            raise DigestWaitTimeout(error)
        await side.progress("running", waiting_for=f"the {other} side's digests")
        await asyncio.sleep(POLL_S)  # polling a topic another process writes: no event to await
