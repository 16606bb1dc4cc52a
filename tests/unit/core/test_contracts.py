import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dqhash.core import contracts
from dqhash.core.contracts import check_snapshot_id, parse_cloud, parse_hash, parse_onprem
from dqhash.core.input_records import (
    COLUMN_DIGEST_HEX,
    MAX_COLUMN_NAME,
    Action,
    CloudHash,
    HashRef,
    OnPremEvent,
    Reason,
    Rejection,
)
from dqhash.core.record_keys import canonical_pk

H = "ab" * 32
TS = "2024-05-01T12:00:00.250Z"
TS_MS = 1714564800250


def onprem(**overrides):
    doc = {
        "event_id": "e1",
        "hash_onprem": H,
        "partitionColumns": [{"type": "PK", "value": "42"}],
        "event_ts": TS,
        "action": "UPDATE",
    }
    doc.update(overrides)
    return orjson.dumps({k: v for k, v in doc.items() if v is not ...})


def cloud(**overrides):
    doc = {"pk": "42", "hash_cloud": H, "cloud_ts": TS}
    doc.update(overrides)
    return orjson.dumps({k: v for k, v in doc.items() if v is not ...})


def test_valid_onprem_event_parses_to_typed_record():
    assert parse_onprem(onprem()) == OnPremEvent("e1", "42", Action.UPDATE, HashRef("v2", H), TS_MS)


def test_valid_cloud_hash_parses_and_null_hash_means_not_found():
    assert parse_cloud(cloud()) == CloudHash("42", HashRef("v2", H), TS_MS, None)
    assert parse_cloud(cloud(columns_removed=["amount"])).columns_removed == ("amount",)
    assert parse_cloud(cloud(hash_cloud=None)) == CloudHash("42", None, TS_MS, None)


