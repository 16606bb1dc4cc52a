"""DataDog monitors and SLOs as code: valid API shapes and query syntax, real metrics, every query scoped to one
environment, and a runbook section (an absolute link) for each."""

import re

import pytest

from dqhash.ops.datadog_export import ExportError, query_problems, render, templates
from dqhash.ops.dogstatsd import ALL_METRICS
from tests.paths import ROOT

RUNBOOK_URL = "https://git.example.com/dqhash/blob/main/docs/runbook.md"
RENDERED = render("production", RUNBOOK_URL)
MONITORS, SLOS = RENDERED["monitors"], RENDERED["slos"]
RUNBOOK = (ROOT / "docs" / "runbook.md").read_text()
#: Metrics of the DataDog agent's kafka_consumer check (configured in docker/datadog/kafka_consumer.yaml).
AGENT_CHECK_METRICS = {"kafka.consumer_lag", "kafka.consumer_offset", "kafka.broker_offset"}
METRIC_IN_QUERY = re.compile(r"(?:sum|max|min|avg|count|p\d+):([a-z_][a-z0-9_.]*)\{")


def metrics_in(text):
    return set(METRIC_IN_QUERY.findall(text))


def runbook_anchors():
    return {
        re.sub(r"[^a-z0-9-]", "", h.strip().lower().replace(" ", "-")) for h in re.findall(r"^## (.+)$", RUNBOOK, re.M)
    }


def test_every_referenced_metric_is_emitted_by_dqhash_or_the_configured_agent_check():
    referenced = set()
    for monitor in MONITORS:
        referenced |= metrics_in(monitor["query"])
    for slo in SLOS:
        referenced |= metrics_in(slo["query"]["numerator"] + slo["query"]["denominator"])
    assert referenced, "no metric found in the queries"
    unknown = referenced - ALL_METRICS - AGENT_CHECK_METRICS
    assert not unknown, f"monitors reference metrics nothing emits: {unknown}"


def test_the_required_alerts_exist_with_a_runbook_section_each():
    anchors = runbook_anchors()
    by_runbook = {}
    for monitor in MONITORS:
        [tag] = [t for t in monitor["tags"] if t.startswith("runbook:")]
        by_runbook[tag.split(":", 1)[1]] = monitor
        assert f"{RUNBOOK_URL}#{tag.split(':', 1)[1]}" in monitor["message"]
    assert {"mismatch-rate", "missing-cloud-rate", "dlq-rate", "consumer-lag", "no-data"} <= by_runbook.keys()
    assert by_runbook.keys() <= anchors, by_runbook.keys() - anchors
    assert "last_5m" in by_runbook["mismatch-rate"]["query"]
    assert by_runbook["no-data"]["options"]["notify_no_data"] is True


def test_monitors_are_in_datadog_api_format():
    for monitor in MONITORS:
        assert monitor["type"] == "query alert" and monitor["name"].startswith("dqhash [production]: ")
        query, options = monitor["query"], monitor["options"]
        comparator = re.search(r"\s([<>]=?)\s*([0-9.]+)$", query)
        assert comparator, f"{monitor['name']}: query must end in a threshold comparison"
        assert float(comparator.group(2)) == options["thresholds"]["critical"], monitor["name"]
        if ".as_count()" in query:  # counters are rates: sum them as counts over the window
            assert query.startswith("sum(")
        assert "service:dqhash" in query or "consumer_group:dqhash" in query
        assert monitor["name"].startswith("dqhash [production]: ") and "env:production" in monitor["tags"]


def test_slos_are_in_datadog_api_format_and_documented():
    anchors = runbook_anchors()
    for slo in SLOS:
        assert slo["type"] == "metric" and {"numerator", "denominator"} == slo["query"].keys()
        assert all(0 < t["target"] < 100 and t["timeframe"] in ("7d", "30d", "90d") for t in slo["thresholds"])
        anchor = re.search(r"runbook\.md#([a-z-]+)", slo["description"]).group(1)
        assert anchor in anchors


def test_every_query_parses_and_is_scoped_to_the_environment():
    for item in [*MONITORS, *SLOS]:
        queries = [item["query"]] if isinstance(item["query"], str) else list(item["query"].values())
        for query in queries:
            assert query_problems(query, "production") == [], item["name"]
            filters = re.findall(r"[a-z_.]+\{([^}]*)\}", query)  # a metric's tag filter, not a ``by {group}``
            assert filters and all("env:production" in f.split(",") for f in filters), query


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("sum:dq_hash_match{service:dqhash,env:production}.as_count", ".as_count without ()"),
        ("sum(last_5m):sum:dq_hash_match{service:dqhash}.as_count() > 1", "not scoped to env:production"),
        ("sum(last_5m):(sum:dq_hash_match{service:dqhash,env:production}.as_count() > 1", "unbalanced ()"),
        ("sum:dq_hash_match{service:dqhash,env:staging}.as_count()", "not scoped to env:production"),
    ],
)
def test_the_query_check_catches_what_datadog_rejects_or_misreads(query, problem):
    assert any(problem in found for found in query_problems(query, "production"))


def test_a_bad_environment_or_a_relative_runbook_link_is_refused():
    with pytest.raises(ExportError, match="--env"):
        render("Prod uction", RUNBOOK_URL)
    with pytest.raises(ExportError, match="--runbook-url"):
        render("production", "docs/runbook.md")


def test_the_templates_leave_no_environment_or_link_unfilled():
    assert "$ENV" in str(templates()) and "$RUNBOOK" in str(templates())
    assert "$ENV" not in str(RENDERED) and "$RUNBOOK" not in str(RENDERED)
    assert "docs/runbook.md#" not in str(RENDERED).replace(RUNBOOK_URL, "")
