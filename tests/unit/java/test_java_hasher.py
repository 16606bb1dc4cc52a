"""The Java implementation of v2 (dqhash/java/DqHash.java) against the Python reference, byte for byte.

Two implementations in two languages, kept equal here, are what make docs/hashing.md implementable from
its text. The Java file is compiled with the JDK on the machine; CI installs Debian's and sets
DQHASH_REQUIRE_JAVA=1, so there a missing JDK fails instead of skipping.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from dqhash.core.hashing import RowHasher
from dqhash.core.jsontext import JsonNumber, loads_exact
from tests.paths import ROOT

#: the vectors nest as deep as the spec allows (512), and these helpers recurse as the hasher does: the limit the
#: first hasher set is enough (tests/conftest.py builds it), and one set here would differ from it (Hypothesis warns
#: when a property test sees the limit change)
JAVA_SOURCE = ROOT / "dqhash" / "java" / "DqHash.java"
VECTORS = ROOT / "tests" / "vectors"
INSTALL = "sudo apt-get install -y openjdk-17-jdk-headless"


@pytest.fixture(scope="module")
def java_classes(tmp_path_factory) -> Path:
    javac, java = shutil.which("javac"), shutil.which("java")
    if not (javac and java):
        message = f"no JDK on this machine; install one to run the Java hasher tests: {INSTALL}"
        if os.environ.get("DQHASH_REQUIRE_JAVA") == "1":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    out = tmp_path_factory.mktemp("java")
    compiled = subprocess.run(
        [javac, "-Xlint:all", "-Werror", "-d", str(out), str(JAVA_SOURCE)], capture_output=True, text=True, timeout=120
    )
    assert compiled.returncode == 0, f"javac failed:\n{compiled.stderr}"
    return out


def run_java(classes: Path, stdin: bytes, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["java", "-cp", str(classes), "dqhash.DqHash", *args], input=stdin, capture_output=True, timeout=120
    )


def run_python(stdin: bytes, *args: str) -> subprocess.CompletedProcess[bytes]:
    """The CLI, hashing a column the rows lack as null, as the spec (and Java) does: the generated rows omit
    columns on purpose, which the CLI's first-row check would otherwise refuse."""
    return subprocess.run(
        [sys.executable, "-m", "dqhash.cli", "hash", "--allow-absent", *args],
        input=stdin,
        capture_output=True,
        timeout=120,
    )


def to_json_text(value: object) -> str:
    """JSON text that reads back exactly: integers and numbers as written, lone surrogates escaped."""
    if isinstance(value, JsonNumber):
        return value.text
    if value is None or isinstance(value, (bool, int, str)):
        return json.dumps(value)  # ensure_ascii: a lone surrogate is written as its \\u escape
    if isinstance(value, list):
        return "[" + ",".join(map(to_json_text, value)) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{to_json_text(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value))


def arguments(fields: list[str] | None, types: dict[str, str]) -> list[str]:
    args = ["--columns"]
    if fields is not None:
        args += ["--fields", ",".join(fields)]
    if types:
        args += ["--types", ",".join(f"{name}={ctype}" for name, ctype in types.items())]
    return args


def test_java_reproduces_every_v2_vector(java_classes):
    groups: dict[str, list[dict]] = {}
    for line in (VECTORS / "v2.jsonl").read_bytes().splitlines():
        vector = loads_exact(line)
        groups.setdefault(json.dumps([vector["fields"], vector["types"]]), []).append(vector)
    checked = 0
    for vectors in groups.values():
        stdin = "".join(to_json_text(v["row"]) + "\n" for v in vectors).encode()
        result = run_java(java_classes, stdin, *arguments(vectors[0]["fields"], vectors[0]["types"]))
        outputs = result.stdout.decode().split("\n")[:-1]
        assert len(outputs) == len(vectors), result.stderr.decode()
        for vector, output in zip(vectors, outputs):
            if "error" in vector:
                assert output == "", f"Java hashed {vector['name']!r}, which must be refused"
            else:
                assert output, f"Java refused {vector['name']!r}: {result.stderr.decode()}"
                produced = json.loads(output)
                assert produced["hash"] == "v2:" + vector["hash"], vector["name"]
                assert produced["columns"] == vector["columns"], vector["name"]
            checked += 1
    assert checked >= 170


