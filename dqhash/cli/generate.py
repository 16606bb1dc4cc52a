"""``dqhash generate``: steady on-prem changes and their cloud rows, so a fresh stack shows verdicts."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from dqhash.cli.common import (
    CLOUD_STORE,
    EXIT_OK,
    EXIT_USAGE,
    KAFKA,
    Interrupted,
    command,
    fail,
    load_settings,
    run_until_signal,
)

READS = (*KAFKA, "DQHASH_ONPREM_TOPIC", "DQHASH_PARTITIONS", "DQHASH_HASH_*", *CLOUD_STORE)


def add(commands: Any) -> None:
    parser = command(
        commands,
        "generate",
        "a load generator: on-prem change events to Topic-1 and the rows they replicate to in the cloud store",
        READS,
        description="Writes each case's cloud row to the cloud store the producer reads (DQHASH_CLOUD_STORE), then "
        "sends its on-prem event to Topic-1, hashed over DQHASH_HASH_COLUMNS with DQHASH_HASH_TYPES. Most rows "
        "match; --mismatch of them differ in one text column in the cloud; --missing never reach it. For a demo "
        "stack (docker compose), not for a real cloud table.",
    )
    parser.add_argument("--rate", type=float, default=20.0, help="events a second (default 20)")
    parser.add_argument("--events", type=int, default=0, help="how many, then stop (default 0: until Ctrl-C)")
    parser.add_argument("--mismatch", type=float, default=0.05, help="share of rows that differ (default 0.05)")
    parser.add_argument("--missing", type=float, default=0.03, help="share of rows never written (default 0.03)")
    parser.add_argument("--key-column", default="id", help="the primary key column (default id)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dqhash.tools.generator import generate

    if args.rate <= 0 or args.events < 0 or not 0 <= args.mismatch + args.missing <= 1:
        return fail(
            "generate", "--rate must be > 0, --events >= 0, and --mismatch + --missing between 0 and 1", EXIT_USAGE
        )
    settings = load_settings("generate")
    if settings is None:
        return EXIT_USAGE
    if not settings.hash_columns:
        return fail("generate", "set DQHASH_HASH_COLUMNS: the generator writes those columns", EXIT_USAGE)
    try:
        sent = run_until_signal(
            generate(settings, args.rate, args.events, args.mismatch, args.missing, args.key_column)
        )
    except Interrupted:
        print("dqhash generate: stopped", file=sys.stderr)
        return EXIT_OK
    except ValueError as exc:
        return fail("generate", str(exc), EXIT_USAGE)
    except Exception as exc:
        return fail(
            "generate",
            f"{type(exc).__name__}: {exc}; check DQHASH_BROKER and the cloud store's settings (DQHASH_CLOUD_STORE)",
        )
    print(f"dqhash generate: sent {sum(sent.values())} events: {sent}", file=sys.stderr)
    return EXIT_OK
