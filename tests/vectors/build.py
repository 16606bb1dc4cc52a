"""Grow the golden vectors from the cases below: ``python tests/vectors/build.py``.

Each case is a row as JSON text (exactly as a producer would send it, so integers beyond 64 bits
and number spellings survive), a strategy or both, declared types and a column selection. The
reference implementation computes the expected hash, per-column digests and the preimage (the exact
bytes that are hashed), so an implementer can diff bytes rather than guess. A case that must be
refused records ``error`` (a part of the reference's message) instead.

Existing vectors are never rewritten: if the reference gives a different answer for one, this
script stops and names it, because a changed golden vector breaks every producer already in use.
"""

from __future__ import annotations

import sys
from pathlib import Path

import orjson

from dqhash.core.canonical import CanonicalError
from dqhash.core.hashing import HashConfigError, RowHasher
from dqhash.core.jsontext import loads_exact

HERE = Path(__file__).parent
BOTH = ("v1", "v2")

#: (name, strategies, types, row JSON text, fields). Grouped by the rule each one pins down.
CASES: list[tuple[str, tuple[str, ...], dict[str, str], str, list[str] | None]] = [
    # integers: exact at any size, each CQL type's range, accepted spellings
    ("varint beyond 64 bits stays exact", BOTH, {"n": "varint"}, '{"n": 12345678901234567890123}', None),
    ("varint beyond 64 bits, next value", BOTH, {"n": "varint"}, '{"n": 12345678901234567890124}', None),
    ("undeclared integer beyond 64 bits stays an integer", BOTH, {}, '{"n": 18446744073709551616}', None),
    ("undeclared negative integer beyond 64 bits", BOTH, {}, '{"n": -9223372036854775809}', None),
    ("tinyint bounds", BOTH, {"lo": "tinyint", "hi": "tinyint"}, '{"lo": -128, "hi": 127}', None),
    ("tinyint above range refused", BOTH, {"n": "tinyint"}, '{"n": 128}', None),
    ("tinyint below range refused", BOTH, {"n": "tinyint"}, '{"n": -129}', None),
    ("smallint bounds", BOTH, {"lo": "smallint", "hi": "smallint"}, '{"lo": -32768, "hi": 32767}', None),
    ("smallint above range refused", BOTH, {"n": "smallint"}, '{"n": 32768}', None),
    ("int bounds", BOTH, {"lo": "int", "hi": "int"}, '{"lo": -2147483648, "hi": 2147483647}', None),
    ("int above range refused", BOTH, {"n": "int"}, '{"n": 2147483648}', None),
    (
        "bigint bounds",
        BOTH,
        {"lo": "bigint", "hi": "bigint"},
        '{"lo": -9223372036854775808, "hi": 9223372036854775807}',
        None,
    ),
    ("bigint above range refused", BOTH, {"n": "bigint"}, '{"n": 9223372036854775808}', None),
    ("counter is a bigint", BOTH, {"n": "counter"}, '{"n": -9223372036854775808}', None),
    ("counter above range refused", BOTH, {"n": "counter"}, '{"n": "9223372036854775808"}', None),
    ("int from numbers with an integral value", BOTH, {"a": "int", "b": "int"}, '{"a": 5.0, "b": 1e2}', None),
    ("int string with leading zeros", BOTH, {"n": "int", "m": "int"}, '{"n": "007", "m": "-0"}', None),
    ("int string with a plus sign refused", BOTH, {"n": "int"}, '{"n": "+5"}', None),
    ("int string with a space refused", BOTH, {"n": "int"}, '{"n": " 5"}', None),
    ("int with a fraction refused", BOTH, {"n": "bigint"}, '{"n": 1.0000000000000000001}', None),
    ("int from a boolean refused", BOTH, {"n": "int"}, '{"n": true}', None),
    ("int from non-ASCII digits refused", BOTH, {"n": "int"}, '{"n": "\\u0665"}', None),
    ("varint of 1000 digits", ("v2",), {"n": "varint"}, '{"n": "' + "9" * 1000 + '"}', None),
    ("varint of 1001 digits refused", ("v2",), {"n": "varint"}, '{"n": "' + "9" * 1001 + '"}', None),
    # float: rounded to binary32 and widened; double: binary64, finite digits must stay finite
    ("float rounds to binary32", BOTH, {"f": "float"}, '{"f": 0.1}', None),
    ("float from a string rounds the same", BOTH, {"f": "float"}, '{"f": "0.1"}', None),
    ("float largest binary32", ("v2",), {"f": "float"}, '{"f": 3.4028234663852886e38}', None),
    ("float above binary32 range refused", BOTH, {"f": "float"}, '{"f": 3.5e38}', None),
    ("float smallest binary32 subnormal", ("v2",), {"f": "float"}, '{"f": 1.401298464324817e-45}', None),
    (
        "float special values",
        BOTH,
        {"a": "float", "b": "float", "c": "float"},
        '{"a": "NaN", "b": "Infinity", "c": "-Infinity"}',
        None,
    ),
    (
        "double largest and smallest",
        ("v2",),
        {"a": "double", "b": "double"},
        '{"a": 1.7976931348623157e308, "b": 5e-324}',
        None,
    ),
    ("double 1e400 refused", BOTH, {"d": "double"}, '{"d": 1e400}', None),
    ("undeclared 1e400 refused", BOTH, {}, '{"d": 1e400}', None),
    ("double string 1e400 refused", BOTH, {"d": "double"}, '{"d": "1e400"}', None),
    ("double string in JSON number syntax", BOTH, {"d": "double"}, '{"d": "-1.5e-3"}', None),
    ("double lower-case nan refused", BOTH, {"d": "double"}, '{"d": "nan"}', None),
    ("double inf refused", BOTH, {"d": "double"}, '{"d": "inf"}', None),
    ("double with an underscore refused", BOTH, {"d": "double"}, '{"d": "1_0"}', None),
    ("double with a space refused", BOTH, {"d": "double"}, '{"d": " 1.5"}', None),
    ("double with a leading dot refused", BOTH, {"d": "double"}, '{"d": ".5"}', None),
    ("double negative zero is zero", BOTH, {"d": "double"}, '{"d": "-0.0"}', None),
    ("double from a big integer", BOTH, {"d": "double"}, '{"d": 12345678901234567890123}', None),
    # decimal: exact digits, plain notation, a length limit
    ("decimal exact from a JSON number", BOTH, {"d": "decimal"}, '{"d": 0.1000000000000000055511151231257827}', None),
    ("decimal from JSON 1e400", ("v2",), {"d": "decimal"}, '{"d": 1e400}', None),
    ("decimal worked example 100.00", BOTH, {"d": "decimal"}, '{"d": "100.00"}', None),
    ("decimal leading zeros", BOTH, {"d": "decimal"}, '{"d": "007.50"}', None),
    (
        "decimal special values",
        BOTH,
        {"a": "decimal", "b": "decimal", "c": "decimal"},
        '{"a": "NaN", "b": "Infinity", "c": "-Infinity"}',
        None,
    ),
    ("decimal 1E+999 is 1000 characters", ("v2",), {"d": "decimal"}, '{"d": "1E+999"}', None),
    ("decimal 1E+1000 refused", BOTH, {"d": "decimal"}, '{"d": "1E+1000"}', None),
    ("decimal sNaN refused", BOTH, {"d": "decimal"}, '{"d": "sNaN"}', None),
    ("decimal with an underscore refused", BOTH, {"d": "decimal"}, '{"d": "1_000"}', None),
    ("decimal with a plus sign refused", BOTH, {"d": "decimal"}, '{"d": "+1"}', None),
    ("decimal from a boolean refused", BOTH, {"d": "decimal"}, '{"d": false}', None),
    # boolean
    ("boolean spellings", BOTH, {"a": "boolean", "b": "boolean"}, '{"a": "False", "b": true}', None),
    ("boolean yes refused", BOTH, {"b": "boolean"}, '{"b": "yes"}', None),
    ("boolean from 1 refused", BOTH, {"b": "boolean"}, '{"b": 1}', None),
    # timestamp: one ISO-8601 form, years 0001-9999; epoch ms in the signed 64-bit range
    ("timestamp year 1", BOTH, {"ts": "timestamp"}, '{"ts": "0001-01-01T00:00:00Z"}', None),
    ("timestamp last millisecond of 9999", BOTH, {"ts": "timestamp"}, '{"ts": "9999-12-31T23:59:59.999Z"}', None),
    ("timestamp year 999 zero-padded", BOTH, {"ts": "timestamp"}, '{"ts": "0999-05-06T07:08:09.010Z"}', None),
    ("timestamp negative offset", BOTH, {"ts": "timestamp"}, '{"ts": "2024-03-10T07:04:56.789-05:30"}', None),
    ("timestamp nanoseconds floored", BOTH, {"ts": "timestamp"}, '{"ts": "2024-03-10T12:34:56.789999999Z"}', None),
    ("timestamp before 1970 floored", BOTH, {"ts": "timestamp"}, '{"ts": "1969-12-31T23:59:59.9999Z"}', None),
    ("timestamp without fraction", BOTH, {"ts": "timestamp"}, '{"ts": "2024-03-10T12:34:56+00:00"}', None),
    ("timestamp epoch ms after year 9999", ("v2",), {"ts": "timestamp"}, '{"ts": 253402300800000}', None),
    ("v1 timestamp after year 9999 refused", ("v1",), {"ts": "timestamp"}, '{"ts": 253402300800000}', None),
    ("timestamp smallest epoch ms", ("v2",), {"ts": "timestamp"}, '{"ts": -9223372036854775808}', None),
    ("timestamp epoch ms beyond 64 bits refused", BOTH, {"ts": "timestamp"}, '{"ts": 9223372036854775808}', None),
    ("timestamp +0200 zone refused", BOTH, {"ts": "timestamp"}, '{"ts": "2024-03-10T14:34:56+0200"}', None),
    ("timestamp +02 zone refused", BOTH, {"ts": "timestamp"}, '{"ts": "2024-03-10T14:34:56+02"}', None),
    ("timestamp space separator refused", BOTH, {"ts": "timestamp"}, '{"ts": "2024-03-10 12:34:56Z"}', None),
    ("timestamp epoch ms as a string refused", BOTH, {"ts": "timestamp"}, '{"ts": "1710074096789.0"}', None),
    ("timestamp time only refused", BOTH, {"ts": "timestamp"}, '{"ts": "T12:34Z"}', None),
    ("timestamp without seconds refused", BOTH, {"ts": "timestamp"}, '{"ts": "2024-03-10T12:34Z"}', None),
    ("timestamp without zone refused", BOTH, {"ts": "timestamp"}, '{"ts": "2024-03-10T12:34:56"}', None),
    ("timestamp lower-case z refused", BOTH, {"ts": "timestamp"}, '{"ts": "2024-03-10T12:34:56z"}', None),
    ("timestamp hour 24 refused", BOTH, {"ts": "timestamp"}, '{"ts": "2024-03-10T24:00:00Z"}', None),
    ("timestamp leap second refused", BOTH, {"ts": "timestamp"}, '{"ts": "2016-12-31T23:59:60Z"}', None),
    ("timestamp February 30 refused", BOTH, {"ts": "timestamp"}, '{"ts": "2024-02-30T00:00:00Z"}', None),
    ("timestamp year 0 refused", BOTH, {"ts": "timestamp"}, '{"ts": "0000-12-31T00:00:00Z"}', None),
    ("timestamp offset 24:00 refused", BOTH, {"ts": "timestamp"}, '{"ts": "2024-03-10T12:00:00+24:00"}', None),
    # date: YYYY-MM-DD, years 0001-9999; integer days in Cassandra's range
    ("date year 1", BOTH, {"d": "date"}, '{"d": "0001-01-01"}', None),
    ("date last day of 9999", BOTH, {"d": "date"}, '{"d": "9999-12-31"}', None),
    ("date year 999 zero-padded", BOTH, {"d": "date"}, '{"d": "0999-01-02"}', None),
    ("date from integer days", BOTH, {"d": "date"}, '{"d": -719162}', None),
    ("date largest day count", ("v2",), {"d": "date"}, '{"d": 2147483647}', None),
    ("v1 date after year 9999 refused", ("v1",), {"d": "date"}, '{"d": 2147483647}', None),
    ("date day count beyond range refused", BOTH, {"d": "date"}, '{"d": 2147483648}', None),
    ("date basic format refused", BOTH, {"d": "date"}, '{"d": "20240229"}', None),
    ("date week date refused", BOTH, {"d": "date"}, '{"d": "2024-W09-4"}', None),
    ("date February 29 of a common year refused", BOTH, {"d": "date"}, '{"d": "2023-02-29"}', None),
    ("date with a sign refused", BOTH, {"d": "date"}, '{"d": "+2024-01-01"}', None),
    # time: 00:00:00 to 23:59:59.999999999
    ("time bounds", BOTH, {"a": "time", "b": "time"}, '{"a": "00:00:00", "b": "23:59:59.999999999"}', None),
    ("time largest nanosecond count", BOTH, {"t": "time"}, '{"t": 86399999999999}', None),
    ("time 24:00:00 refused", BOTH, {"t": "time"}, '{"t": "24:00:00"}', None),
    ("time negative refused", BOTH, {"t": "time"}, '{"t": -1}', None),
    ("time a day of nanoseconds refused", BOTH, {"t": "time"}, '{"t": 86400000000000}', None),
    ("time without seconds refused", BOTH, {"t": "time"}, '{"t": "12:00"}', None),
    ("time one-digit hour refused", BOTH, {"t": "time"}, '{"t": "1:02:03"}', None),
    ("time minute 60 refused", BOTH, {"t": "time"}, '{"t": "12:60:00"}', None),
    # uuid and timeuuid
    ("uuid without hyphens", BOTH, {"u": "uuid"}, '{"u": "8F14E45FCEEA467A95758C5E1E3C2D4B"}', None),
    ("timeuuid version 1", BOTH, {"u": "timeuuid"}, '{"u": "e5a5b7a0-3f63-11ef-9a0b-0242ac120002"}', None),
    ("timeuuid of version 4 refused", BOTH, {"u": "timeuuid"}, '{"u": "8f14e45f-ceea-467a-9575-8c5e1e3c2d4b"}', None),
    (
        "uuid missing the first hyphen refused",
        BOTH,
        {"u": "uuid"},
        '{"u": "8f14e45fceea-467a-9575-8c5e1e3c2d4b"}',
        None,
    ),
    ("uuid in braces refused", BOTH, {"u": "uuid"}, '{"u": "{8f14e45f-ceea-467a-9575-8c5e1e3c2d4b}"}', None),
    ("uuid urn refused", BOTH, {"u": "uuid"}, '{"u": "urn:uuid:8f14e45f-ceea-467a-9575-8c5e1e3c2d4b"}', None),
    # blob
    ("blob empty is a value, not null", BOTH, {"b": "blob"}, '{"b": "0x"}', None),
    ("blob upper-case prefix", BOTH, {"b": "blob"}, '{"b": "0XCAFE"}', None),
    ("blob odd digit count refused", BOTH, {"b": "blob"}, '{"b": "0xabc"}', None),
    ("blob with spaces refused", BOTH, {"b": "blob"}, '{"b": "ca fe"}', None),
    # inet
    ("inet IPv4-mapped in mixed form", BOTH, {"ip": "inet"}, '{"ip": "::ffff:192.0.2.1"}', None),
    ("inet IPv4-mapped written in hex", BOTH, {"ip": "inet"}, '{"ip": "0:0:0:0:0:FFFF:C000:0201"}', None),
    ("inet embedded IPv4 elsewhere is hex", BOTH, {"ip": "inet"}, '{"ip": "::1.2.3.4"}', None),
    ("inet longest zero run compressed", BOTH, {"ip": "inet"}, '{"ip": "2001:db8:0:0:1:0:0:1"}', None),
    ("inet single zero group kept", BOTH, {"ip": "inet"}, '{"ip": "2001:db8:0:1:1:1:1:1"}', None),
    ("inet trailing double colon", BOTH, {"ip": "inet"}, '{"ip": "1:2:3:4:5:6:7::"}', None),
    ("inet zone id refused", BOTH, {"ip": "inet"}, '{"ip": "fe80::1%eth0"}', None),
    ("inet brackets refused", BOTH, {"ip": "inet"}, '{"ip": "[::1]"}', None),
    ("inet prefix length refused", BOTH, {"ip": "inet"}, '{"ip": "10.0.0.1/8"}', None),
    ("inet IPv4 leading zero refused", BOTH, {"ip": "inet"}, '{"ip": "010.0.0.1"}', None),
    ("inet IPv4 octet above 255 refused", BOTH, {"ip": "inet"}, '{"ip": "256.0.0.1"}', None),
    ("inet two double colons refused", BOTH, {"ip": "inet"}, '{"ip": "1::2::3"}', None),
    ("inet from an integer refused", BOTH, {"ip": "inet"}, '{"ip": 167772161}', None),
    # text
    ("text control characters kept", BOTH, {}, '{"s": "a\\u0000\\u001fb"}', None),
    ("text lone surrogate refused", BOTH, {}, '{"s": "\\ud800"}', None),
    ("text surrogate pair is one character", BOTH, {}, '{"s": "\\ud83d\\ude80"}', None),
    # collections
    ("set drops duplicates", BOTH, {"s": "set<text>"}, '{"s": ["b", "a", "a"]}', None),
    ("set without duplicates", BOTH, {"s": "set<text>"}, '{"s": ["a", "b"]}', None),
    ("set<int> duplicates after normalisation", BOTH, {"s": "set<int>"}, '{"s": [1, "1", "01"]}', None),
    ("map keys equal after normalisation refused", BOTH, {"m": "map<int,text>"}, '{"m": {"1": "a", "01": "b"}}', None),
    ("map with int keys", BOTH, {"m": "map<int,text>"}, '{"m": {"10": "b", "9": "a"}}', None),
    ("empty collection in a scalar column refused", BOTH, {"n": "int"}, '{"n": []}', None),
    ("empty object in a text column refused", BOTH, {"s": "text"}, '{"s": {}}', None),
    ("list with a null element", BOTH, {"l": "list<int>"}, '{"l": [1, null]}', None),
    ("nested list in a list", BOTH, {"l": "list<frozen<list<int>>>"}, '{"l": [[1, 2], [3]]}', None),
    ("set of sets", BOTH, {"s": "set<frozen<set<text>>>"}, '{"s": [["b", "a"], ["a"]]}', None),
    ("tuple arity mismatch refused", BOTH, {"t": "tuple<int,text>"}, '{"t": [1]}', None),
    # v1 text rules
    (
        "v1 double renderings",
        BOTH,
        {},
        '{"a": 1e-05, "b": 1e16, "c": 1e15, "d": 0.0001, "e": 5e-324, "f": 1.7976931348623157e308,'
        ' "g": 123456789012345680000.0, "h": 1.5, "i": 100.0, "j": -2.5e-7, "k": 1.2345e+100}',
        None,
    ),
    ("v1 undeclared number typing", BOTH, {}, '{"i": 1, "f": 1.0, "e": 1e2, "z": -0}', None),
    (
        "v1 escapes inside arrays",
        BOTH,
        {"l": "list<text>"},
        '{"l": ["\\u00e9\\"\\\\\\n\\u0001\\u007f\\u2028/", "x"]}',
        None,
    ),
    (
        "v1 nested collections are strings inside arrays",
        BOTH,
        {"m": "map<text,frozen<list<int>>>"},
        '{"m": {"k": [1, 2]}}',
        None,
    ),
    ("v1 null element in a list", BOTH, {}, '{"l": ["", null]}', None),
    # decisions of docs/hashing.md section 8 (the points the text had left open)
    ("a zero with a huge exponent is 0 as int", BOTH, {"n": "int"}, '{"n": 0e2147483648}', None),
    (
        "a zero with an exponent past 64 bits is 0 as varint",
        BOTH,
        {"n": "varint"},
        '{"n": -0.0e99999999999999999999}',
        None,
    ),
    ("a negative exponent spelling of a varint", BOTH, {"n": "varint"}, '{"n": -1e999}', None),
    ("the same varint written out in digits", BOTH, {"n": "varint"}, '{"n": -1' + "0" * 999 + "}", None),
    ("an integer spelling of 1001 digits refused", BOTH, {"n": "varint"}, '{"n": 1e1000}', None),
    ("a fraction that is not an integer refused as int", BOTH, {"n": "int"}, '{"n": 12.345e2}', None),
    ("a fraction that is an integer as int", BOTH, {"n": "int"}, '{"n": 12.340e2}', None),
    (
        "an integer string of 1001 digits refused whatever its value",
        BOTH,
        {"n": "varint"},
        '{"n": "' + "0" * 1000 + '7"}',
        None,
    ),
    ("an integer string of 1000 digits and a sign", BOTH, {"n": "varint"}, '{"n": "-' + "0" * 999 + '7"}', None),
    ("integral spellings of a date and a time", BOTH, {"d": "date", "t": "time"}, '{"d": 1e2, "t": 5.0}', None),
    ("a date in days, for the spelling above", BOTH, {"d": "date", "t": "time"}, '{"d": 100, "t": 5}', None),
    ("an empty object in a list column is null", BOTH, {"l": "list<int>", "s": "set<int>"}, '{"l": {}, "s": {}}', None),
    ("an empty array in a map column is null", BOTH, {"m": "map<int,text>", "u": "udt"}, '{"m": [], "u": []}', None),
    ("an empty array in a tuple column refused", BOTH, {"t": "tuple<int,int>"}, '{"t": []}', None),
    ("v1 text beyond its bound refused", ("v1",), {}, '{"l": ' + "[" * 21 + '"x"' + "]" * 21 + "}", None),
    ("v2 nesting to the spec's depth", ("v2",), {}, '{"l": ' + "[" * 509 + "1" + "]" * 509 + "}", None),
]