@pytest.mark.parametrize(
    "parse, raw, reason",
    [
        (parse_onprem, None, Reason.EMPTY_VALUE),
        (parse_cloud, b"", Reason.EMPTY_VALUE),
        (parse_onprem, b"{not json", Reason.INVALID_JSON),
        (parse_cloud, b"\xff\xfe", Reason.INVALID_JSON),
        (parse_onprem, b"[1,2]", Reason.NOT_AN_OBJECT),
        (parse_onprem, onprem(event_id=...), Reason.MISSING_FIELD),
        (parse_onprem, onprem(event_id={"x": 1}), Reason.INVALID_FIELD_TYPE),
        (parse_onprem, onprem(partitionColumns=...), Reason.MISSING_PK),
        (parse_onprem, onprem(partitionColumns=[]), Reason.MISSING_PK),
        (parse_onprem, onprem(partitionColumns=[{"type": "CK", "value": "x"}]), Reason.MISSING_PK),
        (parse_onprem, onprem(partitionColumns=[{"type": "PK", "value": ""}]), Reason.MISSING_PK),
        (parse_onprem, onprem(partitionColumns=[{"type": "PK", "value": None}]), Reason.MISSING_PK),
        (parse_onprem, onprem(partitionColumns=[{"type": "PK", "value": 1.5}]), Reason.INVALID_PK),
        (parse_onprem, onprem(partitionColumns=[{"type": "PK", "value": True}]), Reason.INVALID_PK),
        (parse_onprem, onprem(partitionColumns={"type": "PK"}), Reason.INVALID_FIELD_TYPE),
        (parse_onprem, onprem(partitionColumns=["42"]), Reason.INVALID_FIELD_TYPE),
        (parse_onprem, onprem(hash_onprem="xyz"), Reason.INVALID_HASH_FORMAT),
        (parse_onprem, onprem(hash_onprem="g" * 64), Reason.INVALID_HASH_FORMAT),
        (parse_onprem, onprem(hash_onprem=12), Reason.INVALID_HASH_FORMAT),
        (parse_onprem, onprem(hash_onprem="md5:" + H), Reason.INVALID_HASH_FORMAT),
        (parse_onprem, onprem(hash_onprem="v1:" + H, hash_version="v2"), Reason.INVALID_HASH_FORMAT),
        (parse_onprem, onprem(hash_onprem="v7:" + H), Reason.UNKNOWN_HASH_VERSION),
        (parse_onprem, onprem(hash_onprem=...), Reason.MISSING_FIELD),
        (parse_onprem, onprem(action="MERGE"), Reason.UNKNOWN_ACTION),
        (parse_onprem, onprem(action=3), Reason.UNKNOWN_ACTION),
        (parse_onprem, onprem(event_ts=...), Reason.MISSING_FIELD),
        (parse_onprem, onprem(event_ts="yesterday"), Reason.INVALID_TIMESTAMP),
        (parse_onprem, onprem(event_ts="2024-05-01T12:00:00"), Reason.INVALID_TIMESTAMP),
        (parse_onprem, onprem(event_ts=1714564800), Reason.INVALID_TIMESTAMP),  # seconds, not millis
        (parse_onprem, onprem(event_ts=1714564800.5), Reason.INVALID_TIMESTAMP),
        (parse_cloud, cloud(pk=...), Reason.MISSING_PK),
        (parse_cloud, cloud(pk=[]), Reason.MISSING_PK),
        (parse_cloud, cloud(pk={"a": 1}), Reason.INVALID_PK),
        (parse_cloud, cloud(hash_cloud=...), Reason.MISSING_FIELD),
        (parse_cloud, cloud(cloud_ts=...), Reason.MISSING_FIELD),
        (parse_cloud, cloud(cloud_ts="2024-13-01T00:00:00Z"), Reason.INVALID_TIMESTAMP),
        (parse_cloud, cloud(hash_cloud="abc"), Reason.INVALID_HASH_FORMAT),
        (parse_cloud, cloud(column_digests=[1]), Reason.INVALID_COLUMN_DIGESTS),
        (parse_cloud, cloud(column_digests={"name": "not-hex"}), Reason.INVALID_COLUMN_DIGESTS),
        (parse_onprem, onprem(column_digests={"name": "ab" * 9}), Reason.INVALID_COLUMN_DIGESTS),
        (parse_onprem, onprem(column_digests={"": "ab" * 8}), Reason.INVALID_COLUMN_DIGESTS),
        (parse_onprem, onprem(column_digests={f"c{i}": "ab" * 8 for i in range(257)}), Reason.INVALID_COLUMN_DIGESTS),
        (parse_onprem, onprem(column_digests={"name": 7}), Reason.INVALID_COLUMN_DIGESTS),
        (parse_cloud, cloud(columns_removed="amount"), Reason.INVALID_FIELD_TYPE),
    ],
)
def test_every_rejection_reason(parse, raw, reason):
    result = parse(raw)
    assert isinstance(result, Rejection), result
    assert result.reason is reason
    assert result.message


@pytest.mark.parametrize(
    "digests",
    [
        {},
        {"name": "ab" * 8},
        {"name": "AB" * 8, "amount": "0f" * 8},  # upper case: lower-cased
        {"name": "ab" * 8, "amount": "ab" * 7 + "," + "a"},  # a comma inside a digest of the right length
        {"name": "ab" * 16 + "a", "amount": ""},  # the right total length, split wrong
        {"name": "ab" * 8, "amount": None},
        {"name": "ab" * 8, "": "ab" * 8},
        {"name": "ab" * 8, "a\x7fb": "ab" * 8},
        {"n" * 129: "ab" * 8},
        {"n" * 128: "ab" * 8},
    ],
)
def test_column_digests_checked_at_once_as_one_by_one(digests):
    """The whole-record check (``_well_formed``) accepts exactly what the per-column check returns unchanged,
    and leaves everything else to it, so both give the same parse."""
    from dqhash.core.contracts import _checked_one_by_one

    expected = _checked_one_by_one(dict(digests))
    for parse, make in ((parse_onprem, onprem), (parse_cloud, cloud)):
        result = parse(make(column_digests=digests))
        if isinstance(expected, Rejection):
            assert result.reason is Reason.INVALID_COLUMN_DIGESTS and result.message == expected.message
        else:
            assert result.column_digests == expected


