"""``dqhash snapshot publish``: the reference on-prem side of a snapshot run.

Reads an export of the on-prem table (JSON Lines, or CSV with a header), hashes every row by the shared
spec (``core.hashing``: the same hasher as ``dqhash hash``, values read exactly by ``loads_exact``), and
publishes each as a ``SNAPSHOT`` row on Topic-1 at its PK's partition, then each partition's end marker.
A row that cannot be read or hashed goes to the DLQ with its reason and line number; the run goes on.
"""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from dqhash.cloud.tokens import TokenError, token_of
from dqhash.core.canonical import CanonicalError
from dqhash.core.contracts import canonical_pk
from dqhash.core.hashing import RowHasher
from dqhash.core.input_columns import JSON_ROWS_SAMPLED, absent_columns
from dqhash.core.jsontext import JsonTextError, loads_exact
from dqhash.core.outputs import dlq_headers
from dqhash.core.token_ranges import range_of, split
from dqhash.settings import Settings
from dqhash.tools.snapshot.common import SidePublisher, say


class ExportError(ValueError):
    """One line of the export that cannot be published; ``reason`` becomes its DLQ reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


Row = tuple[int, bytes, dict[str, Any] | ExportError]


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


def _snapshot_event(
    number: int,
    row: dict[str, Any] | ExportError,
    snapshot_id: str,
    hasher: RowHasher,
    keys: tuple[Sequence[str], Sequence[str], dict[str, str]],
    ranges: Sequence[Any],
    only_ranges: set[int] | None,
) -> tuple[str, dict[str, Any]] | None:
    """One export row as (pk, its Topic-1 SNAPSHOT record without ``event_ts``); None outside ``only_ranges``.
    ``keys``: the key columns, the partition key and the declared types. Raises what makes it a dead letter."""
    key_columns, partition_key, types = keys
    if isinstance(row, ExportError):
        raise row
    missing = [c for c in key_columns if row.get(c) in (None, "")]
    if missing:
        raise ExportError("MISSING_PK", f"line {number}: no value for key column(s) {missing}")
    token_range = range_of(token_of(row, partition_key, types), ranges)
    if only_ranges is not None and token_range not in only_ranges:
        return None
    values = [row[c] for c in key_columns]
    if any(isinstance(v, bool) or not isinstance(v, (str, int)) for v in values):
        raise ExportError("INVALID_PK", f"line {number}: key values must be strings or integers")
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
) -> int:
    """Publish the export; returns the number of lines that went to the DLQ.

    Raises :class:`ColumnsError` before writing anything when a column it is told to hash or key by is not in
    the export."""
    ranges = split(splits)
    total_bytes = os.path.getsize(path) if path is not None else None
    columns, where, rows = open_rows(stream, fmt)
    named = {
        "--key-columns": key_columns,
        "--partition-key": partition_key,
        "--fields": hasher.fields,
        "--types": list(types),
    }
    problem = absent_columns(columns, named, where) if columns else None  # an empty table has no columns to check
    if problem is not None:
        raise ColumnsError(problem)
    extra = {"splits": splits, "ranges": sorted(only_ranges) if only_ranges is not None else None}
    side = await SidePublisher(settings, "onprem", snapshot_id, settings.onprem_topic, extra, table).start()
    source = str(path) if path is not None else "stdin"
    try:
        read = 0
        for number, raw, row in rows:
            read += len(raw) + 1
            try:
                made = _snapshot_event(
                    number, row, snapshot_id, hasher, (key_columns, partition_key, types), ranges, only_ranges
                )
            except (ExportError, TokenError, CanonicalError, ValueError) as exc:
                reason = exc.reason if isinstance(exc, ExportError) else "INVALID_ROW"
                say(f"dqhash snapshot publish: {exc}" if isinstance(exc, ExportError) else f"line {number}: {exc}")
                await side.dead_letter(raw, dlq_headers(reason, str(exc), f"snapshot-export:{source}", 0, number, None))
                continue
            if made is None:
                continue  # outside the token ranges this run covers
            pk, event = made
            event["event_ts"] = as_of_ms
            await side.send(pk, event)
            if total_bytes:
                percent = min(99.9, 100.0 * read / total_bytes)
                eta = (total_bytes - read) / (read / side.elapsed())
                await side.progress("running", percent=round(percent, 1), eta_s=round(eta, 1) if eta else None)
            else:
                await side.progress("running")
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
        await side.progress("failed", force=True, error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        await side.stop()