#: (name, fields, types, expected part of the error): configurations every implementation must refuse.
CONFIG_CASES: list[tuple[str, list[str] | None, dict[str, str], str]] = [
    ("a column named twice in the selection", ["a", "a"], {}, "names a column twice"),
    ("udt with a type parameter", None, {"a": "udt<int>"}, "udt takes no type parameters"),
    ("map with one type parameter", None, {"a": "map<int>"}, "map takes 2 type parameter"),
    ("unknown type", None, {"a": "duration"}, "unsupported column type"),
    ("an empty selection", [""], {}, "the field list is empty"),
]


def compute(name: str, strategy: str, types: dict[str, str], row_text: str, fields: list[str] | None) -> bytes:
    head = {"name": name, "strategy": strategy, "fields": fields, "types": types}
    hasher = RowHasher(strategy, fields, types)
    row = loads_exact(row_text)
    result: dict[str, object]
    try:
        result = {"hash": hasher.hash(row).digest, "columns": hasher.column_digests(row)}
        result["preimage"] = hasher.preimage(row).decode()
    except CanonicalError as exc:
        result = {"error": str(exc)}
    # The row goes in as its source text: re-serialising would turn 1e400 or a 23-digit integer into something else.
    return orjson.dumps(head)[:-1] + b',"row":' + row_text.encode() + b"," + orjson.dumps(result)[1:]