def test_java_refuses_every_configuration_vector(java_classes):
    for line in (VECTORS / "config.jsonl").read_bytes().splitlines():
        vector = loads_exact(line)
        result = run_java(java_classes, b'{"a": 1}\n', *arguments(vector["fields"], vector["types"]))
        assert result.returncode == 2 and result.stdout == b"", vector["name"]


# ---------------------------------------------------------------- generated rows

Gen = Callable[[random.Random], str]


def pick(*options: str | Gen) -> Gen:
    return lambda rnd: (lambda o: o(rnd) if callable(o) else o)(rnd.choice(options))


def quoted(gen: Gen) -> Gen:
    return lambda rnd: json.dumps(gen(rnd))


def digits(rnd: random.Random, low: int = 1, high: int = 30) -> str:
    return "".join(rnd.choice("0123456789") for _ in range(rnd.randint(low, high)))


def integer_of(bits: int) -> Gen:
    top = 1 << (bits - 1)
    return pick(
        lambda r: str(r.randint(-top, top - 1)),
        str(top - 1),
        str(-top),
        str(top),
        str(-top - 1),
        lambda r: json.dumps(str(r.randint(-top, top - 1))),
        lambda r: json.dumps("0" * r.randint(1, 3) + str(r.randint(0, 99))),
        '"+5"',
        '" 5"',
        "5.0",
        "1e2",
        "1.5",
        "1.0000000000000000001",
        "true",
        '"abc"',
        "[]",
        "null",
    )


def double_text(rnd: random.Random) -> str:
    kind = rnd.random()
    if kind < 0.4:
        return repr(struct.unpack(">d", rnd.getrandbits(64).to_bytes(8, "big"))[0])
    if kind < 0.6:
        return repr(rnd.uniform(-1e6, 1e6))
    if kind < 0.8:
        return f"{rnd.randint(-999, 999)}.{digits(rnd, 1, 25)}e{rnd.randint(-330, 330)}"
    return str(rnd.randint(-(10**25), 10**25))


def as_json_number(gen: Gen) -> Gen:
    """Python's repr of a double may be nan/inf, which JSON has no literal for: write those as strings."""

    def produce(rnd: random.Random) -> str:
        text = gen(rnd)
        return json.dumps(text) if text in ("nan", "inf", "-inf") else text

    return produce


DOUBLE = pick(
    as_json_number(double_text),
    quoted(double_text),
    '"NaN"',
    '"Infinity"',
    '"-Infinity"',
    '"nan"',
    '"inf"',
    "1e400",
    '"1e400"',
    "-0.0",
    "5e-324",
    '"1_0"',
    '" 1.5"',
    '".5"',
    "3.5e38",
    "3.4028235677973366e38",
    "true",
)
DECIMAL = pick(
    lambda r: f"{r.choice(['', '-'])}{digits(r)}.{digits(r)}",
    lambda r: json.dumps(
        f"{r.choice(['', '-'])}{digits(r)}.{digits(r, 0, 20)}E{r.choice(['', '+', '-'])}{r.randint(0, 60)}"
    ),
    lambda r: json.dumps("." + digits(r)),
    lambda r: json.dumps("0" * r.randint(0, 3) + digits(r) + "0" * r.randint(0, 4)),
    as_json_number(double_text),
    '"1E+999"',
    '"1E+1000"',
    '"-1E+999"',
    '"1E-998"',
    '"1E-999"',
    '"1e9999999999"',
    '"NaN"',
    '"-Infinity"',
    '"sNaN"',
    '"1_000"',
    '"+1"',
    '"-0.00"',
    "1e400",
    "false",
)
BOOLEAN = pick("true", "false", '"TRUE"', '"False"', '"yes"', "1", '"fal\\u017fe"', '"tRuE"')