def _with_one_changed(text: str, where: int, character: str | None) -> str:
    """``text`` with the character at ``where`` replaced (None: unchanged): one flaw in a well-formed value."""
    if character is None or not text:
        return text
    where %= len(text)
    return text[:where] + character + text[where + 1 :]


#: characters that make a name or a digest ill-formed, and some that do not
_FLAWS = st.sampled_from(
    [None, None, "\x00", "\x1f", "\x7f", "\t", " ", "A", "F", "g", ",", "\u00e9", "\u0663", "\u2028"]
)
_NAME_LIKE = st.one_of(
    st.builds(_with_one_changed, st.text(alphabet="abc_1", min_size=1, max_size=8), st.integers(0, 7), _FLAWS),
    st.builds(_with_one_changed, st.text(alphabet="n", min_size=126, max_size=130), st.integers(0, 129), _FLAWS),
    st.text(max_size=4),  # anything, the empty name too
)
_HEX_LIKE = st.one_of(
    st.builds(
        _with_one_changed, st.text(alphabet="0123456789abcdef", min_size=15, max_size=17), st.integers(0, 16), _FLAWS
    ),
    st.none(),
    st.integers(),
)


@pytest.mark.parametrize("path", ["as installed", "the Python reference"])
@settings(max_examples=300)
@given(digests=st.dictionaries(_NAME_LIKE, _HEX_LIKE, max_size=5))
def test_column_digests_checked_at_once_agree_on_any_input(path, digests):
    """Whichever check runs (the compiled one where the install built it, else the reference), a record's column
    digests parse as the one-by-one check returns them."""
    from dqhash.core.contracts import _checked_one_by_one, _column_digests

    with pytest.MonkeyPatch.context() as patch:
        if path == "the Python reference":
            patch.setattr(contracts, "column_digests_ok", None)
        expected, got = _checked_one_by_one(dict(digests)), _column_digests(digests)
    assert got == expected


def test_what_the_checks_remember_is_bounded_whatever_producers_send():
    """A table's column names (in the reference check) and a run's id are remembered once checked; an over-long
    name or id is refused without being remembered, so a producer sending huge ones cannot fill the worker's
    memory."""
    from dqhash.core.contracts import _names_well_formed, _snapshot_id_ok, _well_formed_reference

    _names_well_formed.cache_clear()
    _snapshot_id_ok.cache_clear()
    for i in range(3):
        huge = "n" * 100_000 + str(i)
        assert parse_onprem(onprem(column_digests={huge: "ab" * 8})).reason is Reason.INVALID_COLUMN_DIGESTS
        assert not _well_formed_reference({huge: "ab" * 8})
        run = "r" * 100_000 + str(i)
        assert parse_cloud(cloud(snapshot_id=run)).reason is Reason.INVALID_FIELD_TYPE
    assert _names_well_formed.cache_info().currsize == 0
    assert _snapshot_id_ok.cache_info().currsize == 0
    assert parse_cloud(cloud(snapshot_id="run-1", column_digests={"name": "ab" * 8})).snapshot_id == "run-1"
    assert _well_formed_reference({"name": "ab" * 8})
    assert _names_well_formed.cache_info().currsize == 1
    assert _snapshot_id_ok.cache_info().currsize == 1


needs_compiled = pytest.mark.skipif(
    contracts.column_digests_ok is None, reason="the compiled path is not built (no C compiler at install)"
)


