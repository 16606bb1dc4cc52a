import hashlib
import ipaddress
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from uuid import UUID

import pytest
from cassandra.util import Date, OrderedMapSerializedKey, SortedSet, Time
from hypothesis import given, settings
from hypothesis import strategies as st

from dqhash.core.canonical import CanonicalError, canon, parse_type
from dqhash.core.hashing import HashConfigError, RowHasher, differing_columns
from dqhash.core.jsontext import JsonTextError, loads_exact
from tests.paths import VECTORS


def load_vectors():
    for path in sorted(VECTORS.glob("v*.jsonl")):
        for line in path.read_bytes().splitlines():
            vector = loads_exact(line)  # exactly as an implementer must read them: 23-digit integers stay exact
            yield pytest.param(vector, id=f"{vector['strategy']}-{vector['name']}")


HASHERS = [pytest.param(False, id="reference"), pytest.param(None, id="compiled-where-built")]


@pytest.mark.parametrize("compiled", HASHERS)
@pytest.mark.parametrize("vector", list(load_vectors()))
def test_golden_vector(vector, compiled):
    hasher = RowHasher(vector["strategy"], vector["fields"], vector["types"], compiled=compiled)
    if "error" in vector:
        with pytest.raises(CanonicalError) as refused:
            hasher.hash(vector["row"])
        assert str(refused.value) == vector["error"]
        return
    assert hasher.preimage(vector["row"]).decode() == vector["preimage"]
    assert hashlib.sha256(vector["preimage"].encode()).hexdigest() == vector["hash"]
    assert hasher.hash(vector["row"]).digest == vector["hash"]
    assert hasher.column_digests(vector["row"]) == vector["columns"]


@pytest.mark.parametrize("line", (VECTORS / "config.jsonl").read_bytes().splitlines())
def test_configuration_vectors_are_refused(line):
    vector = loads_exact(line)
    with pytest.raises((HashConfigError, CanonicalError), match=vector["config_error"]):
        RowHasher("v2", vector["fields"], vector["types"])


def test_vectors_cover_both_strategies_every_type_and_its_refusals():
    vectors = [p.values[0] for p in load_vectors()]
    assert {v["strategy"] for v in vectors} == {"v1", "v2"}
    assert len(vectors) >= 300
    declared = {str(parse_type(t)).split("<")[0] for v in vectors for t in v["types"].values()}
    refused = {str(parse_type(t)).split("<")[0] for v in vectors if "error" in v for t in v["types"].values()}
    scalar = {"int", "bigint", "smallint", "tinyint", "varint", "counter", "float", "double", "decimal", "boolean"}
    scalar |= {"timestamp", "date", "time", "uuid", "timeuuid", "blob", "inet", "text"}
    assert scalar | {"list", "set", "map", "tuple", "udt"} <= declared
    assert scalar - {"varint"} <= refused  # every bounded type has a vector at or past its edge


def test_build_script_reproduces_the_vectors(tmp_path):
    """The vectors are what tests/vectors/build.py writes: nobody edits one by hand and forgets its preimage."""
    import shutil
    import subprocess
    import sys

    for name in ("build.py", "v1.jsonl", "v2.jsonl", "config.jsonl"):
        shutil.copy(VECTORS / name, tmp_path / name)
    subprocess.run([sys.executable, str(tmp_path / "build.py")], check=True, capture_output=True, timeout=60)
    for name in ("v1.jsonl", "v2.jsonl", "config.jsonl"):
        assert (tmp_path / name).read_bytes() == (VECTORS / name).read_bytes(), f"{name} differs from build.py's output"


def test_v2_worked_example_rederived_from_the_spec_text():
    expected = hashlib.sha256(b"dqhash:v2\n2:s2:idi2:42s4:names3:Ada").hexdigest()
    assert RowHasher("v2").hash({"name": "Ada", "id": 42}).digest == expected


