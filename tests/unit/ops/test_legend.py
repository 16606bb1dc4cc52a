"""The dashboard's legend derives from the status declaration: every status is in exactly one group, the tiles
sum the statuses the report's gates bound, and the page is served with the legend filled in."""

from __future__ import annotations

from importlib import resources

import orjson

from dqhash.core.statuses import GATED, KINDS, Kind, Status
from dqhash.ops.legend import PLACEHOLDER, dashboard_page, group_of, legend


def test_every_status_is_in_exactly_one_group():
    grouped = [s for group in legend()["groups"] for s in group["statuses"]]
    assert sorted(grouped) == sorted(s.value for s in Status)


def test_groups_follow_what_a_status_means():
    groups = legend()["status_group"]
    assert groups["MATCH"] == "match"
    assert groups["MISMATCH"] == groups["CLOUD_DRIFT"] == "mismatch"
    assert groups["MISSING_CLOUD"] == groups["CLOUD_VANISHED"] == "missing"
    assert groups["EXTRA_IN_CLOUD"] == groups["DELETE_NOT_PROPAGATED"] == "problem"
    assert groups["HASH_VERSION_MISMATCH"] == groups["SUPERSEDED"] == groups["SKIPPED_DELETE"] == "other"


def test_a_new_status_lands_in_its_group_by_its_properties_alone():
    assert group_of(Kind("dq_new", repair="resync", compared=True, gate="missing")) == "missing"
    assert group_of(Kind("dq_new", repair="delete")) == "problem"
    assert group_of(Kind("dq_new")) == "other"


def test_the_tiles_sum_what_the_report_gates_bound():
    tiles = legend()["tiles"]
    assert tiles == {"mismatch": list(GATED["mismatch"]), "missing": list(GATED["missing"])}
    assert "HASH_VERSION_MISMATCH" not in tiles["mismatch"], "a hash version mismatch is not a data mismatch"


def test_the_page_is_served_with_the_legend_in_place_of_its_placeholder():
    template = resources.files("dqhash.ops").joinpath("dashboard.html").read_text()
    assert template.count(PLACEHOLDER) == 1
    page = dashboard_page(template)
    assert PLACEHOLDER not in page
    start = page.index("const LEGEND = ") + len("const LEGEND = ")
    served = orjson.loads(page[start : page.index(";\n", start)])
    assert served == legend()
    assert not any(f'"{s.value}"' in template for s in KINDS), "the page names no status: all come from the legend"
