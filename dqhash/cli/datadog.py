"""``dqhash datadog export``: the monitors and SLOs for one environment, in DataDog API format."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson

from dqhash.cli.common import EXIT_OK, EXIT_USAGE, command, fail


def add(commands: Any) -> None:
    datadog = command(commands, "datadog", "the DataDog monitors and SLOs (docs/runbook.md)")
    actions = datadog.add_subparsers(title="datadog commands", metavar="ACTION")
    export = command(
        actions,
        "export",
        "write the monitors and SLOs for one environment, in DataDog API format (POST /api/v1/monitor, /api/v1/slo)",
        description="Renders the monitors and SLOs scoped to --env (every metric query filters env:<env>, so "
        "environments are never summed) with runbook links under --runbook-url, checks every query, and writes "
        "monitors.json and slos.json to --out (or one JSON object to stdout).",
    )
    export.add_argument("--env", required=True, help="the DD_ENV of the workers to watch, e.g. production")
    export.add_argument(
        "--runbook-url",
        required=True,
        help="where operators read docs/runbook.md, e.g. https://git.example.com/dqhash/blob/main/docs/runbook.md",
    )
    export.add_argument("--out", type=Path, help="a folder for monitors.json and slos.json (default: stdout)")
    export.set_defaults(run=run_export)


def run_export(args: argparse.Namespace) -> int:
    from dqhash.ops.datadog_export import ExportError, render

    try:
        rendered = render(args.env, args.runbook_url)
    except ExportError as exc:
        return fail("datadog export", str(exc), EXIT_USAGE)
    if args.out is None:
        sys.stdout.write(orjson.dumps(rendered, option=orjson.OPT_INDENT_2).decode() + "\n")
        return EXIT_OK
    args.out.mkdir(parents=True, exist_ok=True)
    for name, items in rendered.items():
        (args.out / f"{name}.json").write_bytes(orjson.dumps(items, option=orjson.OPT_INDENT_2) + b"\n")
    print(f"dqhash datadog export: wrote monitors.json and slos.json for env {args.env} to {args.out}", file=sys.stderr)
    return EXIT_OK
