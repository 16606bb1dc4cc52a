"""The hot-path rewrites equal what they replaced: murmur2 (aiokafka's), format_ms (datetime's)."""

from datetime import datetime, timedelta, timezone

from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from dqhash.partitioning import murmur2
from dqhash.timeutil import format_ms

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@given(st.binary(max_size=64))
def test_murmur2_equals_aiokafkas(data):
    assert murmur2(data) == aiokafka_murmur2(data)


@given(st.integers(min_value=-10**12, max_value=4 * 10**12))
def test_format_ms_equals_datetime_formatting(ms):
    moment = EPOCH + timedelta(milliseconds=ms)
    assert format_ms(ms) == moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
