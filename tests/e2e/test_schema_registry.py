"""Topic-1 and Topic-2 in Confluent's wire format through a worker, with a registry double on loopback: a decoded
Avro record's path to its verdict, and each way decoding fails going to the DLQ without stalling the worker."""

from datetime import UTC, datetime

import pytest

from dqhash.core.timeutil import now_ms
from tests.e2e.conftest import running_pipeline
from tests.registry_double import CLOUD_SCHEMA, ONPREM_SCHEMA, RegistryDouble, avro, framed

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def wired(tmp_path_factory, broker):
    registry = RegistryDouble(auth=("key", "secret")).start()
    registry.register_avro(7, ONPREM_SCHEMA)
    registry.register_avro(8, CLOUD_SCHEMA)
    try:
        with running_pipeline(
            tmp_path_factory.mktemp(f"registry-{broker}"),
            "sr",
            broker=broker,
            DQHASH_SCHEMA_REGISTRY_URL=registry.url,
            DQHASH_SCHEMA_REGISTRY_USERNAME="key",
            DQHASH_SCHEMA_REGISTRY_PASSWORD="secret",
            DQHASH_SCHEMA_REGISTRY_RETRIES=1,
        ) as running:
            running.registry = registry
            yield running
    finally:
        registry.stop()


def pair(pk, digest="ab" * 32, onprem_id=7):
    at = datetime.fromtimestamp(now_ms() / 1000, tz=UTC)
    onprem = {
        "event_id": f"e-{pk}",
        "hash_onprem": digest,
        "partitionColumns": [{"type": "PK", "value": pk}],
        "event_ts": at,
        "action": "UPDATE",
    }
    cloud = {"pk": pk, "hash_cloud": digest, "cloud_ts": at}
    return (pk.encode(), avro(onprem_id, ONPREM_SCHEMA, onprem)), (pk.encode(), avro(8, CLOUD_SCHEMA, cloud))


def test_avro_on_both_topics_reaches_its_verdict(wired):
    pk = wired.pk()
    onprem, cloud = pair(pk)
    wired.send_onprem(onprem)
    wired.send_cloud(cloud)
    [record] = wired.wait_audit(pk)
    assert record["status"] == "MATCH" and record["event_id"] == f"e-{pk}", record


def test_an_unknown_schema_id_and_an_undecodable_body_are_dead_lettered_and_the_worker_goes_on(wired):
    unknown, garbage = wired.pk(), wired.pk()
    onprem, _ = pair(unknown, onprem_id=4242)
    wired.send_onprem(onprem, (garbage.encode(), framed(7, b"\x02\xff\xff\xff")))
    _, value, headers = wired.wait_dlq(lambda k, v, h: k == unknown.encode())
    assert headers["dq.error.reason"] == b"SCHEMA_NOT_FOUND" and value == onprem[1]  # the original bytes
    _, _, headers = wired.wait_dlq(lambda k, v, h: k == garbage.encode())
    assert headers["dq.error.reason"] == b"UNDECODABLE"
    after = wired.pk()
    for record in zip(("onprem", "cloud"), pair(after)):
        (wired.send_onprem if record[0] == "onprem" else wired.send_cloud)(record[1])
    assert wired.wait_audit(after)[0]["status"] == "MATCH"


def test_with_the_registry_down_cached_schemas_still_decode_and_a_new_id_is_dead_lettered(wired):
    test_avro_on_both_topics_reaches_its_verdict(wired)  # the worker has fetched schemas 7 and 8
    wired.registry.down = True
    try:
        cached, new = wired.pk(), wired.pk()
        onprem, cloud = pair(cached)
        wired.send_onprem(onprem)
        wired.send_cloud(cloud)
        assert wired.wait_audit(cached)[0]["status"] == "MATCH"
        wired.registry.register_avro(11, ONPREM_SCHEMA)
        onprem, _ = pair(new, onprem_id=11)
        wired.send_onprem(onprem)
        _, _, headers = wired.wait_dlq(lambda k, v, h: k == new.encode())
        assert headers["dq.error.reason"] == b"REGISTRY_UNAVAILABLE", headers
    finally:
        wired.registry.down = False
