"""The whole loop through dqhash's cloud hash producer (SQLite store), with rechecks."""

import pytest

from dqhash.core.hashing import RowHasher
from tests.e2e.conftest import onprem, sqlite_pipeline

pytestmark = pytest.mark.e2e

HASHER = RowHasher("v2", ["id", "name"])
BACKOFF_S = 1


@pytest.fixture(scope="session")
def loop_pipeline(tmp_path_factory, broker):
    with sqlite_pipeline(
        tmp_path_factory.mktemp(f"producer-{broker}"),
        "loop",
        broker,
        DQHASH_LOOKUP_DELAY_SECONDS=0.3,
        DQHASH_RECHECKS=2,
        DQHASH_RECHECK_BACKOFF_SECONDS=BACKOFF_S,
    ) as running:
        yield running


def put_row(pipeline, pk, name):
    with pipeline.cloud_db:
        pipeline.cloud_db.execute("INSERT OR REPLACE INTO rows VALUES (?, ?)", (pk, name))


def event_for(pk, name="n"):
    return onprem(pk, HASHER.hash({"id": pk, "name": name}).digest)


def test_row_present_in_the_cloud_matches_without_rechecks(loop_pipeline):
    pk = loop_pipeline.pk()
    put_row(loop_pipeline, pk, "n")
    loop_pipeline.send_onprem(event_for(pk))
    [record] = loop_pipeline.wait_audit(pk)
    assert (record["status"], record["rechecks"]) == ("MATCH", 0)


def test_a_row_that_replicates_late_becomes_match_through_a_recheck(loop_pipeline):
    pk = loop_pipeline.pk()
    put_row(loop_pipeline, pk, "stale")  # the cloud still holds the previous version
    loop_pipeline.send_onprem(event_for(pk))
    loop_pipeline.run(
        loop_pipeline.reader.wait_for(  # the first read saw the stale row ...
            lambda out: pk in out.cloud_hashes, 20, lambda out: f"the first cloud hash of {pk}"
        )
    )
    put_row(loop_pipeline, pk, "n")  # ... then replication catches up, before the recheck BACKOFF_S later
    [record] = loop_pipeline.wait_audit(pk, timeout_s=30)
    assert record["status"] == "MATCH" and record["rechecks"] >= 1
    assert record["recheck_results"][0].startswith(f"v2:{HASHER.hash({'id': pk, 'name': 'stale'}).digest[:12]}@")
    assert not [r for r in loop_pipeline.reader.outputs.repairs if r["pk"] == pk]


def test_a_truly_divergent_row_is_mismatch_after_k_rechecks_and_a_repair_request(loop_pipeline):
    pk = loop_pipeline.pk()
    put_row(loop_pipeline, pk, "diverged")
    loop_pipeline.send_onprem(event_for(pk))
    [record] = loop_pipeline.wait_audit(pk, timeout_s=30)
    assert (record["status"], record["rechecks"]) == ("MISMATCH", 2)
    assert len(record["recheck_results"]) == 3
    loop_pipeline.run(
        loop_pipeline.reader.wait_for(
            lambda out: any(r["pk"] == pk for r in out.repairs), 10, lambda out: f"a repair request for {pk}"
        )
    )
    [repair] = [r for r in loop_pipeline.reader.outputs.repairs if r["pk"] == pk]
    assert repair["status"] == "MISMATCH" and repair["audit_id"] == record["audit_id"]


def test_a_row_missing_from_the_cloud_is_missing_cloud_after_rechecks(loop_pipeline):
    pk = loop_pipeline.pk()
    loop_pipeline.send_onprem(event_for(pk))
    [record] = loop_pipeline.wait_audit(pk, timeout_s=40)
    assert (record["status"], record["rechecks"]) == ("MISSING_CLOUD", 2)
    assert all(result.startswith("not_found@") for result in record["recheck_results"])
