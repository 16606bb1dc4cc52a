"""Topic-1 / Topic-2 in Confluent's wire format, decoded through a registry double on loopback (its REST API)."""

import asyncio
from datetime import UTC, datetime

import orjson
import pytest

from dqhash.core.contracts import parse_cloud, parse_onprem
from dqhash.core.input_records import OnPremEvent, Reason, Rejection
from dqhash.core.records import SOURCE_CLOUD, SOURCE_ONPREM, Input
from dqhash.core.wire import DECODE_REASON, plain, split_frame
from dqhash.engine.reconciler import undecoded
from dqhash.kafka.schema_registry import SchemaRegistry
from tests.registry_double import CLOUD_SCHEMA, ONPREM_SCHEMA, RegistryDouble, avro, framed

H = "ab" * 32
TS = datetime(2026, 12, 2, 12, 0, 0, 250000, tzinfo=UTC)


@pytest.fixture
def registry():
    double = RegistryDouble(auth=("key", "secret")).start()
    double.register_avro(7, ONPREM_SCHEMA)
    double.register_avro(8, CLOUD_SCHEMA)
    double.register_json(9, {"type": "object"})
    yield double
    double.stop()


def onprem_avro(pk="42", schema_id=7):
    record = {
        "event_id": "e1",
        "hash_onprem": H,
        "partitionColumns": [{"type": "PK", "value": pk}],
        "event_ts": TS,
        "action": "UPDATE",
    }
    return avro(schema_id, ONPREM_SCHEMA, record)


def decode(client, *values, source=SOURCE_ONPREM):
    inputs = [Input(source, "topic1", 0, i, b"k", v, None, 1) for i, v in enumerate(values)]
    return asyncio.run(_decode(client, inputs))


async def _decode(client, inputs):
    try:
        return await client.decode(inputs)
    finally:
        await client.close()


def reason_of(record):
    return dict(record.headers or ()).get(DECODE_REASON, b"").decode()


def test_an_avro_record_decodes_to_the_contract_and_parses_like_json(registry):
    client = SchemaRegistry(registry.url, "key", "secret", retries=0)
    [decoded] = decode(client, onprem_avro())
    event = parse_onprem(decoded.value)
    assert isinstance(event, OnPremEvent)
    assert (event.pk, event.hash.digest, event.event_ts, event.action.value) == ("42", H, 1796212800250, "UPDATE")
    client = SchemaRegistry(registry.url, "key", "secret", retries=0)
    [cloud] = decode(
        client, avro(8, CLOUD_SCHEMA, {"pk": "42", "hash_cloud": None, "cloud_ts": TS}), source=SOURCE_CLOUD
    )
    parsed = parse_cloud(cloud.value)
    assert parsed.pk == "42" and parsed.hash is None


def test_schemas_are_cached_and_fetched_once_per_batch_however_many_records(registry):
    client = SchemaRegistry(registry.url, "key", "secret")

    async def twice():
        batch = [Input(SOURCE_ONPREM, "topic1", 0, i, b"k", onprem_avro(str(i)), None, 1) for i in range(50)]
        await client.decode(batch)
        await client.decode(batch[:1])
        await client.close()

    asyncio.run(twice())
    assert registry.requests == ["/schemas/ids/7"]


def test_unknown_id_registry_down_bad_body_and_json_schema(registry):
    client = SchemaRegistry(registry.url, "key", "secret", retries=1)
    unknown, garbage, short, json_schema = decode(
        client, onprem_avro(schema_id=99), framed(7, b"\x02\xff\xff"), b"\x00\x01", framed(9, b'{"event_id":"e9"}')
    )
    assert reason_of(unknown) == Reason.SCHEMA_NOT_FOUND.value and unknown.value == onprem_avro(schema_id=99)
    assert reason_of(garbage) == Reason.UNDECODABLE.value and reason_of(short) == Reason.UNDECODABLE.value
    assert json_schema.value == b'{"event_id":"e9"}' and reason_of(json_schema) == ""
    registry.down = True
    [down] = decode(SchemaRegistry(registry.url, "key", "secret", retries=2), onprem_avro(schema_id=7))
    assert reason_of(down) == Reason.REGISTRY_UNAVAILABLE.value
    assert registry.requests.count("/schemas/ids/7") == 1 + 3  # the first client's fetch, then 1 try + 2 retries


def test_wrong_credentials_are_named():
    double = RegistryDouble(auth=("key", "secret")).start()
    double.register_avro(7, ONPREM_SCHEMA)
    try:
        [refused] = decode(SchemaRegistry(double.url, "key", "wrong", retries=0), onprem_avro())
    finally:
        double.stop()
    message = dict(refused.headers)[b"dq.decode.message".decode()].decode()
    assert reason_of(refused) == "REGISTRY_UNAVAILABLE" and "DQHASH_SCHEMA_REGISTRY_USERNAME" in message


def test_the_engine_dead_letters_an_undecoded_record_with_its_reason():
    marked = Rejection(Reason.SCHEMA_NOT_FOUND, "the registry has no schema id 99")
    assert undecoded([(DECODE_REASON, b"SCHEMA_NOT_FOUND"), ("dq.decode.message", marked.message.encode())]) == marked
    assert undecoded(None).reason is Reason.UNDECODABLE and "DQHASH_SCHEMA_REGISTRY_URL" in undecoded(None).message


def test_framing_and_plain_values():
    assert split_frame(framed(258, b"x")) == (258, b"x") and split_frame(b"\x00\x01") is None
    assert plain({"t": TS, "n": [TS]}) == {"t": 1796212800250, "n": [1796212800250]}
    assert orjson.loads(orjson.dumps(plain({"b": b"\x01"}))) == {"b": "AQ=="}


def test_an_unreachable_registry_names_its_setting_and_what_happens_to_the_records(caplog):
    import socket

    from dqhash.kafka.schema_registry import SchemaRegistry

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    registry = SchemaRegistry(f"http://127.0.0.1:{port}", timeout_s=1.0, retries=0)

    async def fetch():
        try:
            await registry.fetch({7})
        finally:
            await registry.close()

    asyncio.run(fetch())
    reason, message, _ = registry.failed[7]
    assert reason == "REGISTRY_UNAVAILABLE"
    assert f"DQHASH_SCHEMA_REGISTRY_URL=http://127.0.0.1:{port}" in message and "replay" in message
    assert message in caplog.text
