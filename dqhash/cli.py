"""The ``dqhash`` command: thin shells over the library, one subcommand each."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence, TextIO

import orjson

from dqhash.canonical import CanonicalError
from dqhash.hashing import ALGORITHMS, STRATEGIES, HashConfigError, RowHasher

EXIT_OK, EXIT_BAD_INPUT, EXIT_USAGE = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    return int(args.run(args) or 0)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dqhash", description=__doc__)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    hash_cmd = commands.add_parser(
        "hash",
        help="hash JSON Lines rows from stdin with the canonical row hash",
        description="Read one JSON object (a row) per line on stdin; print one hash per line "
        "(strategy:hex), or with --columns one JSON object with per-column digests. "
        "A bad line is reported on stderr by number, printed as an empty line, and makes "
        "the exit status 1 once every other line is hashed.",
    )
    hash_cmd.add_argument("--strategy", default="v2", help=f"hash strategy: {' | '.join(STRATEGIES)} (default v2)")
    hash_cmd.add_argument("--algorithm", default="sha256", help=f"digest algorithm: {' | '.join(ALGORITHMS)}")
    hash_cmd.add_argument("--fields", help="comma-separated columns to hash (default: every column of the row)")
    hash_cmd.add_argument(
        "--types",
        help="comma-separated column=cqltype declarations, e.g. ts=timestamp,amount=decimal "
        "(JSON has no timestamp or decimal type; declare such columns so both sides agree)",
    )
    hash_cmd.add_argument("--columns", action="store_true", help="print JSON with per-column digests")
    hash_cmd.set_defaults(run=_run_hash)

    bench_domain = commands.add_parser(
        "bench-domain", help="throughput of parse, hash and classify on one core, next to a bare orjson+sha256 floor"
    )
    bench_domain.add_argument("--records", type=int, default=100_000, help="records per measurement (default 100000)")
    bench_domain.add_argument("--json", action="store_true", help="print one JSON object")
    bench_domain.set_defaults(run=lambda args: _bench_domain(args.records, args.json))
    return parser


def _run_hash(args: argparse.Namespace, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    try:
        hasher = RowHasher(
            strategy=args.strategy,
            fields=_split(args.fields),
            types=_parse_declarations(args.types),
            algorithm=args.algorithm,
        )
    except (HashConfigError, CanonicalError) as exc:
        print(f"dqhash hash: {exc}", file=sys.stderr)
        return EXIT_USAGE
    bad = 0
    for number, line in enumerate(stdin, start=1):
        if not line.strip():
            continue
        try:
            row = orjson.loads(line)
            if not isinstance(row, dict):
                raise ValueError(f"expected a JSON object, got {type(row).__name__}")
            digest = hasher.hash(row)
            if args.columns:
                out = orjson.dumps({"line": number, "hash": str(digest), "columns": hasher.column_digests(row)}).decode()
            else:
                out = str(digest)
        except (ValueError, CanonicalError) as exc:  # orjson.JSONDecodeError is a ValueError
            bad += 1
            print(f"dqhash hash: line {number}: {exc}", file=sys.stderr)
            out = ""
        stdout.write(out + "\n")
    if bad:
        print(f"dqhash hash: {bad} bad line(s); the others were hashed", file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_OK


def _bench_domain(records: int, as_json: bool) -> int:
    from dqhash.bench import domain  # imported on use: it builds large sample data

    return domain.main(records, as_json)


def _split(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [part.strip() for part in text.split(",")]


def _parse_declarations(text: str | None) -> dict[str, str]:
    """``a=timestamp,b=map<text,int>``: commas inside <> belong to the type."""
    if not text:
        return {}
    declarations: dict[str, str] = {}
    depth, current = 0, ""
    for char in text + ",":
        if char == "," and depth == 0:
            name, sep, ctype = current.partition("=")
            if not sep or not name.strip() or not ctype.strip():
                raise HashConfigError(f"bad type declaration {current!r}; expected column=type")
            declarations[name.strip()] = ctype.strip()
            current = ""
            continue
        depth += {"<": 1, ">": -1}.get(char, 0)
        current += char
    return declarations


if __name__ == "__main__":
    sys.exit(main())
