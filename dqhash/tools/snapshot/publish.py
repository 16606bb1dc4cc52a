"""``dqhash snapshot publish``: the reference on-prem side of a snapshot run.

Reads the on-prem table, from an export (JSON Lines, or CSV with a header) or from the source database itself
(``dqhash.source``), hashes every row by the shared spec (``core.hashing``: the same hasher as ``dqhash hash``,
export values read exactly by ``loads_exact``), and publishes each as a ``SNAPSHOT`` row on Topic-1 at its PK's
partition, then each partition's end marker. A row that cannot be read or hashed goes to the DLQ with its
reason and line (or row) number; the run goes on.
"""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from dqhash.cloud.tokens import TokenError, token_of
from dqhash.core.canonical import CanonicalError
from dqhash.core.hashing import RowHasher
from dqhash.core.input_columns import JSON_ROWS_SAMPLED, absent_columns
from dqhash.core.jsontext import JsonTextError, loads_exact
from dqhash.core.outputs import dlq_headers
from dqhash.core.range_digests import ChunkDigests, covering
from dqhash.core.record_keys import canonical_pk, key_text
from dqhash.core.token_ranges import range_of, split
from dqhash.settings import Settings
from dqhash.source.database import SourceTable
from dqhash.tools.snapshot.common import SidePublisher, say
from dqhash.tools.snapshot.digests import DigestPlan, exchange, failure
from dqhash.tools.snapshot.spill import Spill


class ExportError(ValueError):
    """One line of the export that cannot be published; ``reason`` becomes its DLQ reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


#: (line or row number, the raw line: None for a database row, made only for a dead letter, the row or its error)
Row = tuple[int, bytes | None, dict[str, Any] | ExportError]


@dataclass
class RowInput:
    """Where a run's on-prem rows come from, and how far through them it is."""

    columns: list[str]  # checked against what the run keys and hashes by, before anything is published
    where: str  # what the columns were read from, for that check's message
    rows: Iterator[Row]
    origin: str  # the dead letters' source: ``snapshot-export:<path>``, ``snapshot-source:<table>``
    total: int | None = None  # what progress counts towards: bytes of an export, rows of a table (an estimate)
    counts_rows: bool = False  # progress by rows read rather than by bytes


def source_input(table: SourceTable) -> RowInput:
    """The rows of a table of the source database (opened), numbered from 1."""
    rows = ((number, None, row) for number, row in enumerate(table.rows(), start=1))
    where = f"table {table.name} of the source database"
    return RowInput(table.columns, where, rows, f"snapshot-source:{table.name}", table.estimated_rows(), True)


def export_input(path: Path | None, stream: BinaryIO, fmt: str) -> RowInput:
    columns, where, rows = open_rows(stream, fmt)
    total = os.path.getsize(path) if path is not None else None
    return RowInput(columns, where, rows, f"snapshot-export:{path if path is not None else 'stdin'}", total)


def open_rows(stream: BinaryIO, fmt: str) -> tuple[list[str], str, Iterator[Row]]:
    """The input's columns (the CSV header, or the keys of the first JSON rows), what they were read from, and
    every row, so that the columns can be checked before anything is published."""
    if fmt == "csv":
        reader = csv.DictReader(io.TextIOWrapper(stream, encoding="utf-8", newline=""))
        return list(reader.fieldnames or []), "the CSV header", _csv_rows(reader)
    rows = _json_rows(stream)
    ahead = list(itertools.islice(rows, JSON_ROWS_SAMPLED))
    columns = [name for _, _, row in ahead if isinstance(row, dict) for name in row]
    return list(dict.fromkeys(columns)), f"the first {len(ahead):,} JSON rows", itertools.chain(ahead, rows)


def _placed(
    number: int,
    row: dict[str, Any] | ExportError,
    keys: tuple[Sequence[str], Sequence[str], dict[str, str]],
    ranges: Sequence[Any],
) -> tuple[dict[str, Any], int, int]:
    """The row, its token range and its token. Raises what makes the row a dead letter."""
    key_columns, partition_key, types = keys
    if isinstance(row, ExportError):
        raise row
    missing = [c for c in key_columns if row.get(c) in (None, "")]
    if missing:
        raise ExportError("MISSING_PK", f"line {number}: no value for key column(s) {missing}")
    token = token_of(row, partition_key, types)
    return row, range_of(token, ranges), token  # type: ignore[arg-type]


def _key_values(number: int, row: dict[str, Any], key_columns: Sequence[str]) -> list[str]:
    values = [key_text(row[c]) for c in key_columns]
    if any(v is None for v in values):
        raise ExportError("INVALID_PK", f"line {number}: key values must be strings or integers")
    return values  # type: ignore[return-value]


