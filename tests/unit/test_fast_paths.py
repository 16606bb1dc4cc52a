"""The hot-path rewrites equal what they replaced: murmur2 (aiokafka's), format_ms (datetime's), the contracts' fast paths."""

from datetime import datetime, timedelta, timezone

import orjson

from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from dqhash.partitioning import murmur2
from dqhash.timeutil import format_ms

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@given(st.binary(max_size=300))
def test_murmur2_equals_aiokafkas(data):
    assert murmur2(data) == aiokafka_murmur2(data)


@given(st.integers(min_value=-10**12, max_value=4 * 10**12))
def test_format_ms_equals_datetime_formatting(ms):
    moment = EPOCH + timedelta(milliseconds=ms)
    assert format_ms(ms) == moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


# The contracts' fast paths (one text PK, epoch-millis timestamps, an action in upper case, no columns_removed)
# must parse as the general path does; each pair below differs only in a way the fast path does not take.
_HASH = "ab" * 32


@given(st.text(min_size=1, max_size=20), st.integers(946_684_800_000, 4_102_444_799_999))
def test_onprem_fast_path_equals_the_general_path(pk, ts):
    from dqhash.contracts import parse_onprem
    from dqhash.timeutil import format_ms as iso

    fast = {"event_id": "e", "hash_onprem": _HASH, "partitionColumns": [{"type": "PK", "value": pk}],
            "event_ts": ts, "action": "UPDATE"}
    general = {**fast, "partitionColumns": [{"type": "pk", "value": pk}], "event_ts": iso(ts), "action": "update"}
    assert parse_onprem(orjson.dumps(fast)) == parse_onprem(orjson.dumps(general))


@given(st.text(min_size=1, max_size=20), st.integers(946_684_800_000, 4_102_444_799_999))
def test_cloud_fast_path_equals_the_general_path(pk, ts):
    from dqhash.contracts import parse_cloud
    from dqhash.timeutil import format_ms as iso

    fast = {"pk": pk, "hash_cloud": _HASH, "cloud_ts": ts}
    general = {"pk": [pk], "hash_cloud": _HASH, "cloud_ts": iso(ts), "columns_removed": []}
    assert parse_cloud(orjson.dumps(fast)) == parse_cloud(orjson.dumps(general))


def test_fast_paths_still_refuse_what_the_general_path_refuses():
    from dqhash.contracts import Reason, parse_cloud, parse_onprem

    event = {"event_id": "e", "hash_onprem": _HASH, "partitionColumns": [{"type": "PK", "value": ""}],
             "event_ts": 1_714_564_800_000}
    assert parse_onprem(orjson.dumps(event)).reason is Reason.MISSING_PK
    assert parse_onprem(orjson.dumps({**event, "partitionColumns": [{"type": "PK", "value": "k"}],
                                      "event_ts": 1_714_564_800})).reason is Reason.INVALID_TIMESTAMP
    assert parse_cloud(orjson.dumps({"pk": "", "hash_cloud": None, "cloud_ts": 1_714_564_800_000})).reason \
        is Reason.MISSING_PK
    assert parse_cloud(orjson.dumps({"pk": "k", "hash_cloud": None, "cloud_ts": 1_714_564_800_000,
                                     "columns_removed": "amount"})).reason is Reason.INVALID_FIELD_TYPE