def timestamp_text(rnd: random.Random) -> str:
    zone = rnd.choice(["Z", "+00:00", f"{rnd.choice('+-')}{rnd.randint(0, 23):02d}:{rnd.randint(0, 59):02d}"])
    fraction = rnd.choice(["", "." + digits(rnd, 1, 9)])
    return (
        f"{rnd.randint(1, 9999):04d}-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}"
        f"T{rnd.randint(0, 23):02d}:{rnd.randint(0, 59):02d}:{rnd.randint(0, 59):02d}{fraction}{zone}"
    )


TIMESTAMP = pick(
    quoted(timestamp_text),
    quoted(timestamp_text),
    lambda r: str(r.randint(-(1 << 63), (1 << 63) - 1)),
    lambda r: str(r.randint(-(10**13), 10**13)),
    str(1 << 63),
    '"2024-02-29T12:00:00Z"',
    '"2023-02-29T12:00:00Z"',
    '"2024-03-10T14:34:56+0200"',
    '"2024-03-10 12:34:56Z"',
    '"2024-03-10T12:34:56"',
    '"2024-03-10T24:00:00Z"',
    '"2024-03-10T12:00:00+24:00"',
    '"0000-01-01T00:00:00Z"',
    '"1710074096789"',
    "1710074096789.0",
    "1.5",
)
DATE = pick(
    lambda r: json.dumps(f"{r.randint(1, 9999):04d}-{r.randint(1, 12):02d}-{r.randint(1, 31):02d}"),
    lambda r: str(r.randint(-(1 << 31), (1 << 31) - 1)),
    str(1 << 31),
    '"20240229"',
    '"2024-W09-4"',
    '"0000-01-01"',
    '"+2024-01-01"',
)
TIME = pick(
    lambda r: json.dumps(
        f"{r.randint(0, 25):02d}:{r.randint(0, 61):02d}:{r.randint(0, 61):02d}" + r.choice(["", "." + digits(r, 1, 9)])
    ),
    lambda r: str(r.randint(-5, 86_400 * 10**9 + 5)),
    "86399999999999",
    '"12:00"',
    '"1:02:03"',
    "-1",
)


def uuid_text(rnd: random.Random) -> str:
    hexdigits = f"{rnd.getrandbits(128):032x}"
    if rnd.random() < 0.5:
        hexdigits = hexdigits.upper()
    if rnd.random() < 0.3:
        return hexdigits
    return f"{hexdigits[:8]}-{hexdigits[8:12]}-{hexdigits[12:16]}-{hexdigits[16:20]}-{hexdigits[20:]}"


def timeuuid_text(rnd: random.Random) -> str:
    text = uuid_text(rnd)
    position = 14 if "-" in text else 12
    return text[:position] + rnd.choice("1111114") + text[position + 1 :]


UUID_VALUE = pick(
    quoted(uuid_text),
    quoted(uuid_text),
    '"8f14e45fceea-467a-9575-8c5e1e3c2d4b"',
    '"{00000000-0000-0000-0000-000000000000}"',
)
TIMEUUID = pick(quoted(timeuuid_text))
BLOB = pick(
    lambda r: json.dumps(r.choice(["", "0x", "0X"]) + r.randbytes(r.randint(0, 12)).hex()),
    lambda r: json.dumps("0x" + r.randbytes(3).hex().upper()),
    '"0xabc"',
    '"ca fe"',
    '"0xzz"',
)


def ipv6_text(rnd: random.Random) -> str:
    groups = [rnd.choice([0, 0, 0, rnd.getrandbits(16), rnd.getrandbits(4)]) for _ in range(8)]
    if rnd.random() < 0.2:
        groups[:6] = [0, 0, 0, 0, 0, 0xFFFF]
    text = ":".join(rnd.choice(["%x", "%04x", "%X"]) % g for g in groups)
    if rnd.random() < 0.5:  # compress a run of zero groups, as a producer might, not always the longest
        text = text.replace(":0:0:", "::", 1) if ":0:0:" in text and "::" not in text else text
    if rnd.random() < 0.15:
        text = (
            text.rsplit(":", 2)[0]
            + f":{rnd.randint(0, 255)}.{rnd.randint(0, 255)}.{rnd.randint(0, 255)}.{rnd.randint(0, 255)}"
        )
    return text