def _snapshot_event(
    number: int,
    row: dict[str, Any] | ExportError,
    snapshot_id: str,
    hasher: RowHasher,
    keys: tuple[Sequence[str], Sequence[str], dict[str, str]],
    ranges: Sequence[Any],
    covers: Callable[[int, int], bool],
) -> tuple[str, dict[str, Any]] | None:
    """One export row as (pk, its Topic-1 SNAPSHOT record without ``event_ts``); None where ``covers`` says the
    run does not publish it. ``keys``: the key columns, the partition key and the declared types. Raises what
    makes it a dead letter."""
    row, token_range, token = _placed(number, row, keys, ranges)
    if not covers(token_range, token):
        return None
    return _event(number, row, token_range, snapshot_id, hasher, keys[0])


def _event(
    number: int, row: dict[str, Any], token_range: int, snapshot_id: str, hasher: RowHasher, key_columns: Sequence[str]
) -> tuple[str, dict[str, Any]]:
    values = _key_values(number, row, key_columns)
    pk = canonical_pk(values)
    digest, columns = hasher.hash_and_digests(row)
    return pk, {
        "event_id": f"{snapshot_id}:{pk}",
        "hash_onprem": digest.digest,
        "hash_version": digest.version,
        "partitionColumns": [{"type": "PK", "value": v} for v in values],
        "event_ts": None,
        "action": "SNAPSHOT",
        "snapshot_id": snapshot_id,
        "range": token_range,
        "column_digests": columns,
    }


async def _digest_rows(
    side: SidePublisher,
    rows: RowInput,
    hasher: RowHasher,
    keys: tuple[Sequence[str], Sequence[str], dict[str, str]],
    digests: ChunkDigests,
    covers: Callable[[int, int], bool],
    spill: Spill,
) -> ChunkDigests:
    """Every row read once: its record built and kept (``spill``) and added to its chunk's digest. A row that
    cannot be published goes to the DLQ now, and marks its chunk when it has one, so that chunk is published
    row by row (without it, as in a run row by row)."""
    for number, raw, row in rows.rows:
        try:
            row, token_range, token = _placed(number, row, keys, digests.ranges)
        except (ExportError, TokenError, CanonicalError, ValueError) as exc:
            await _dead_letter(side, rows.origin, number, raw, row, exc)
            continue
        if not covers(token_range, token):
            continue
        try:
            pk, event = _event(number, row, token_range, side.snapshot_id, hasher, keys[0])
        except (ExportError, TokenError, CanonicalError, ValueError) as exc:
            digests.unreadable(token_range, token)
            await _dead_letter(side, rows.origin, number, raw, row, exc)
            continue
        spill.add(digests.add(token_range, token, pk, event["hash_version"], event["hash_onprem"]), pk, event)
        await side.progress("running", phase="digests", rows_digested=digests.rows)
    return digests


class ColumnsError(ValueError):
    """Columns named on the command line that the export lacks: nothing was published."""


def _csv_rows(reader: csv.DictReader) -> Iterator[Row]:  # type: ignore[type-arg]
    for number, row in enumerate(reader, start=2):
        fields = [v for k, v in row.items() if k is not None] + list(row.get(None) or [])  # type: ignore[call-overload]
        line = io.StringIO()
        csv.writer(line, lineterminator="").writerow(["" if v is None else v for v in fields])
        raw = line.getvalue().encode()
        if None in row or any(v is None for v in row.values()):
            yield number, raw, ExportError("INVALID_ROW", f"line {number}: not as many fields as the header")
            continue
        yield number, raw, {k: (v if v != "" else None) for k, v in row.items()}


def _json_rows(stream: BinaryIO) -> Iterator[Row]:
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            row = loads_exact(line)
        except JsonTextError as exc:
            yield number, line.rstrip(b"\n"), ExportError("INVALID_JSON", f"line {number}: {exc}")
            continue
        if not isinstance(row, dict):
            yield number, line.rstrip(b"\n"), ExportError("NOT_AN_OBJECT", f"line {number}: not a JSON object")
            continue
        yield number, line.rstrip(b"\n"), row


async def publish(
    settings: Settings,
    path: Path | None,
    stream: BinaryIO,
    fmt: str,
    snapshot_id: str,
    hasher: RowHasher,
    key_columns: Sequence[str],
    partition_key: Sequence[str],
    types: dict[str, str],
    splits: int,
    only_ranges: set[int] | None,
    as_of_ms: int,
    table: str | None = None,
    digests: DigestPlan | None = None,
) -> int:
    """Publish an export; returns the number of lines that went to the DLQ (see :func:`publish_rows`)."""
    rows = export_input(path, stream, fmt)
    keys = (key_columns, partition_key, types)
    return await publish_rows(settings, rows, snapshot_id, hasher, keys, splits, only_ranges, as_of_ms, table, digests)