def config_vector(name: str, fields: list[str] | None, types: dict[str, str], expected: str) -> bytes:
    try:
        RowHasher("v2", fields, types)
    except (HashConfigError, CanonicalError) as exc:
        assert expected in str(exc), (name, str(exc))
    else:
        raise SystemExit(f"config case {name!r} was accepted; it must be refused")
    return orjson.dumps({"name": name, "fields": fields, "types": types, "config_error": expected})


def main() -> int:
    generated = {case[0] for case in CASES}
    total = refusals = 0
    for strategy in ("v1", "v2"):
        path = HERE / f"{strategy}.jsonl"
        lines = []
        for line in path.read_bytes().splitlines():
            vector = loads_exact(line)
            if vector["name"] in generated:
                continue
            lines.append(_checked_original(vector, line))
        for name, strategies, types, row_text, fields in CASES:
            if strategy in strategies:
                lines.append(compute(name, strategy, types, row_text, fields))
        refusals += sum(b',"error":' in line for line in lines)
        total += len(lines)
        path.write_bytes(b"\n".join(lines) + b"\n")
    configs = [config_vector(*case) for case in CONFIG_CASES]
    (HERE / "config.jsonl").write_bytes(b"\n".join(configs) + b"\n")
    print(f"wrote {total} row vectors ({refusals} refusals) and {len(configs)} configuration vectors", file=sys.stderr)
    return 0


def _checked_original(vector: dict, line: bytes) -> bytes:
    """A vector from before this script: its hash must not move; it gains its preimage."""
    hasher = RowHasher(vector["strategy"], vector["fields"], vector["types"])
    if hasher.hash(vector["row"]).digest != vector["hash"] or hasher.column_digests(vector["row"]) != vector["columns"]:
        raise SystemExit(
            f"the reference now disagrees with golden vector {vector['name']!r}; that is a breaking change"
        )
    if "preimage" not in vector:
        line = line[:-1] + b',"preimage":' + orjson.dumps(hasher.preimage(vector["row"]).decode()) + b"}"
    return line


if __name__ == "__main__":
    sys.exit(main())