INET = pick(
    lambda r: json.dumps(".".join(str(r.randint(0, 255)) for _ in range(4))),
    quoted(ipv6_text),
    quoted(ipv6_text),
    quoted(ipv6_text),
    '"::"',
    '"::1"',
    '"1::"',
    '"1:2:3:4:5:6:7::"',
    '"::1:2:3:4:5:6:7"',
    '"1::2::3"',
    '"fe80::1%eth0"',
    '"010.0.0.1"',
    '"256.1.1.1"',
    '"1.2.3"',
    '"::ffff:1.2.3"',
    '"12345::"',
    '":1::"',
    '"1:2:3:4:5:6:7:8:9"',
    '"1:2:3:4:5:6:7:8::"',
    "167772161",
)


def text_value(rnd: random.Random) -> str:
    alphabet = ["a", "Z", " ", "|", '"', "\\", "\n", "\x00", "\x1f", "é", "東", "🚀", "\u2028", "\ud800", "\udc00"]
    text = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 8)))
    if rnd.random() < 0.8:  # mostly valid text; sometimes a lone surrogate, which must be refused
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace").replace("\ufffd", "x")
    return json.dumps(text)


TEXT = pick(text_value, text_value, "1", "[]", "{}")


def list_of(gen: Gen, max_items: int = 4) -> Gen:
    return lambda rnd: "[" + ",".join(gen(rnd) for _ in range(rnd.randint(0, max_items))) + "]"


def object_of(key: Gen, value: Gen, max_items: int = 4) -> Gen:
    return lambda rnd: "{" + ",".join(f"{key(rnd)}:{value(rnd)}" for _ in range(rnd.randint(0, max_items))) + "}"


SMALL_INT_TEXT = pick(lambda r: json.dumps(str(r.randint(0, 12))), lambda r: json.dumps("0" + str(r.randint(0, 12))))
ANY_SCALAR = pick(
    "null",
    "true",
    "false",
    lambda r: str(r.randint(-(10**30), 10**30)),
    as_json_number(double_text),
    text_value,
    "1e400",
)
ANY = pick(ANY_SCALAR, ANY_SCALAR, list_of(ANY_SCALAR), object_of(pick('"a"', '"b"', '"c"', '"é"'), ANY_SCALAR))

SCHEMA: dict[str, tuple[str | None, Gen]] = {
    "ti": ("tinyint", integer_of(8)),
    "si": ("smallint", integer_of(16)),
    "i": ("int", integer_of(32)),
    "bi": ("bigint", integer_of(64)),
    "c": ("counter", integer_of(64)),
    "vi": ("varint", pick(integer_of(64), lambda r: "-" * r.randint(0, 1) + "1" + digits(r, 20, 60))),
    "f": ("float", DOUBLE),
    "d": ("double", DOUBLE),
    "dec": ("decimal", DECIMAL),
    "b": ("boolean", BOOLEAN),
    "ts": ("timestamp", TIMESTAMP),
    "dt": ("date", DATE),
    "tm": ("time", TIME),
    "u": ("uuid", UUID_VALUE),
    "tu": ("timeuuid", TIMEUUID),
    "bl": ("blob", BLOB),
    "ip": ("inet", INET),
    "s": ("text", TEXT),
    "l": ("list<int>", list_of(integer_of(32))),
    "st": ("set<int>", list_of(pick(integer_of(32), SMALL_INT_TEXT))),
    "m": ("map<int,text>", object_of(SMALL_INT_TEXT, TEXT)),
    "tp": ("tuple<int,text,timestamp>", lambda r: f"[{integer_of(32)(r)},{TEXT(r)},{TIMESTAMP(r)}]"),
    "ud": ("udt", object_of(pick('"street"', '"zip"', '"é"'), ANY_SCALAR)),
    "nest": ("map<text,frozen<set<frozen<list<decimal>>>>>", object_of(text_value, list_of(list_of(DECIMAL, 2), 3), 2)),
    "any1": (None, ANY),
    "any2": (None, ANY),
}


