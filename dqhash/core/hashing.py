"""Row hashing strategies — the contract both sides share (docs/hashing.md).

``v2`` (default) hashes an unambiguous, type-tagged, length-prefixed encoding;
``v1`` is the seed's Kafka Connect SMT format (``|``-joined text) made
null-safe, kept for compatibility with existing on-prem producers.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any

import orjson

from dqhash.core.canonical import Canon, ColumnType, canon, encode, parse_type
from dqhash.core.contracts import HashRef
from dqhash.core.timeutil import format_ms

STRATEGIES = ("v1", "v2")
ALGORITHMS = ("sha256",)
#: Per-column digests are the first 16 hex characters (64 bits) of SHA-256:
#: plenty to say *which* columns differ, at a quarter of the size on the wire.
COLUMN_DIGEST_HEX = 16
_V2_HEADER = b"dqhash:v2\n"


class HashConfigError(ValueError):
    """A strategy, algorithm, field list or type declaration that cannot work."""


class RowHasher:
    """Hashes rows (column name → value) under one strategy and column selection.

    ``fields`` None hashes every column of the row. A selected column absent
    from the row hashes as null. ``types`` maps column names to CQL type names;
    undeclared columns infer their type from the Python value.
    """

    def __init__(
        self,
        strategy: str = "v2",
        fields: Sequence[str] | None = None,
        types: Mapping[str, str] | None = None,
        algorithm: str = "sha256",
    ) -> None:
        if strategy not in STRATEGIES:
            raise HashConfigError(f"unknown hash strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
        if algorithm not in ALGORITHMS:
            raise HashConfigError(f"unsupported hash algorithm {algorithm!r}; supported: {', '.join(ALGORITHMS)}")
        if fields is not None:
            if not fields or any(not f for f in fields):
                raise HashConfigError("the field list is empty or has an empty name")
            if len(set(fields)) != len(fields):
                raise HashConfigError(f"the field list names a column twice: {list(fields)}")
        self.strategy = strategy
        self.fields = sorted(fields, key=_name_order) if fields is not None else None
        self.types: dict[str, ColumnType] = {name: parse_type(text) for name, text in (types or {}).items()}

    def hash(self, row: Mapping[str, Any]) -> HashRef:
        columns = self._canon_columns(row)
        if self.strategy == "v2":
            body = b"".join(encode(("s", name)) + encode(c) for name, c in columns)
            data = _V2_HEADER + b"%d:" % len(columns) + body
        else:
            data = "|".join(render_v1(c) for _, c in columns).encode()
        return HashRef(self.strategy, hashlib.sha256(data).hexdigest())

    def column_digests(self, row: Mapping[str, Any]) -> dict[str, str]:
        """A short digest per hashed column, so a MISMATCH can name the columns that differ."""
        digests = {}
        for name, c in self._canon_columns(row):
            data = encode(("s", name)) + encode(c) if self.strategy == "v2" else render_v1(c).encode()
            digests[name] = hashlib.sha256(data).hexdigest()[:COLUMN_DIGEST_HEX]
        return digests

    def _canon_columns(self, row: Mapping[str, Any]) -> list[tuple[str, Canon]]:
        names = self.fields if self.fields is not None else sorted(row, key=_name_order)
        types = self.types
        return [(name, canon(row.get(name), types.get(name))) for name in names]


def _name_order(name: str) -> bytes:
    """Columns sort by their UTF-8 bytes: the same order in every language."""
    return name.encode()


def differing_columns(left: Mapping[str, str] | None, right: Mapping[str, str] | None) -> list[str]:
    """Columns whose digests differ, or that only one side has; [] when unknown."""
    if not left or not right:
        return []
    return sorted(name for name in left.keys() | right.keys() if left.get(name) != right.get(name))


def render_v1(c: Canon) -> str:
    """v1 text of a normalised value; null renders as the empty string."""
    tag: str
    payload: Any  # by tag: a text, or a tuple of normalised values (collections)
    tag, payload = c
    if tag == "n":
        return ""
    if tag in ("l", "e"):
        return orjson.dumps([render_v1(item) for item in payload]).decode()
    if tag == "m":
        return orjson.dumps({render_v1(k): render_v1(v) for k, v in payload}).decode()
    if tag == "f":
        return _float_text(payload)
    if tag == "t":
        return format_ms(int(payload))
    if tag == "D":
        return (date(1970, 1, 1) + timedelta(days=int(payload))).isoformat()
    if tag == "T":
        seconds, nanos = divmod(int(payload), 1_000_000_000)
        return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}.{nanos:09d}"
    return str(payload)


def _float_text(bits_hex: str) -> str:
    value = struct.unpack(">d", bytes.fromhex(bits_hex))[0]
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)


def parse_type_declarations(text: str | None) -> dict[str, str]:
    """``a=timestamp,b=map<text,int>``: commas inside <> belong to the type."""
    if not text:
        return {}
    declarations: dict[str, str] = {}
    depth, current = 0, ""
    for char in text + ",":
        if char == "," and depth == 0:
            name, sep, ctype = current.partition("=")
            if not sep or not name.strip() or not ctype.strip():
                raise HashConfigError(f"bad type declaration {current!r}; expected column=type")
            declarations[name.strip()] = ctype.strip()
            current = ""
            continue
        depth += {"<": 1, ">": -1}.get(char, 0)
        current += char
    return declarations