def vector_hash(name, strategy="v2"):
    for path in VECTORS.glob(f"{strategy}.jsonl"):
        for line in path.read_bytes().splitlines():
            vector = loads_exact(line)
            if vector["name"] == name:
                return vector["hash"]
    raise KeyError(name)


@pytest.mark.parametrize(
    "left, right",
    [
        ("decimal leading dot", "decimal trailing zeros"),
        ("timestamp with Z", "timestamp with offset, same instant"),
        ("timestamp with Z", "timestamp microseconds floored"),
        ("timestamp with Z", "timestamp as epoch ms"),
        ("set sorted", "set sorted, other input order"),
        ("set drops duplicates", "set without duplicates"),
        ("float rounds to binary32", "float from a string rounds the same"),
        ("inet IPv4-mapped in mixed form", "inet IPv4-mapped written in hex"),
        ("decimal exponent", "decimal exponent"),
    ],
)
def test_equivalent_renderings_hash_equal(left, right):
    assert vector_hash(left) == vector_hash(right)


def test_v2_distinguishes_what_v1_confuses():
    assert vector_hash("empty string vs null: empty", "v1") == vector_hash("empty string vs null: null", "v1")
    assert vector_hash("empty string vs null: empty") != vector_hash("empty string vs null: null")
    assert vector_hash("separator inside text", "v1") == vector_hash("separator moved", "v1")
    assert vector_hash("separator inside text") != vector_hash("separator moved")


def test_cassandra_driver_values_equal_their_declared_json_forms():
    """What cassandra-driver returns must hash like the JSON the on-prem side declares."""
    types = {
        "ts": "timestamp",
        "d": "date",
        "t": "time",
        "amt": "decimal",
        "u": "uuid",
        "b": "blob",
        "ip": "inet",
        "s": "set<int>",
        "m": "map<text,int>",
        "l": "list<text>",
        "f": "float",
    }
    json_row = {
        "ts": "2024-03-10T12:34:56.789Z",
        "d": "2024-02-29",
        "t": "13:45:00.5",
        "amt": "1.50",
        "u": "8F14E45F-CEEA-467A-9575-8C5E1E3C2D4B",
        "b": "0xcafe",
        "ip": "10.0.0.1",
        "s": [3, 1, 2],
        "m": {"b": 2, "a": 1},
        "l": [],
        "f": 0.5,
    }
    driver_row = {
        "ts": datetime(2024, 3, 10, 12, 34, 56, 789000),
        "d": Date(date(2024, 2, 29)),
        "t": Time(time(13, 45, 0, 500000)),
        "amt": Decimal("1.5"),
        "u": UUID("8f14e45f-ceea-467a-9575-8c5e1e3c2d4b"),
        "b": b"\xca\xfe",
        "ip": "10.0.0.1",
        "s": SortedSet([1, 2, 3]),
        "m": {"a": 1, "b": 2},
        "l": None,
        "f": 0.5,
    }
    declared = RowHasher("v2", types=types)
    inferred = RowHasher("v2", types={"ip": "inet"})  # the driver returns inet as str
    assert declared.hash(json_row) == inferred.hash(driver_row)


def test_udt_namedtuple_hashes_like_a_map():
    from collections import namedtuple

    Address = namedtuple("Address", "street zip")
    hasher = RowHasher("v2")
    assert hasher.hash({"a": Address("Main", 1000)}) == hasher.hash({"a": {"zip": 1000, "street": "Main"}})


def test_aware_datetime_converted_to_utc():
    plus2 = timezone(timedelta(hours=2))
    hasher = RowHasher("v2")
    assert hasher.hash({"ts": datetime(2024, 1, 1, 14, tzinfo=plus2)}) == hasher.hash({"ts": datetime(2024, 1, 1, 12)})


def test_negative_zero_and_nan_canonical():
    assert canon(-0.0) == canon(0.0)
    assert canon(float("nan")) == canon(float("-nan"))


def test_ipv6_canonical_form():
    assert canon("2001:DB8::1", parse_type("inet")) == canon(ipaddress.ip_address("2001:db8::1"))


