"""``dqhash snapshot scan``: the cloud side of a snapshot run, read by token range.

Ranges are read a bounded number at a time, each a page at a time, within a rows/s budget. Each row is
hashed by the shared hasher and published to Topic-2 at its PK's partition, tagged with the run and its
range. A range is checkpointed once all its rows are delivered: an interrupted scan resumes with the ranges
it had not finished (their rows may be sent twice; the reconciler counts a PK once per side).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson

from dqhash.cloud.scanner import RangeScan
from dqhash.cloud.tables import OnPremNames
from dqhash.core.catalog import TableSpec
from dqhash.core.hashing import RowHasher
from dqhash.core.range_digests import ChunkDigests, Comparison, by_range
from dqhash.core.record_keys import canonical_pk
from dqhash.core.timeutil import now_ms
from dqhash.core.token_ranges import chunk_bounds, split
from dqhash.settings import Settings
from dqhash.tools.snapshot.common import Budget, SidePublisher, say
from dqhash.tools.snapshot.digests import DigestPassFailed, DigestPlan, exchange, failure
from dqhash.tools.snapshot.spill import Spill


class Checkpoint:
    """Finished ranges and their rows per partition, in a JSON file replaced atomically after each range.

    One file holds every run of a scan of several tables (``runs``: run id → its ranges), so a catalog-wide scan
    resumes from one checkpoint; :meth:`run` gives the view of one table's run.
    """

    def __init__(self, path: Path, snapshot_id: str, splits: int) -> None:
        self.path, self.snapshot_id, self.splits = path, snapshot_id, splits
        self.runs: dict[str, dict[str, Any]] = {}
        if path.exists():
            saved = orjson.loads(path.read_bytes())
            if saved.get("snapshot_id") != snapshot_id or saved.get("splits") != splits:
                raise ValueError(
                    f"checkpoint {path} belongs to snapshot {saved.get('snapshot_id')!r} with "
                    f"{saved.get('splits')} splits, not {snapshot_id!r} with {splits}: give another --checkpoint"
                )
            runs = saved.get("runs") or {snapshot_id: saved}  # a file of one run, as earlier versions wrote it
            for run_id, run in runs.items():
                done = {int(r): {int(p): n for p, n in c.items()} for r, c in run["done"].items()}
                self.runs[run_id] = {"started_ts": run.get("started_ts"), "done": done}
        self._current = self.snapshot_id

    def run(self, run_id: str) -> Checkpoint:
        """The same file, seen as the checkpoint of the run ``run_id`` (one table's side of the scan)."""
        view = object.__new__(Checkpoint)
        view.path, view.snapshot_id, view.splits, view.runs, view._current = (
            self.path, self.snapshot_id, self.splits, self.runs, run_id,
        )  # fmt: skip
        return view

    @property
    def _own(self) -> dict[str, Any]:
        return self.runs.setdefault(self._current, {"started_ts": None, "done": {}})

    @property
    def done(self) -> dict[int, dict[int, int]]:
        return self._own["done"]  # type: ignore[no-any-return]

    @property
    def started_ts(self) -> int | None:
        return self._own["started_ts"]  # type: ignore[no-any-return]

    @started_ts.setter
    def started_ts(self, value: int | None) -> None:
        self._own["started_ts"] = value

    @property
    def run_id(self) -> str:
        return self._current

    def finish(self, token_range: int, per_partition: dict[int, int]) -> None:
        self.finish_all({token_range: per_partition})

    def finish_all(self, ranges: dict[int, dict[int, int]]) -> None:
        """Ranges done, each with its rows per partition, written in one replace of the file."""
        self.done.update(ranges)
        runs = {
            run_id: {
                "started_ts": run["started_ts"],
                "done": {str(r): {str(p): n for p, n in c.items()} for r, c in run["done"].items()},
            }
            for run_id, run in self.runs.items()
        }
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        tmp.write_bytes(orjson.dumps({"snapshot_id": self.snapshot_id, "splits": self.splits, "runs": runs}))
        os.replace(tmp, self.path)

    def rows_per_partition(self) -> dict[int, int]:
        totals: dict[int, int] = {}
        for per_partition in self.done.values():
            for partition, n in per_partition.items():
                totals[partition] = totals.get(partition, 0) + n
        return totals


async def scan(
    settings: Settings,
    source: RangeScan,
    hasher: RowHasher,
    snapshot_id: str,
    splits: int,
    only_ranges: set[int] | None,
    parallel: int,
    rows_per_second: float | Budget,
    checkpoint: Checkpoint,
    table: TableSpec | None = None,
    digests: DigestPlan | None = None,
) -> int:
    """Scan the table; returns the number of ranges that failed (0: the cloud side is complete).

    ``table``: the catalog table scanned (its rows named, hashed under its on-prem column names); a
    :class:`Budget` shared by the scans of several tables keeps them all within one rows/s budget.
    ``digests``: prove the run chunk by chunk (``tools.snapshot.digests``): every range is read once to digest
    it and its rows kept; the kept rows of the chunks whose digests differ are then published. A run resumed
    after its rows were lost reads those chunks again."""
    ranges = split(splits)
    wanted, todo = _ranges_to_read(splits, only_ranges, checkpoint)
    extra: dict[str, Any] = {"splits": splits, "ranges": sorted(only_ranges) if only_ranges is not None else None}
    name = table.name if table is not None else None
    side = await SidePublisher(settings, "cloud", snapshot_id, settings.cloud_topic, extra, name).start()
    budget = rows_per_second if isinstance(rows_per_second, Budget) else Budget(rows_per_second)
    reading = _Reading(source, hasher, OnPremNames(table) if table is not None else None, budget)
    failed: list[int] = []
    chunks: dict[int, list[int]] | None = None  # range → its chunks to read, in a run proven by digests

    async def read_range(index: int) -> None:
        per_partition: dict[int, int] = {}
        for start, end in _bounds(ranges[index], chunks, index, digests):
            async for rows in reading.pages(start, end):
                read_at = now_ms()
                for row in rows:
                    pk, value = reading.record(row, index, read_at, snapshot_id)
                    partition = await side.send(pk, value)
                    per_partition[partition] = per_partition.get(partition, 0) + 1
                await _progress(side, checkpoint, wanted, todo)
        await side.producer.flush()  # the range's rows are delivered before it counts as done
        checkpoint.finish(index, per_partition)

    kept: Spill | None = None
    try:
        if digests is not None:
            comparison, kept = await _compare(side, reading, digests, ranges, wanted, parallel, checkpoint)
            chunks = by_range(comparison.differing, digests.chunks_per_range)
        if kept is not None:  # the rows read to digest them: no range is read again
            await _publish_kept(side, kept, comparison.differing, todo, checkpoint, digests.chunks_per_range)  # type: ignore[union-attr]
        else:
            failed = await _each_range(todo, parallel, read_range)
        if failed:
            await side.progress("failed", force=True, ranges_failed=sorted(failed), error="token ranges failed")
            return len(failed)
        await side.finish(
            checkpoint.started_ts,
            checkpoint.rows_per_partition(),
            ranges_total=len(wanted),
            ranges_done=len(wanted),
            rows_total=sum(checkpoint.rows_per_partition().values()),
        )
        say(f"dqhash snapshot scan: {snapshot_id} complete: {sum(checkpoint.rows_per_partition().values()):,} rows")
        if kept is not None:
            kept.close(remove=True)
        return 0
    except asyncio.CancelledError:  # SIGINT or SIGTERM (``dqhash.cli.common.run_until_signal``)
        await side.progress("failed", force=True, error="interrupted: run the same command again to resume")
        raise
    except BaseException as exc:
        if not isinstance(exc, Exception) or not failed:
            await side.progress("failed", force=True, error=failure(exc))
        raise
    finally:
        if kept is not None:
            kept.close()
        await side.stop()


def _ranges_to_read(splits: int, only_ranges: set[int] | None, checkpoint: Checkpoint) -> tuple[list[int], list[int]]:
    """The ranges the run covers, and those of them its checkpoint has not done (saying so when it resumes)."""
    wanted = [i for i in range(splits) if only_ranges is None or i in only_ranges]
    todo = [i for i in wanted if i not in checkpoint.done]
    if checkpoint.started_ts is None:
        checkpoint.started_ts = now_ms()
    if len(todo) < len(wanted):
        run = checkpoint.run_id
        say(f"dqhash snapshot scan: resuming {run}: {len(wanted) - len(todo)} of {len(wanted)} ranges done")
    return wanted, todo


def _bounds(
    bounds: tuple[int, int], chunks: dict[int, list[int]] | None, index: int, digests: DigestPlan | None
) -> list[tuple[int, int]]:
    """What a range's read covers: the whole range, or (a run proven chunk by chunk) its chunks that differ."""
    if chunks is None or digests is None:
        return [bounds]
    return [chunk_bounds(bounds, chunk, digests.chunks_per_range) for chunk in chunks.get(index, ())]


async def _progress(side: SidePublisher, checkpoint: Checkpoint, wanted: list[int], todo: list[int]) -> None:
    done = len([i for i in wanted if i in checkpoint.done])
    percent = 100.0 * done / len(wanted) if wanted else 100.0
    scanned_ranges = done - (len(wanted) - len(todo))
    eta = None
    if scanned_ranges > 0:
        eta = (len(wanted) - done) * side.elapsed() / scanned_ranges
    await side.progress(
        "running",
        percent=round(percent, 1),
        eta_s=round(eta, 1) if eta is not None else None,
        ranges_total=len(wanted),
        ranges_done=done,
    )


def spill_path(checkpoint: Checkpoint) -> Path:
    """Where a scan proven chunk by chunk keeps its rows: beside its checkpoint, one file per run."""
    return checkpoint.path.with_name(f"{checkpoint.path.name}.{checkpoint.run_id}.rows")


async def _compare(
    side: SidePublisher,
    reading: _Reading,
    digests: DigestPlan,
    ranges: list[tuple[int, int]],
    wanted: list[int],
    parallel: int,
    checkpoint: Checkpoint,
) -> tuple[Comparison, Spill | None]:
    """The digest exchange, and the rows the digest pass kept (None where this side reused digests published
    earlier and their rows are not kept: the chunks that differ are then read again)."""
    made: list[Spill] = []

    async def digest_pass() -> ChunkDigests:
        spill = Spill(spill_path(checkpoint))
        made.append(spill)
        cut = await reading.digest(side, ChunkDigests(ranges, digests.chunks_per_range), wanted, parallel, spill)
        spill.keep()
        return cut

    try:
        comparison = await exchange(side, digests, len(ranges), digest_pass)
    except BaseException:
        for spill in made:
            spill.close()
        raise
    return comparison, made[0] if made else Spill.kept(spill_path(checkpoint))


async def _publish_kept(
    side: SidePublisher, kept: Spill, differing: frozenset[int], todo: list[int], checkpoint: Checkpoint, per_range: int
) -> None:
    """The kept rows of the chunks that differ, in the ranges not yet done; every such range then done at once."""
    done: dict[int, dict[int, int]] = {index: {} for index in todo}
    for chunk, pk, value in kept.rows_of(differing):
        counts = done.get(chunk // per_range)
        if counts is None:
            continue  # a range a run before this one delivered
        partition = await side.send(pk, value)
        counts[partition] = counts.get(partition, 0) + 1
        await side.progress("running", phase="rows")
    await side.producer.flush()  # the rows are delivered before their ranges count as done
    checkpoint.finish_all(done)


async def _each_range(indices: list[int], parallel: int, read: Callable[[int], Awaitable[None]]) -> list[int]:
    """``read`` every range, ``parallel`` at a time; the ranges that failed for good (each said), in any order."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in indices:
        queue.put_nowait(index)
    failed: list[int] = []

    async def worker() -> None:
        while True:
            try:
                index = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            try:
                await read(index)
            except Exception as exc:  # a range that fails for good is reported, and read again by a rerun
                failed.append(index)
                say(f"dqhash snapshot scan: token range {index} failed: {type(exc).__name__}: {exc}")

    await asyncio.gather(*(worker() for _ in range(max(1, parallel))))
    return failed


class _Reading:
    """The cloud rows of a scan: read within the budget, keyed and hashed as the on-prem side does."""

    def __init__(self, source: RangeScan, hasher: RowHasher, names: OnPremNames | None, budget: Budget) -> None:
        self.source, self.hasher, self.names, self.budget = source, hasher, names, budget
        self.key_columns = source.key_columns

    async def pages(self, start: int, end: int) -> AsyncIterator[list[dict[str, Any]]]:
        async for rows in self.source.pages(start, end):
            await self.budget.take(len(rows))
            yield rows

    def pk(self, row: dict[str, Any]) -> str:
        return canonical_pk([v if isinstance(v, (str, int)) else str(v) for v in (row[c] for c in self.key_columns)])

    def record(self, row: dict[str, Any], index: int, read_at: int, snapshot_id: str) -> tuple[str, dict[str, Any]]:
        """A row as (pk, its Topic-2 record): ``read_at`` is when its page was read."""
        digest, columns = self.hasher.hash_and_digests(row if self.names is None else self.names.as_onprem(row))
        pk = self.pk(row)
        return pk, {
            "pk": pk,
            "hash_cloud": digest.digest,
            "hash_version": digest.version,
            "cloud_ts": read_at,
            "snapshot_id": snapshot_id,
            "range": index,
            "column_digests": columns,
        }

    async def digest(
        self, side: SidePublisher, digests: ChunkDigests, wanted: list[int], parallel: int, spill: Spill
    ) -> ChunkDigests:
        """Every row of the ``wanted`` ranges read once: its record kept and added to its chunk's digest. A
        range that cannot be read, or holds a row that cannot be hashed, fails the pass as it fails a scan."""

        async def digest_range(index: int) -> None:
            async for rows in self.pages(*digests.ranges[index]):
                read_at = now_ms()
                for row in rows:
                    pk, value = self.record(row, index, read_at, side.snapshot_id)
                    chunk = digests.add(index, self.source.token(row), pk, value["hash_version"], value["hash_cloud"])
                    spill.add(chunk, pk, value)
                await side.progress("running", phase="digests", rows_digested=digests.rows)

        failed = await _each_range(wanted, parallel, digest_range)
        if failed:
            raise DigestPassFailed(
                f"{len(failed)} token range(s) could not be read to digest them ({sorted(failed)[:10]}): nothing was "
                "published; run the same command again"
            )
        return digests
