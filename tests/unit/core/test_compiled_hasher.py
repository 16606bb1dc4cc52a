"""The hasher's compiled path against the pure-Python reference: byte-identical hashes and digests on
generated rows of every type, the same refusals, and both of its SHA-256s against hashlib's.

The golden vectors run on both paths in test_hashing.py. CI requires the compiled path to be built
(DQHASH_REQUIRE_COMPILED=1); elsewhere its tests are skipped, saying so, where it is not.
"""

import hashlib
import os
import string
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dqhash.core import compiled_hasher
from dqhash.core.canonical import CanonicalError
from dqhash.core.hashing import HashConfigError, RowHasher

REQUIRED = os.environ.get("DQHASH_REQUIRE_COMPILED") == "1"
needs_compiled = pytest.mark.skipif(
    not compiled_hasher.AVAILABLE and not REQUIRED,
    reason="the compiled hasher is not built in this install (no C compiler at install time): the pure-Python "
    "reference hashes every row",
)


def test_the_compiled_path_is_built_where_it_is_required():
    if not REQUIRED:
        pytest.skip("DQHASH_REQUIRE_COMPILED is not set (CI sets it)")
    assert compiled_hasher.AVAILABLE, "dqhash.core._fasthash did not build: see the install's compiler output"


@needs_compiled
@pytest.mark.parametrize("portable", [False, True], ids=["openssl-where-found", "portable"])
def test_both_sha256s_equal_hashlib_at_every_length_around_the_block_edges(portable):
    from dqhash.core import _fasthash

    for length in [*range(0, 200), 1_000, 65_537]:
        data = bytes((i * 7 + length) % 256 for i in range(length))
        assert _fasthash.sha256_hex(data, portable) == hashlib.sha256(data).hexdigest(), length


# values of every kind the compiled encoders take, and of every kind they hand to the reference
texts = st.text(max_size=12) | st.text(alphabet=st.characters(blacklist_categories=()), max_size=4)
integers = st.integers(min_value=-(2**70), max_value=2**70) | st.sampled_from([2**63 - 1, -(2**63), 2**31, -129])
floats = st.floats() | st.sampled_from([0.0, -0.0, float("nan"), float("inf")])
decimals = (
    st.decimals(allow_nan=True, allow_infinity=True)
    | st.decimals(places=4, allow_nan=False)
    | st.sampled_from(
        [Decimal("0E-9"), Decimal("-0"), Decimal("1E+999"), Decimal("1E+1001"), Decimal("-1.230E-5"), Decimal("100")]
    )
)
zones = st.sampled_from([None, UTC, timezone(timedelta(hours=-5))])
stamps = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=zones)
scalars = st.none() | st.booleans() | texts | integers | floats | decimals | stamps | st.dates() | st.binary(max_size=4)
values = scalars | st.lists(scalars, max_size=3) | st.dictionaries(st.text(max_size=3), scalars, max_size=2)
TYPES = ["text", "int", "bigint", "smallint", "tinyint", "varint", "double", "float", "decimal", "boolean",
         "timestamp", "date", "list<text>", "blob", None]  # fmt: skip
names = st.text(alphabet=string.ascii_lowercase + "é_", min_size=1, max_size=6)


def outcome(hasher: RowHasher, row: dict) -> tuple:
    try:
        ref, digests = hasher.hash_and_digests(row)
        return ("hashed", ref, digests, hasher.hash(row))
    except CanonicalError as refused:
        return ("refused", str(refused))


@needs_compiled
@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(names, st.tuples(values, st.sampled_from(TYPES)), min_size=1, max_size=8), st.booleans())
def test_generated_rows_hash_and_refuse_exactly_as_the_reference(columns, fixed_fields):
    row = {name: value for name, (value, _) in columns.items()}
    types = {name: ctype for name, (_, ctype) in columns.items() if ctype is not None}
    fields = [*row, "absent"] if fixed_fields else None
    compiled = RowHasher("v2", fields, types, compiled=True)
    assert compiled.compiled
    assert outcome(compiled, row) == outcome(RowHasher("v2", fields, types, compiled=False), row)


