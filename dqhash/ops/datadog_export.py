"""The DataDog monitors and SLOs as code, rendered for one environment (``dqhash datadog export``).

The templates (``dqhash/ops/datadog/*.json``, DataDog API format) scope every metric query by ``env:$ENV`` (so
staging and production are never summed) and link each alert to ``$RUNBOOK#<section>`` (an address that works
outside the repository, e.g. the runbook on your wiki or Git host). Rendering fills both in and checks every
query for the mistakes DataDog rejects or silently misreads.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

import orjson

#: an environment name as DataDog tags take it
_ENV = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
#: one metric of a query: aggregator, name, tag filter
_METRIC = re.compile(r"(?:sum|max|min|avg|count|p\d+):([a-z_][a-z0-9_.]*)\{([^}]*)\}")


class ExportError(ValueError):
    """A bad ``--env`` or ``--runbook-url``, or a template query with a mistake; the message says which."""


def templates() -> dict[str, list[dict[str, Any]]]:
    folder = resources.files("dqhash.ops").joinpath("datadog")
    return {name: orjson.loads(folder.joinpath(f"{name}.json").read_bytes()) for name in ("monitors", "slos")}


def render(env: str, runbook_url: str) -> dict[str, list[dict[str, Any]]]:
    """The monitors and SLOs for ``env``, with runbook links under ``runbook_url``; checked."""
    if not _ENV.match(env):
        raise ExportError(f"--env {env!r}: a DataDog env tag of lower-case letters, digits, '_', '.', '-'")
    if not runbook_url.startswith(("https://", "http://")):
        raise ExportError(f"--runbook-url {runbook_url!r}: an absolute http(s) address of docs/runbook.md")
    text = orjson.dumps(templates()).decode()
    text = text.replace("$ENV", env).replace("$RUNBOOK", runbook_url.rstrip("#"))
    rendered: dict[str, list[dict[str, Any]]] = orjson.loads(text)
    problems = [f"{item['name']}: {p}" for item, query in _queries(rendered) for p in query_problems(query, env)]
    if problems:
        raise ExportError("; ".join(problems))
    return rendered


def _queries(rendered: dict[str, list[dict[str, Any]]]) -> list[tuple[dict[str, Any], str]]:
    found = [(monitor, monitor["query"]) for monitor in rendered["monitors"]]
    found += [(slo, slo["query"][part]) for slo in rendered["slos"] for part in ("numerator", "denominator")]
    return found


def query_problems(query: str, env: str) -> list[str]:
    """What is wrong with one query: unbalanced brackets, a count without its call, a metric not scoped to env."""
    problems = []
    for opening, closing in ("()", "{}"):
        if query.count(opening) != query.count(closing):
            problems.append(f"unbalanced {opening}{closing} in {query!r}")
    for missing in re.findall(r"\.as_(?:count|rate)(?!\(\))", query):
        problems.append(f"{missing} without () in {query!r}")
    metrics = _METRIC.findall(query)
    if not metrics:
        problems.append(f"no metric in {query!r}")
    for name, tags in metrics:
        if f"env:{env}" not in [t.strip() for t in tags.split(",")]:
            problems.append(f"{name} is not scoped to env:{env}")
    return problems