@needs_compiled
@settings(max_examples=500)
@given(st.dictionaries(_NAME_LIKE, _HEX_LIKE, max_size=6))
def test_the_compiled_column_digest_check_answers_as_the_reference(digests):
    """``_fasthash.column_digests_ok``, the check of every record's column digests where the install built it,
    says what the Python reference says: names of 1 to MAX_COLUMN_NAME characters without a control character,
    digests of COLUMN_DIGEST_HEX lower-case hex digits."""
    compiled = contracts.column_digests_ok(digests, MAX_COLUMN_NAME, COLUMN_DIGEST_HEX)
    assert compiled is contracts._well_formed_reference(digests)


@needs_compiled
def test_the_compiled_column_digest_check_refuses_what_is_not_a_dict():
    with pytest.raises(TypeError):
        contracts.column_digests_ok(["ab" * 8], MAX_COLUMN_NAME, COLUMN_DIGEST_HEX)


def test_missing_field_message_names_the_field():
    assert "event_ts" in parse_onprem(onprem(event_ts=...)).message
    assert "hash_cloud" in parse_cloud(cloud(hash_cloud=...)).message


def test_action_absent_means_upsert_and_is_case_insensitive():
    assert parse_onprem(onprem(action=...)).action is Action.UPSERT
    assert parse_onprem(onprem(action="delete")).action is Action.DELETE


def test_delete_needs_no_hash():
    event = parse_onprem(onprem(action="DELETE", hash_onprem=...))
    assert event.action is Action.DELETE and event.hash is None


def test_an_unverifiable_change_carries_why_and_no_hash():
    event = parse_onprem(onprem(hash_onprem=..., unverifiable=" column 'name': not sent (TOAST) "))
    assert event.hash is None and event.unverifiable == "column 'name': not sent (TOAST)"
    assert event.action is Action.UPDATE and event.event_ts == TS_MS
    for bad in ("", "  ", 7, ["x"]):
        refused = parse_onprem(onprem(unverifiable=bad))
        assert refused.reason is Reason.INVALID_FIELD_TYPE and "unverifiable" in refused.message
    refused = parse_onprem(onprem(action="DELETE", hash_onprem=..., unverifiable="x"))
    assert refused.reason is Reason.INVALID_FIELD_TYPE and "DELETE" in refused.message
    assert parse_onprem(onprem()).unverifiable is None


def test_a_snapshot_read_says_its_time_is_a_read_not_a_commit():
    event = parse_onprem(onprem(action="UPSERT", snapshot_read=True, column_digests={"name": "ab" * 8}))
    assert event.snapshot_read is True and event.hash == HashRef("v2", H) and event.column_digests == {"name": "ab" * 8}
    assert parse_onprem(onprem(snapshot_read=False)).snapshot_read is False
    assert parse_onprem(onprem(snapshot_read="yes")).reason is Reason.INVALID_FIELD_TYPE
    refused = parse_onprem(onprem(action="DELETE", snapshot_read=True))
    assert refused.reason is Reason.INVALID_FIELD_TYPE and "snapshot_read" in refused.message
    assert parse_onprem(onprem(snapshot_read=True, hash_onprem=...)).reason is Reason.MISSING_FIELD
    both = parse_onprem(onprem(snapshot_read=True, hash_onprem=..., unverifiable="column 'x': not sent"))
    assert both.snapshot_read and both.unverifiable == "column 'x': not sent"


@pytest.mark.parametrize(
    "text, version",
    [
        (H.upper(), "v2"),
        ("sha256:" + H, "v2"),
        ("v1:" + H, "v1"),
        ("V1:SHA256:" + H.upper(), "v1"),
    ],
)
def test_hash_spellings_normalise(text, version):
    assert parse_hash(text) == HashRef(version, H)


def test_hash_version_field_and_default():
    assert parse_hash(H, "v1") == HashRef("v1", H)
    assert parse_hash(H, None, default_version="v1") == HashRef("v1", H)


