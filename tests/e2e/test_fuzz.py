"""Bad input at volume: over 10,000 malformed records on both input topics, interleaved with valid pairs.

The worker must neither crash nor stall: every malformed record reaches the DLQ with a reason, and every
valid pair is classified MATCH. Keys and headers are fuzzed too (invalid UTF-8), on good records as well
as bad ones.
"""

from __future__ import annotations

import hashlib
import random
import time
import uuid

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from dqhash.core.outputs import DLQ_REASON
from dqhash.kafka.security import connect_args
from tests.e2e.conftest import cloud, onprem, running_pipeline

pytestmark = pytest.mark.e2e

MALFORMED = 10_200
VALID_PAIRS = 400


def malformed_value(rnd: random.Random, uid: str, onprem_side: bool) -> bytes:
    """A record of the topic's shape that breaks the contract in exactly one of the ways producers (and
    attackers) do; each would be classified if that one defect were not caught."""
    ts = 1_710_000_000_000
    if onprem_side:
        hash_field, ts_field = "hash_onprem", "event_ts"
        shape = {
            "event_id": uid,
            hash_field: "a" * 64,
            "partitionColumns": [{"type": "PK", "value": uid}],
            ts_field: ts,
        }
    else:
        hash_field, ts_field = "hash_cloud", "cloud_ts"
        shape = {"pk": uid, hash_field: "a" * 64, ts_field: ts}
    good = orjson.dumps(shape)
    kind = rnd.randrange(12)
    if kind == 0:
        return rnd.randbytes(rnd.randint(1, 300))
    if kind == 1:
        return good[: rnd.randint(1, len(good) - 1)]  # truncated JSON
    if kind == 2:
        return b"[" * 2000 + b"]" * 2000  # deep nesting
    if kind == 3:
        return good.replace(b"%d" % ts, b"NaN" if rnd.random() < 0.5 else b"Infinity")
    if kind == 4:  # duplicate keys: which hash is meant?
        return good[:-1] + b',"' + hash_field.encode() + b'":"' + b"b" * 64 + b'"}'
    if kind == 5:  # a 10 kB PK
        return (
            good.replace(b'"' + uid.encode() + b'"}', b'"' + uid.encode() + b"x" * 10_000 + b'"}', 1)
            if onprem_side
            else good.replace(uid.encode(), uid.encode() + b"x" * 10_000, 1)
        )
    if kind == 6:  # control characters in the PK
        return good.replace(b'"' + uid.encode() + b'"', b'"' + uid.encode() + b'\\u0007\\n"')
    if kind == 7:  # invalid UTF-8 inside a string
        return good.replace(b'"aaaa', b'"\xff\xfeaa', 1)
    if kind == 8:
        return orjson.dumps({**shape, ts_field: "yesterday"})
    if kind == 9:
        return b'"just a string"' if rnd.random() < 0.5 else b"null"
    if kind == 10:
        return orjson.dumps({**shape, hash_field: 42})
    return good.replace(b"a" * 64, b"zz", 1)


def test_ten_thousand_malformed_records_all_reach_the_dlq_and_valid_pairs_still_match(tmp_path):
    rnd = random.Random(18)
    with running_pipeline(tmp_path, "fuzz") as pipeline:
        settings = pipeline.settings
        records: list[tuple[str, bytes, bytes, list[tuple[str, bytes]]]] = []  # topic, key, value, headers
        bad_keys: set[bytes] = set()
        for i in range(MALFORMED):
            uid = f"fz-{uuid.uuid4().hex[:12]}"
            key = (b"\xff\xfe" if i % 3 == 0 else b"") + uid.encode()  # every third key is invalid UTF-8
            headers = [("x-fuzz", rnd.randbytes(8))] if i % 5 == 0 else []
            topic = settings.onprem_topic if i % 2 else settings.cloud_topic
            records.append((topic, key, malformed_value(rnd, uid, topic == settings.onprem_topic), headers))
            bad_keys.add(key)
        for big in range(2):  # values over 1 MB
            key = f"fz-big-{big}-{uuid.uuid4().hex[:8]}".encode()
            records.append((settings.onprem_topic, key, b'{"event_id": "' + b"x" * 1_100_000 + b'"', []))
            bad_keys.add(key)
        pks = [f"fz-ok-{uuid.uuid4().hex[:12]}" for _ in range(VALID_PAIRS)]
        for n, pk in enumerate(pks):
            digest = hashlib.sha256(pk.encode()).hexdigest()
            for topic, (key, value) in (
                (settings.onprem_topic, onprem(pk, digest)),
                (settings.cloud_topic, cloud(pk, digest)),
            ):
                headers = [("x-fuzz", b"\xc3\x28")] if n % 4 == 0 else []  # invalid UTF-8 header on a good record
                records.insert(
                    rnd.randrange(len(records)), (topic, b"\xff" + key if n % 7 == 0 else key, value, headers)
                )

        async def send() -> None:
            producer = AIOKafkaProducer(**connect_args(settings), linger_ms=5, max_request_size=4 * 1024 * 1024)
            await producer.start()
            try:
                for topic, key, value, headers in records:
                    await producer.send(topic, value, key=key, headers=headers)
                await producer.flush()
            finally:
                await producer.stop()

        started = time.monotonic()
        pipeline.run(send())
        outputs = pipeline.reader.outputs

        def dead_lettered() -> set[bytes]:
            return {key for key, _value, _headers in list(outputs.dlq_records)}

        pipeline._wait(
            lambda out: bad_keys <= dead_lettered(),
            240,
            lambda out: f"all {len(bad_keys)} malformed records in the DLQ; {len(bad_keys - dead_lettered())} missing",
        )
        elapsed = time.monotonic() - started
        for pk in pks:
            [verdict] = pipeline.wait_audit(pk, timeout_s=60)
            assert verdict["status"] == "MATCH", verdict
        fuzzed = [r for r in list(outputs.dlq_records) if r[0] in bad_keys]
        assert all(headers.get(DLQ_REASON) for _key, _value, headers in fuzzed), "a dead letter without its reason"
        assert not any(
            r[0] not in bad_keys for r in list(outputs.dlq_records) if r[0].lstrip(b"\xff").startswith(b"fz-ok")
        ), "a valid record was dead-lettered"
        reasons = sorted({headers[DLQ_REASON].decode() for _key, _value, headers in fuzzed})
        print(
            f"\n{len(bad_keys)} malformed records dead-lettered with {len(pks)} valid pairs interleaved in "
            f"{elapsed:.1f} s: {len(bad_keys) / elapsed:,.0f} dead letters/s; reasons {reasons}"
        )
