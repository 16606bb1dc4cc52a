"""``dqhash hash``: the canonical row hash of JSON Lines rows, as the cloud hash producer computes it."""

from __future__ import annotations

import argparse
import sys
from typing import Any, BinaryIO, TextIO

import orjson

from dqhash.cli.common import EXIT_BAD_INPUT, EXIT_OK, EXIT_USAGE, command, split
from dqhash.core.canonical import CanonicalError
from dqhash.core.hashing import ALGORITHMS, STRATEGIES, HashConfigError, RowHasher, parse_type_declarations
from dqhash.core.jsontext import loads_exact


def add(commands: Any) -> None:
    parser = command(
        commands,
        "hash",
        "hash JSON Lines rows from stdin with the canonical row hash",
        description="Read one JSON object (a row) per line on stdin; print one hash per line "
        "(strategy:hex), or with --columns one JSON object with per-column digests. "
        "A bad line is reported on stderr by number, printed as an empty line, and makes "
        "the exit status 1 once every other line is hashed. Reads no environment variable.",
    )
    parser.add_argument("--strategy", default="v2", help=f"hash strategy: {' | '.join(STRATEGIES)} (default v2)")
    parser.add_argument("--algorithm", default="sha256", help=f"digest algorithm: {' | '.join(ALGORITHMS)}")
    parser.add_argument("--fields", help="comma-separated columns to hash (default: every column of the row)")
    parser.add_argument(
        "--types",
        help="comma-separated column=cqltype declarations, e.g. ts=timestamp,amount=decimal "
        "(JSON has no timestamp or decimal type; declare such columns so both sides agree)",
    )
    parser.add_argument("--columns", action="store_true", help="print JSON with per-column digests")
    parser.add_argument(
        "--allow-absent",
        action="store_true",
        help="hash a column named in --fields or --types that the first row lacks as null, rather than refusing "
        "to start (for rows that omit null columns)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, stdin: BinaryIO | None = None, stdout: TextIO | None = None) -> int:
    stdin = stdin or sys.stdin.buffer  # bytes: invalid UTF-8 is one line's error, not the end of the input
    stdout = stdout or sys.stdout
    try:
        hasher = RowHasher(
            strategy=args.strategy,
            fields=split(args.fields),
            types=parse_type_declarations(args.types),
            algorithm=args.algorithm,
        )
    except (HashConfigError, CanonicalError) as exc:
        print(f"dqhash hash: {exc}", file=sys.stderr)
        return EXIT_USAGE
    bad = 0
    checked = args.allow_absent
    for number, line in enumerate(stdin, start=1):
        try:
            if not checked:  # the first row says whether the named columns exist: before any output
                checked = _first_row_columns(line, hasher)
            out = _hash_line(hasher, line, number, args.columns)
        except _AbsentColumns as exc:
            print(
                f"dqhash hash: {exc}. Nothing was hashed (--allow-absent hashes absent columns as null).",
                file=sys.stderr,
            )
            return EXIT_USAGE
        except RecursionError:  # defensive: the hasher reaches every depth the spec allows (512)
            bad += 1
            print(f"dqhash hash: line {number}: nested too deeply to hash", file=sys.stderr)
            out = ""
        except Exception as exc:  # JsonTextError and CanonicalError are ValueErrors; nothing may stop the lines
            bad += 1
            print(f"dqhash hash: line {number}: {exc}", file=sys.stderr)
            out = ""  # every input line has its output line, so the two stay aligned
        stdout.write(out + "\n")
    if bad:
        print(f"dqhash hash: {bad} bad line(s); the others were hashed", file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_OK


class _AbsentColumns(ValueError):
    """Columns named in --fields or --types that the first row does not have."""


def _first_row_columns(line: bytes, hasher: RowHasher) -> bool:
    """Check --fields and --types against the first row that is a JSON object; True once checked."""
    from dqhash.core.input_columns import absent_columns

    try:
        row = loads_exact(line)
    except ValueError:
        return False  # its own error is reported as that line's; the next row is checked
    if not isinstance(row, dict):
        return False
    named = {"--fields": hasher.fields, "--types": list(hasher.types)}
    problem = absent_columns(row, named, "the first row")
    if problem is not None:
        raise _AbsentColumns(problem)
    return True


def _hash_line(hasher: RowHasher, line: bytes, number: int, with_columns: bool) -> str:
    if not line.strip(b" \t\r\n"):
        raise ValueError("blank line; expected a JSON object")
    row = loads_exact(line)
    if not isinstance(row, dict):
        raise ValueError(f"expected a JSON object, got {type(row).__name__}")
    digest = hasher.hash(row)
    if not with_columns:
        return str(digest)
    return orjson.dumps({"line": number, "hash": str(digest), "columns": hasher.column_digests(row)}).decode()