@needs_compiled
@pytest.mark.parametrize("portable", [False, True], ids=["openssl-where-found", "portable"])
def test_the_benchmark_row_hashes_alike_on_both_paths_and_both_sha256s(portable):
    types = {"id": "bigint", "name": "text", "balance": "decimal", "score": "double", "active": "boolean",
             "updated_at": "timestamp", "born": "date", "tags": "list<text>"}  # fmt: skip
    rows = [
        {"id": n, "name": f"customer-{n}", "balance": Decimal(n % 1000) / 100, "score": n * 0.5, "active": n % 2 == 0,
         "updated_at": datetime(2024, 5, 1, tzinfo=UTC) + timedelta(seconds=n), "born": date(1990, 1, 1),
         "tags": None if n % 3 == 0 else ["a", "b"]}
        for n in range(300)
    ]  # fmt: skip
    try:
        assert compiled_hasher.sha256_backend(portable) == (
            "portable" if portable else compiled_hasher.sha256_backend()
        )
        fast, reference = RowHasher("v2", None, types, compiled=True), RowHasher("v2", None, types, compiled=False)
        assert [fast.hash_and_digests(r) for r in rows] == [reference.hash_and_digests(r) for r in rows]
    finally:
        compiled_hasher.sha256_backend(False)


@needs_compiled
def test_rows_that_are_not_dicts_and_v1_rows_take_the_reference():
    from collections import OrderedDict
    from types import MappingProxyType

    row = {"a": 1, "b": "x"}
    expected = RowHasher("v2", compiled=False).hash_and_digests(row)
    assert RowHasher("v2").hash_and_digests(MappingProxyType(row)) == expected
    assert RowHasher("v2").hash_and_digests(OrderedDict(row)) == expected
    assert RowHasher("v1").compiled is False


def test_requiring_the_compiled_path_where_it_is_not_built_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(compiled_hasher, "AVAILABLE", False)
    with pytest.raises(HashConfigError, match="compiled hasher is not built"):
        RowHasher("v2", compiled=True)
    assert RowHasher("v2").compiled is False  # the reference, silently: the same hashes


EDGES = [
    None, True, False, "", "é", "\ud800", "12", "1.50", "true", "2024-05-01T00:00:00Z",
    0, -1, 127, 128, -129, 2**31 - 1, 2**31, 2**63 - 1, -(2**63), 2**63, 10**1000, 10**999,
    0.0, -0.0, 0.1, 1e-310, 3.4e39, float("nan"), float("inf"), float("-inf"),
    Decimal("1.2300"), Decimal("0.0280"), Decimal("1E+3"), Decimal("-0.00"), Decimal("123.456E-10"), Decimal("0E-9"),
    Decimal("1E+998"), Decimal("1E+999"), Decimal("-1E-999"), Decimal("NaN"), Decimal("-Infinity"), Decimal("7"),
    Decimal("1" * 70), Decimal("0." + "0" * 80 + "5"),
    datetime(2024, 5, 1, 12, 0, 0, 999_999), datetime(1969, 12, 31, 23, 59, 59, 1_000), datetime(1, 1, 1),
    datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC), datetime(2024, 5, 1, tzinfo=timezone(timedelta(hours=2))),
    date(1970, 1, 1), date(1969, 12, 31), date(1, 1, 1), date(9999, 12, 31), date(2000, 2, 29),
    b"\x00\xff", [], ["a", None], ("a",), {"k": 1}, {},
]  # fmt: skip


@needs_compiled
def test_every_edge_value_of_every_type_hashes_or_is_refused_exactly_as_the_reference():
    """Deterministic next to the generated rows: each value at or past an edge, under every type."""
    differ = []
    for ctype in TYPES:
        types = {"c": ctype} if ctype else {}
        fast, reference = RowHasher("v2", None, types, compiled=True), RowHasher("v2", None, types, compiled=False)
        for value in EDGES:
            row = {"c": value, "other": "x"}
            if outcome(fast, row) != outcome(reference, row):
                differ.append((ctype, value, outcome(fast, row), outcome(reference, row)))
    assert differ == []
