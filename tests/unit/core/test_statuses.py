"""Every status declared once (``core.statuses``), and the lists each consumer uses derived from it."""

from dqhash.core import outputs, run_report, snapshot_report, statuses, tally
from dqhash.core.statuses import KINDS, Status
from dqhash.ops import dogstatsd
from tests.paths import ROOT


def test_every_status_has_its_kind_and_every_consumer_list_is_derived_from_it():
    assert set(KINDS) == set(Status)
    assert set(outputs.REPAIRABLE) == set(statuses.PROBLEMS) == {s for s, k in KINDS.items() if k.repair}
    assert tally.COMPARED is statuses.COMPARED and run_report.GATED is statuses.GATED
    assert snapshot_report.DIFFERENCES is statuses.DIFFERENCES
    assert snapshot_report.ON_PREM_VERDICTS is statuses.ON_PREM_VERDICTS
    assert dogstatsd.STATUS_COUNTERS is statuses.COUNTERS and dogstatsd.DELETE_STATUSES is statuses.DELETES


def test_what_the_statuses_mean_to_their_consumers_is_as_documented():
    assert statuses.REPAIR_ACTIONS == {
        "MISMATCH": "resync",
        "MISSING_CLOUD": "resync",
        "EXTRA_IN_CLOUD": "delete",
        "CLOUD_DRIFT": "resync",
        "CLOUD_VANISHED": "resync",
        "DELETE_NOT_PROPAGATED": "delete",
    }
    assert statuses.GATED == {"mismatch": ("MISMATCH", "CLOUD_DRIFT"), "missing": ("MISSING_CLOUD", "CLOUD_VANISHED")}
    assert set(statuses.COMPARED) == set(statuses.DIFFERENCES) | {"MATCH", "CLOUD_DRIFT", "CLOUD_VANISHED"}
    assert statuses.DELETES == {"SKIPPED_DELETE", "DELETE_CONFIRMED", "DELETE_NOT_PROPAGATED"}


def test_every_status_is_in_the_classification_rules_and_its_counter_in_the_readme():
    root = ROOT
    rules, readme = (root / "docs" / "classification.md").read_text(), (root / "README.md").read_text()
    for status, kind in KINDS.items():
        assert f"**{status.value}**" in rules, status
        assert f"`{kind.counter}`" in readme, kind.counter