def test_the_bare_hex_fast_path_keeps_every_rule():
    """A bare lowercase digest takes a short cut; an unknown default version and bad hex are still refused."""
    assert parse_hash(H) == HashRef("v2", H)
    assert parse_hash(H, None, default_version="v9").reason is Reason.UNKNOWN_HASH_VERSION
    assert parse_hash("g" * 64).reason is Reason.INVALID_HASH_FORMAT
    assert parse_hash(H, "v3").reason is Reason.UNKNOWN_HASH_VERSION


@pytest.mark.parametrize(
    "value, declared, expected",
    [
        (H, "v1", HashRef("v1", H)),  # a known version declared: the short cut
        (H, "V1", HashRef("v1", H)),  # declared in upper case: the long way, lower-cased
        (H.upper(), "v1", HashRef("v1", H)),
        ("v1:" + H, "v1", HashRef("v1", H)),
        ("v1:" + H, "v2", Reason.INVALID_HASH_FORMAT),  # the prefix contradicts the field
        (H, 2, Reason.INVALID_FIELD_TYPE),
        (H, ["v2"], Reason.INVALID_FIELD_TYPE),  # unhashable: never looked up in the known versions
        (H, "", HashRef("v2", H)),  # an empty declaration: the default
        (H[:-1], "v2", Reason.INVALID_HASH_FORMAT),
    ],
)
def test_a_declared_hash_version_keeps_every_rule(value, declared, expected):
    """Snapshot rows declare ``hash_version`` with a bare digest, which takes the short cut; every other form gives
    what it gave before."""
    parsed = parse_hash(value, declared)
    assert (parsed.reason if isinstance(parsed, Rejection) else parsed) == expected


def test_a_snapshot_id_is_checked_every_time_though_good_ones_are_remembered():
    assert check_snapshot_id("run-1") == "run-1"
    assert check_snapshot_id("run-1") == "run-1"
    for bad in ("-run", "run 1", "r" * 129, 7, ["run-1"]):
        assert check_snapshot_id(bad).reason is Reason.INVALID_FIELD_TYPE, bad
    assert check_snapshot_id(None).reason is Reason.MISSING_FIELD
    assert check_snapshot_id("").reason is Reason.MISSING_FIELD


def test_integer_and_string_pk_are_the_same_key():
    assert parse_onprem(onprem(partitionColumns=[{"type": "PK", "value": 42}])).pk == "42"
    assert parse_cloud(cloud(pk=42)).pk == "42"


def test_composite_pk_is_the_same_on_both_sides():
    columns = [{"type": "PK", "value": "eu"}, {"type": "CK", "value": "x"}, {"type": "pk", "value": 42}]
    left = parse_onprem(onprem(partitionColumns=columns)).pk
    right = parse_cloud(cloud(pk=["eu", 42])).pk
    assert left == right == '["eu","42"]' == canonical_pk(["eu", 42])


def test_timestamps_normalise_to_utc_millis():
    assert parse_onprem(onprem(event_ts="2024-05-01T14:00:00.250+02:00")).event_ts == TS_MS
    assert parse_onprem(onprem(event_ts=TS_MS)).event_ts == TS_MS
    assert parse_onprem(onprem(event_ts="2024-05-01T12:00:00.250999Z")).event_ts == TS_MS


def test_integer_event_id_kept_as_text():
    assert parse_onprem(onprem(event_id=7)).event_id == "7"


@settings(max_examples=500)
@given(st.binary(max_size=300))
def test_parsing_never_raises_on_arbitrary_bytes(raw):
    assert isinstance(parse_onprem(raw), (OnPremEvent, Rejection))
    assert isinstance(parse_cloud(raw), (CloudHash, Rejection))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=70),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=500)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "event_id",
                "hash_onprem",
                "partitionColumns",
                "event_ts",
                "action",
                "pk",
                "hash_cloud",
                "cloud_ts",
                "hash_version",
                "column_digests",
            ]
        ),
        json_values,
        max_size=8,
    )
)
def test_parsing_never_raises_on_arbitrary_json_objects(doc):
    raw = json.dumps(doc).encode()  # stdlib: also emits integers beyond 64 bits
    assert isinstance(parse_onprem(raw), (OnPremEvent, Rejection))
    assert isinstance(parse_cloud(raw), (CloudHash, Rejection))