@pytest.mark.parametrize(
    "text, expected",
    [
        ("map<text, frozen<list<int>>>", "map<text,list<int>>"),
        ("tuple<int,text,timestamp>", "tuple<int,text,timestamp>"),
        ("TIMESTAMP", "timestamp"),
    ],
)
def test_parse_type(text, expected):
    assert str(parse_type(text)) == expected


@pytest.mark.parametrize(
    "text", ["duration", "map<text>", "list<int", "int<text>", "map<text,int>>", "", "frozen<a,b>"]
)
def test_bad_types_are_refused(text):
    with pytest.raises(CanonicalError):
        parse_type(text)


@pytest.mark.parametrize(
    "value, ctype",
    [
        ("abc", "int"),
        (True, "int"),
        ("x", "decimal"),
        ("2024-01-01T00:00:00", "timestamp"),
        (1, "text"),
        ("yes", "boolean"),
        ("nope", "uuid"),
        ("zz", "blob"),
        ("300.1.1.1", "inet"),
        ("25:00", "time"),
        ([1, 2], "tuple<int>"),
        (object(), "list"),
    ],
)
def test_values_that_do_not_fit_their_type_are_refused(value, ctype):
    with pytest.raises(CanonicalError):
        canon(value, parse_type(ctype))


def test_unsupported_python_type_refused():
    with pytest.raises(CanonicalError):
        RowHasher("v2").hash({"x": object()})


@pytest.mark.parametrize(
    "kwargs",
    [
        {"strategy": "v3"},
        {"algorithm": "md5"},
        {"fields": []},
        {"fields": ["a", "a"]},
        {"types": {"a": "nope"}},
    ],
)
def test_bad_configuration_refused(kwargs):
    with pytest.raises((HashConfigError, CanonicalError)):
        RowHasher(**kwargs)


def test_differing_columns():
    hasher = RowHasher("v2")
    left = hasher.column_digests({"a": 1, "b": 2, "c": 3})
    right = hasher.column_digests({"a": 1, "b": 20, "d": 4})
    assert differing_columns(left, right) == ["b", "c", "d"]
    assert differing_columns(None, right) == []


def test_ordered_map_from_driver():
    from cassandra.cqltypes import UTF8Type

    m = OrderedMapSerializedKey(UTF8Type, 4)
    m._insert_unchecked("b", b"b", 2)
    m._insert_unchecked("a", b"a", 1)
    assert RowHasher().hash({"m": m}) == RowHasher().hash({"m": {"a": 1, "b": 2}})


scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.decimals(allow_nan=False, places=3)
    | st.binary(max_size=8)
    | st.uuids()
    | st.datetimes(timezones=st.just(UTC))
)
values = st.recursive(
    scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3), max_leaves=8
)
rows = st.dictionaries(st.text(min_size=1, max_size=8), values, min_size=1, max_size=6)


@settings(max_examples=300)
@given(rows, st.randoms(), st.sampled_from(["v1", "v2"]))
def test_hash_is_invariant_to_key_order(row, rnd, strategy):
    keys = list(row)
    rnd.shuffle(keys)
    shuffled = {k: row[k] for k in keys}
    hasher = RowHasher(strategy)
    assert hasher.hash(row) == hasher.hash(shuffled)


@settings(max_examples=300)
@given(rows, st.data())
def test_any_single_value_change_changes_the_v2_hash(row, data):
    column = data.draw(st.sampled_from(sorted(row)))
    new_value = data.draw(values)
    hasher = RowHasher("v2")
    changed = dict(row, **{column: new_value})
    if canon(new_value) == canon(row[column]):
        return  # not a change of value (e.g. [] and None, -0.0 and 0.0)
    assert hasher.hash(changed) != hasher.hash(row)


def test_big_integers_do_not_collide():
    assert vector_hash("varint beyond 64 bits stays exact") != vector_hash("varint beyond 64 bits, next value")


