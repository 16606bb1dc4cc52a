"""The dashboard's legend: how statuses are grouped and coloured, derived from their declaration.

The dashboard page receives this as JSON (``dashboard_page``), so its chart, legend and tiles follow
``dqhash.core.statuses``: a new status appears in the right group without an edit to the page.
"""

from __future__ import annotations

from typing import Any

import orjson

from dqhash.core.statuses import GATED, KINDS, Kind, Status

#: the chart's stacked groups, bottom to top: (name, label, colour)
GROUPS = (
    ("match", "match", "#2e9e44"),
    ("mismatch", "differ (mismatch, drift)", "#d62728"),
    ("missing", "missing in cloud (missing, vanished)", "#ff9f1c"),
    ("problem", "other problems (extra in cloud, delete not propagated)", "#8e44ad"),
    ("other", "not compared (deletes, superseded, hash version)", "#9e9e9e"),
)
#: where the page's script expects the legend
PLACEHOLDER = "/*STATUSES*/null"


def group_of(kind: Kind) -> str:
    """A status's group in the chart: its report gate, else whether it is a match, another problem, or neither."""
    if kind.gate is not None:
        return kind.gate
    if kind.compared and kind.repair is None and not kind.difference:
        return "match"
    if kind.repair is not None:
        return "problem"
    return "other"


def legend() -> dict[str, Any]:
    """Every status with its group, the groups in chart order, and the statuses each tile sums."""
    return {
        "groups": [
            {"name": name, "label": label, "color": color, "statuses": _in_group(name)} for name, label, color in GROUPS
        ],
        "status_group": {status.value: group_of(kind) for status, kind in KINDS.items()},
        "tiles": {"mismatch": list(GATED["mismatch"]), "missing": list(GATED["missing"])},
        "problems": [status.value for status, kind in KINDS.items() if kind.repair is not None],
    }


def _in_group(name: str) -> list[str]:
    return [status.value for status, kind in KINDS.items() if group_of(kind) == name]


def dashboard_page(template: str) -> str:
    """The dashboard with its legend filled in; a template without the placeholder is a packaging error."""
    if PLACEHOLDER not in template:
        raise ValueError(f"the dashboard template lacks {PLACEHOLDER!r}")
    return template.replace(PLACEHOLDER, orjson.dumps(legend()).decode())


assert {group_of(kind) for kind in KINDS.values()} <= {name for name, _, _ in GROUPS}
assert all(isinstance(s, Status) for s in KINDS)