def generated_rows(rnd: random.Random, count: int, types: dict[str, str]) -> list[str]:
    """Rows of a few columns. Most values are redrawn until the reference accepts them, so most rows hash
    and their digests are compared; the rest keep whatever was drawn and exercise the refusals."""
    hasher = RowHasher("v2", types=types)
    rows = []
    for _ in range(count):
        columns = []
        for name in rnd.sample(list(SCHEMA), rnd.randint(1, 5)):
            text = SCHEMA[name][1](rnd)
            for _ in range(20 if rnd.random() < 0.85 else 0):
                if _accepted(hasher, name, text):
                    break
                text = SCHEMA[name][1](rnd)
            columns.append(f"{json.dumps(name)}:{text}")
        rows.append("{" + ",".join(columns) + "}")
    return rows


def _accepted(hasher: RowHasher, name: str, text: str) -> bool:
    try:
        hasher.hash({name: loads_exact(text)})
    except ValueError:  # CanonicalError, JsonTextError
        return False
    return True


def test_java_and_python_agree_byte_for_byte_on_generated_rows(java_classes):
    rnd = random.Random(20261201)
    types = {name: ctype for name, (ctype, _) in SCHEMA.items() if ctype}
    rows = generated_rows(rnd, 3000, types)
    # Rows with one column each: a refusal then hides nothing else, so every value of every type is compared.
    singles = [f'{{"{name}":{gen(rnd)}}}' for name, (_, gen) in SCHEMA.items() for _ in range(80)]
    stdin = ("\n".join(rows + singles) + "\n").encode()
    python = run_python(stdin, *arguments(None, types))
    java = run_java(java_classes, stdin, *arguments(None, types))
    py_lines, java_lines = python.stdout.decode().split("\n"), java.stdout.decode().split("\n")
    assert len(py_lines) == len(java_lines) == len(rows) + len(singles) + 1
    disagreements = [(source, py, jv) for source, py, jv in zip(rows + singles, py_lines, java_lines) if py != jv]
    assert not disagreements, f"{len(disagreements)} rows differ; first: {disagreements[:3]}"
    hashed = sum(1 for line in py_lines if line)
    total = len(rows) + len(singles)
    assert 0.5 * total < hashed < 0.95 * total, f"{hashed} of {total} hashed: the generator lost its balance"
    print(f"\nJava and Python agree on {total} generated rows: {hashed} hashed, {total - hashed} refused by both")


def test_java_shortest_decimal_of_a_double_is_pythons_repr(java_classes):
    """Java's Double.toString before JDK 19 is not always the shortest; DqHash.shortest must be (decimal from a double)."""
    rnd = random.Random(7)
    patterns = [rnd.getrandbits(64) for _ in range(5000)]
    patterns += [struct.unpack(">Q", struct.pack(">d", 2.0**e))[0] for e in range(-1074, 1024)]  # powers of two
    values = [struct.unpack(">d", p.to_bytes(8, "big"))[0] for p in patterns]
    finite = [(p, v) for p, v in zip(patterns, values) if v == v and v not in (float("inf"), float("-inf"))]
    result = run_java(java_classes, "".join(f"{p:016x}\n" for p, _ in finite).encode(), "--shortest")
    produced = result.stdout.decode().split()
    assert len(produced) == len(finite), result.stderr.decode()
    wrong = [(repr(v), java) for (_, v), java in zip(finite, produced) if Decimal(java) != Decimal(repr(v))]
    assert not wrong, f"{len(wrong)} of {len(finite)} differ from Python's repr; first: {wrong[:5]}"
