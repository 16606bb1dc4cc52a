"""The hot-path rewrites equal what they replaced: murmur2 (aiokafka's), format_ms (datetime's), the contracts' fast paths."""

from datetime import UTC, datetime, timedelta

import orjson
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from dqhash.core.pair_state import Membership
from dqhash.core.partitioning import murmur2
from dqhash.core.timeutil import format_ms

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@given(st.binary(max_size=300))
def test_murmur2_equals_aiokafkas(data):
    assert murmur2(data) == aiokafka_murmur2(data)


@given(st.integers(min_value=-(10**12), max_value=4 * 10**12))
def test_format_ms_equals_datetime_formatting(ms):
    moment = EPOCH + timedelta(milliseconds=ms)
    assert format_ms(ms) == moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


# The contracts' fast paths (one text PK, epoch-millis timestamps, an action in upper case, no columns_removed)
# must parse as the general path does; each pair below differs only in a way the fast path does not take.
_HASH = "ab" * 32


@given(st.text(min_size=1, max_size=20), st.integers(946_684_800_000, 4_102_444_799_999))
def test_onprem_fast_path_equals_the_general_path(pk, ts):
    from dqhash.core.contracts import parse_onprem
    from dqhash.core.timeutil import format_ms as iso

    fast = {
        "event_id": "e",
        "hash_onprem": _HASH,
        "partitionColumns": [{"type": "PK", "value": pk}],
        "event_ts": ts,
        "action": "UPDATE",
    }
    general = {**fast, "partitionColumns": [{"type": "pk", "value": pk}], "event_ts": iso(ts), "action": "update"}
    assert parse_onprem(orjson.dumps(fast)) == parse_onprem(orjson.dumps(general))


@given(st.text(min_size=1, max_size=20), st.integers(946_684_800_000, 4_102_444_799_999))
def test_cloud_fast_path_equals_the_general_path(pk, ts):
    from dqhash.core.contracts import parse_cloud
    from dqhash.core.timeutil import format_ms as iso

    fast = {"pk": pk, "hash_cloud": _HASH, "cloud_ts": ts}
    general = {"pk": [pk], "hash_cloud": _HASH, "cloud_ts": iso(ts), "columns_removed": []}
    assert parse_cloud(orjson.dumps(fast)) == parse_cloud(orjson.dumps(general))


def test_fast_paths_still_refuse_what_the_general_path_refuses():
    from dqhash.core.contracts import parse_cloud, parse_onprem
    from dqhash.core.input_records import Reason

    event = {
        "event_id": "e",
        "hash_onprem": _HASH,
        "partitionColumns": [{"type": "PK", "value": ""}],
        "event_ts": 1_714_564_800_000,
    }
    assert parse_onprem(orjson.dumps(event)).reason is Reason.MISSING_PK
    assert (
        parse_onprem(
            orjson.dumps({**event, "partitionColumns": [{"type": "PK", "value": "k"}], "event_ts": 1_714_564_800})
        ).reason
        is Reason.INVALID_TIMESTAMP
    )
    assert (
        parse_cloud(orjson.dumps({"pk": "", "hash_cloud": None, "cloud_ts": 1_714_564_800_000})).reason
        is Reason.MISSING_PK
    )
    assert (
        parse_cloud(
            orjson.dumps({"pk": "k", "hash_cloud": None, "cloud_ts": 1_714_564_800_000, "columns_removed": "amount"})
        ).reason
        is Reason.INVALID_FIELD_TYPE
    )


def test_positional_constructions_fill_every_field():
    """``tuple.__new__(Cls, fields)`` does not check arity: a field added to a NamedTuple without updating the
    hot path's constructions would give short tuples. Every kind built that way, checked here at full length."""
    from dqhash.core.classify import on_cloud, on_onprem
    from dqhash.core.codec import decode_state, encode_state
    from dqhash.core.contracts import parse_cloud, parse_onprem
    from dqhash.core.pair_state import Rules
    from dqhash.core.partitioning import partition_for
    from dqhash.core.records import SOURCE_CLOUD, SOURCE_ONPREM, SOURCE_TICK, Input
    from dqhash.engine.reconciler import Reconciler
    from dqhash.ops.dogstatsd import Metrics
    from dqhash.settings import load

    def full(value):
        assert len(value) == len(type(value)._fields), type(value).__name__
        return value

    event = full(
        parse_onprem(
            orjson.dumps(
                {
                    "event_id": "e",
                    "hash_onprem": _HASH,
                    "event_ts": 1_714_564_800_000,
                    "partitionColumns": [{"type": "PK", "value": "k"}],
                }
            )
        )
    )
    seen = full(parse_cloud(orjson.dumps({"pk": "k", "hash_cloud": _HASH, "cloud_ts": 1_714_564_800_001})))
    full(event.hash), full(seen.hash)
    first = full(on_onprem(None, event, 1_714_564_800_002, Rules()))
    second = full(on_cloud(first.state, seen, 1_714_564_800_003, Rules()))
    for step in (first, second, full(on_cloud(None, seen, 1_714_564_800_003, Rules()))):
        full(step.state), step.state.tracked and full(step.state.tracked), step.state.cloud and full(step.state.cloud)
    full(second.verdicts[0])
    stored = full(decode_state(encode_state(second.state._replace(outbox=second.verdicts))))
    full(stored.tracked), full(stored.cloud), full(stored.outbox[0])

    settings = load({})
    clock = [1_714_564_900_000]
    reconciler = Reconciler(
        settings,
        {},
        Metrics("127.0.0.1", 9, [], enabled=False),
        lambda table, p, after=None: iter(()),
        lambda: clock[0],
    )
    key = b"k"
    home = partition_for("k", settings.partitions)
    away = (home + 1) % settings.partitions
    onprem = orjson.dumps(
        {
            "event_id": "e",
            "hash_onprem": _HASH,
            "event_ts": 1_714_564_800_000,
            "partitionColumns": [{"type": "PK", "value": "k"}],
        }
    )
    outs = reconciler.process(
        [
            Input(SOURCE_ONPREM, settings.onprem_topic, away, 0, b"e", onprem, [], 1),  # forwarded
            Input(SOURCE_ONPREM, settings.onprem_topic, home, 0, key, onprem, [], 1),
            Input(
                SOURCE_CLOUD,
                settings.cloud_topic,
                home,
                0,
                key,
                orjson.dumps({"pk": "k", "hash_cloud": "cd" * 32, "cloud_ts": 1_714_564_800_001}),
                [],
                1,
            ),
        ]
    )
    clock[0] += 1_000
    outs += reconciler.process([Input(SOURCE_TICK, settings.tick_topic, home, 0)])  # its MISMATCH: audit + repair
    assert {out.topic for out in outs} >= {settings.rekey_topic, settings.audit_topic, settings.repair_topic}
    for out in outs:
        full(out)