def test_integer_pk_beyond_64_bits_keeps_every_digit():
    base = {"event_id": "e1", "hash_onprem": "a" * 64, "event_ts": 1_710_000_000_000}
    first = parse_onprem(
        orjson.dumps(base)[:-1] + b',"partitionColumns":[{"type":"PK","value":12345678901234567890123}]}'
    )
    second = parse_onprem(
        orjson.dumps(base)[:-1] + b',"partitionColumns":[{"type":"PK","value":12345678901234567890124}]}'
    )
    assert first.pk == "12345678901234567890123" and second.pk == "12345678901234567890124"
    cloud = parse_cloud(b'{"pk": 12345678901234567890123, "hash_cloud": null, "cloud_ts": 1710000000000}')
    assert cloud.pk == first.pk


def test_a_fractional_pk_is_still_refused_as_a_float_after_the_exact_reread():
    refused = parse_cloud(b'{"pk": 1.5, "hash_cloud": null, "cloud_ts": 1710000000000}')
    assert refused.reason is Reason.INVALID_PK and "got float" in refused.message
    duplicate = parse_cloud(b'{"pk": 1, "pk": 12345678901234567890123, "hash_cloud": null, "cloud_ts": 1710000000000}')
    assert duplicate.reason is Reason.INVALID_JSON and "duplicate key 'pk'" in duplicate.message


@pytest.mark.parametrize(
    "raw, reason, words",
    [
        (
            b'{"pk": "a", "pk": "b", "hash_cloud": null, "cloud_ts": 1710000000000}',
            Reason.INVALID_JSON,
            "duplicate key 'pk'",
        ),
        (
            b'{"pk": "' + b"k" * 1025 + b'", "hash_cloud": null, "cloud_ts": 1710000000000}',
            Reason.INVALID_PK,
            "longer than 1024 bytes",
        ),
        (b'{"pk": "a\\u0007", "hash_cloud": null, "cloud_ts": 1710000000000}', Reason.INVALID_PK, "control character"),
    ],
)
def test_ambiguous_keys_and_unprintable_or_huge_pks_are_refused(raw, reason, words):
    refused = parse_cloud(raw)
    assert refused.reason is reason and words in refused.message


def test_a_key_name_inside_a_value_is_only_a_false_alarm():
    raw = b'{"pk": "x\\":y", "hash_cloud": null, "cloud_ts": 1710000000000}'
    assert parse_cloud(raw).pk == 'x":y'
    assert parse_cloud(b'{"pk": "' + "é".encode() * 512 + b'", "hash_cloud": null, "cloud_ts": 1710000000000}').pk


def test_kept_json_is_right_sized_and_the_same_bytes():
    import tracemalloc

    import orjson

    from dqhash.core.jsontext import dumps_kept

    value = {"pk": "r00000001", "hash_cloud": "ab" * 32, "cloud_ts": 1}
    assert dumps_kept(value) == orjson.dumps(value)
    tracemalloc.start()
    kept = [dumps_kept(value) for _ in range(1000)]
    size, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert size < 1000 * 400, f"{size / 1000:.0f} bytes a record kept"  # orjson's own buffers: 4 KiB each
    del kept


@given(st.text(alphabet="0123456789abcdefABCDEF ,g\t\u0660é", max_size=40))
def test_lower_hex_says_what_the_regular_expression_would(text):
    import re

    from dqhash.core.contracts import lower_hex

    assert lower_hex(text) == (re.fullmatch("(?:[0-9a-f]{2})*", text) is not None)