@pytest.mark.parametrize(
    "text, reason",
    [
        (b'{"a": 1, "a": 2}', "duplicate key 'a'"),
        (b'{"a": NaN}', "NaN is not JSON"),
        (b'{"a": -Infinity}', "-Infinity is not JSON"),
        (b'{"a": "\xff"}', "not valid UTF-8 at byte 7"),
        (b'{"a": 1} x', "extra data"),
        (b"[" * 513 + b"]" * 513, "nested deeper than 512"),
        (b"[" * 5000 + b"]" * 5000, "nested deeper than 512"),
        (b'{"a": 1', "not valid JSON"),
        (b'"\x01"', "not valid JSON"),  # a raw control character inside a string
    ],
)
def test_exact_json_refuses_what_is_ambiguous(text, reason):
    with pytest.raises(JsonTextError, match=reason):
        loads_exact(text)


def test_exact_json_keeps_integers_and_number_text():
    doc = loads_exact(
        b' {"n": 12345678901234567890123, "f": 1.10, "e": 1e400, "depth": ' + b"[" * 511 + b"]" * 511 + b"} "
    )
    assert doc["n"] == 12345678901234567890123 and type(doc["n"]) is int
    assert doc["f"] == 1.1 and doc["f"].text == "1.10" and doc["e"].text == "1e400"


@pytest.mark.parametrize(
    "row, types, preimage",
    [  # each written out by hand from docs/hashing.md, not from the implementation
        ('{"f": 0.1}', {"f": "float"}, b"1:s1:ff16:3fb99999a0000000"),
        ('{"n": 12345678901234567890123}', {"n": "varint"}, b"1:s1:ni23:12345678901234567890123"),
        ('{"s": [1, "1", "01"]}', {"s": "set<int>"}, b"1:s1:se1:i1:1"),
        ('{"ip": "::FFFF:C000:0201"}', {"ip": "inet"}, b"1:s2:ipa16:::ffff:192.0.2.1"),
        ('{"d": 1e2}', {"d": "decimal"}, b"1:s1:dd3:100"),
        ('{"b": "0x"}', {"b": "blob"}, b"1:s1:bx0:"),
    ],
)
def test_rules_rederived_from_the_spec_text(row, types, preimage):
    assert RowHasher("v2", types=types).preimage(loads_exact(row)) == b"dqhash:v2\n" + preimage


def test_v1_texts_rederived_from_the_spec_text():
    hasher = RowHasher("v1", types={"ts": "timestamp", "m": "map<text,frozen<list<int>>>"})
    row = loads_exact('{"a": 1e-05, "b": 1e16, "c": 0.0001, "m": {"k": [1, 2]}, "ts": "0999-05-06T07:08:09.01Z"}')
    assert hasher.preimage(row) == b'1e-05|1e+16|0.0001|{"k":"[\\"1\\",\\"2\\"]"}|0999-05-06T07:08:09.010Z'


def test_hash_and_digests_in_one_pass_equal_hash_and_column_digests():
    for strategy in ("v1", "v2"):
        hasher = RowHasher(strategy, types={"amount": "decimal"})
        row = {"id": "42", "name": "Ada", "amount": "12.50", "tags": ["b", "a"], "gone": None}
        digest, columns = hasher.hash_and_digests(row)
        assert digest == hasher.hash(row) and columns == hasher.column_digests(row)


def test_rows_of_one_hasher_hash_alike_whatever_their_key_order_and_column_set_with_the_orders_kept():
    hasher = RowHasher("v2")
    a = {"id": 1, "name": "Ada", "tags": None}
    b = {"tags": None, "name": "Ada", "id": 1}
    assert hasher.hash_and_digests(a) == hasher.hash_and_digests(b) == RowHasher("v2").hash_and_digests(a)
    assert hasher.hash({"id": 1}) != hasher.hash(a)  # another set of columns, another order kept
    assert hasher.preimage(a) == b"dqhash:v2\n3:s2:idi1:1s4:names3:Adas4:tagsn"