@given(st.binary(max_size=300), st.integers(min_value=1, max_value=10_000))
def test_the_compiled_partitioner_equals_the_reference(data, partitions):
    import os

    import pytest

    from dqhash.core import partitioning

    if not partitioning.COMPILED:
        if os.environ.get("DQHASH_REQUIRE_COMPILED") == "1":
            raise AssertionError("dqhash.core._fasthash did not build: see the install's compiler output")
        pytest.skip("the compiled partitioner is not built in this install (no C compiler): the reference runs")
    assert partitioning.key_partition(data, partitions) == partitioning.reference_partition(data, partitions)
    assert partitioning.key_partition(bytearray(data), partitions) == partitioning.reference_partition(data, partitions)


def test_the_reference_partitioner_remembers_short_keys_only():
    """Without a C compiler the reference partitions every key, cached: a PK's partition once, a long key (a dead
    letter keeps its record's own key) each time, so what the cache holds stays bounded."""
    from dqhash.core import partitioning

    partitioning._cached_reference.cache_clear()
    short, long = b"pk-42", b"k" * (partitioning.CACHED_KEY_BYTES + 1)
    for key in (short, short, long, long):
        assert partitioning.cached_reference_partition(key, 12) == partitioning.reference_partition(key, 12)
    assert partitioning._cached_reference.cache_info().currsize == 1


def test_the_compiled_partitioner_refuses_no_partitions():
    import pytest

    from dqhash.core import partitioning

    if not partitioning.COMPILED:
        pytest.skip("the compiled partitioner is not built in this install")
    with pytest.raises(ValueError, match="at least 1"):
        partitioning.key_partition(b"k", 0)


# A snapshot membership is built past the NamedTuple's ``_replace`` (``core.membership``); it must be the
# membership ``_replace`` gave, field for field and type for type (``judgement`` compares ``judged`` by identity).
def _joined_by_replace(member, snapshot_id, onprem, token_range):
    if member is None or member.snapshot_id != snapshot_id:
        member = Membership(snapshot_id, False, False, None, False)
    if token_range is None:
        token_range = member.token_range
    if onprem:
        return member._replace(onprem=True, token_range=token_range)
    return member._replace(cloud=True, token_range=token_range)


_MEMBERS = st.none() | st.builds(
    Membership,
    st.sampled_from(["s1", "s2"]),
    st.booleans(),
    st.booleans(),
    st.none() | st.integers(0, 7),
    st.booleans(),
)


@given(_MEMBERS, st.sampled_from(["s1", "s2"]), st.booleans(), st.none() | st.integers(0, 7))
def test_joined_equals_replace(member, snapshot_id, onprem, token_range):
    from dqhash.core.membership import joined

    made = joined(member, snapshot_id, onprem, token_range)
    expected = _joined_by_replace(member, snapshot_id, onprem, token_range)
    assert made == expected and type(made) is type(expected)
    assert [type(field) for field in made] == [type(field) for field in expected]


@given(_MEMBERS, st.booleans())
def test_judgement_equals_replace(member, pending):
    from dqhash.core.membership import judgement
    from dqhash.core.pair_state import PENDING, Tracked

    tracked = None
    if member is not None and pending:  # the member's on-prem row of its run, without a verdict yet
        fields = dict(event_id="e", event_ts=0, action="SNAPSHOT", hash_version="v2", hash_digest=_HASH)
        tracked = Tracked(
            **fields, arrived_ms=0, deadline_ms=0, status=PENDING, by_deadline=False, snapshot_id=member.snapshot_id
        )
    made = judgement(member, tracked)
    expected = member if member is None or not member.onprem else member._replace(judged=not pending)
    assert made == expected and (made is None or made.judged is expected.judged)