async def publish_rows(
    settings: Settings,
    rows: RowInput,
    snapshot_id: str,
    hasher: RowHasher,
    keys: tuple[Sequence[str], Sequence[str], dict[str, str]],
    splits: int,
    only_ranges: set[int] | None,
    as_of_ms: int,
    table: str | None = None,
    digests: DigestPlan | None = None,
) -> int:
    """Publish the rows; returns the number that went to the DLQ. ``keys``: the key columns, the partition key
    and the declared types. ``digests``: prove the run chunk by chunk (``tools.snapshot.digests``), publishing
    row by row only the chunks whose digests differ.

    Raises :class:`ColumnsError` before writing anything when a column it is told to hash or key by is not in
    the input."""
    key_columns, partition_key, types = keys
    ranges = split(splits)
    named = {
        "--key-columns": key_columns,
        "--partition-key": partition_key,
        "--fields": hasher.fields,
        "--types": list(types),
    }
    problem = absent_columns(rows.columns, named, rows.where) if rows.columns else None  # an empty table: none
    if problem is not None:
        raise ColumnsError(problem)
    extra = {"splits": splits, "ranges": sorted(only_ranges) if only_ranges is not None else None}
    side = await SidePublisher(settings, "onprem", snapshot_id, settings.onprem_topic, extra, table).start()
    try:
        if digests is None:
            await _publish_each(side, rows, hasher, keys, ranges, covering(ranges, only_ranges), as_of_ms)
        else:
            await _publish_by_chunks(side, rows, hasher, keys, ranges, only_ranges, digests, as_of_ms)
        await side.finish(as_of_ms)
        say(
            f"dqhash snapshot publish: {side.rows:,} rows of {snapshot_id} published to {settings.onprem_topic} "
            f"({side.errors} to the DLQ)"
        )
        return side.errors
    except asyncio.CancelledError:  # SIGINT or SIGTERM (``dqhash.cli.common.run_until_signal``)
        await side.progress("failed", force=True, error="interrupted: run the same command again")
        raise
    except BaseException as exc:
        await side.progress("failed", force=True, error=failure(exc))
        raise
    finally:
        await side.stop()


async def _publish_each(
    side: SidePublisher,
    rows: RowInput,
    hasher: RowHasher,
    keys: tuple[Sequence[str], Sequence[str], dict[str, str]],
    ranges: Sequence[Any],
    covers: Callable[[int, int], bool],
    as_of_ms: int,
) -> None:
    """Every row ``covers`` takes, published row by row as it is read."""
    read = 0
    for number, raw, row in rows.rows:
        read += 1 if rows.counts_rows else len(raw or b"") + 1
        try:
            made = _snapshot_event(number, row, side.snapshot_id, hasher, keys, ranges, covers)
        except (ExportError, TokenError, CanonicalError, ValueError) as exc:
            await _dead_letter(side, rows.origin, number, raw, row, exc)
            continue
        if made is None:
            continue  # outside the token ranges (or chunks) this run publishes
        pk, event = made
        event["event_ts"] = as_of_ms
        await side.send(pk, event)
        await _progress(side, read, rows.total)


async def _publish_by_chunks(
    side: SidePublisher,
    rows: RowInput,
    hasher: RowHasher,
    keys: tuple[Sequence[str], Sequence[str], dict[str, str]],
    ranges: list[tuple[int, int]],
    only_ranges: set[int] | None,
    digests: DigestPlan,
    as_of_ms: int,
) -> None:
    """A run proven chunk by chunk: the rows read once into their digests and kept, then the kept records of
    the chunks that differ published. Run again after the digests were published, this side reuses them and
    reads its rows now, publishing those of the chunks that differ."""
    cut, spill, digested = ChunkDigests(ranges, digests.chunks_per_range), Spill(), []

    async def digest_pass() -> ChunkDigests:
        digested.append(True)
        return await _digest_rows(side, rows, hasher, keys, cut, covering(ranges, only_ranges), spill)

    try:
        comparison = await exchange(side, digests, len(ranges), digest_pass)
        for _chunk, pk, event in spill.rows_of(comparison.differing):
            event["event_ts"] = as_of_ms
            await side.send(pk, event)
            await side.progress("running", phase="rows")
    finally:
        spill.close()
    if not digested:
        covers = covering(ranges, only_ranges, digests.chunks_per_range, comparison.differing)
        await _publish_each(side, rows, hasher, keys, ranges, covers, as_of_ms)


async def _dead_letter(
    side: SidePublisher, origin: str, number: int, raw: bytes | None, row: Any, exc: Exception
) -> None:
    reason = exc.reason if isinstance(exc, ExportError) else "INVALID_ROW"
    say(f"dqhash snapshot publish: {exc}" if isinstance(exc, ExportError) else f"line {number}: {exc}")
    if raw is None:  # a database row: its values as JSON text, whatever their type
        raw = orjson.dumps(row, default=str, option=orjson.OPT_NON_STR_KEYS)
    await side.dead_letter(raw, dlq_headers(reason, str(exc), origin, 0, number, None))


async def _progress(side: SidePublisher, read: int, total: int | None) -> None:
    if not total:
        await side.progress("running")
        return
    percent = min(99.9, 100.0 * read / total)
    eta = (total - read) / (read / side.elapsed()) if read < total else 0.0
    await side.progress("running", percent=round(percent, 1), eta_s=round(eta, 1) if eta else None)
