"""Row hashing strategies — the contract both sides share (docs/hashing.md).

``v2`` (default) hashes an unambiguous, type-tagged, length-prefixed encoding;
``v1`` joins each value's text with ``|``: kept for on-prem producers already
using it (it is not the seed SMT's output; docs/hashing.md §4 says where they differ).
"""

from __future__ import annotations

import hashlib
import struct
import sys
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import orjson

from dqhash.core import compiled_hasher
from dqhash.core.canonical import EPOCH_ORDINAL, Canon, CanonicalError, ColumnType, canon, encode, parse_type
from dqhash.core.input_records import COLUMN_DIGEST_HEX, HashRef
from dqhash.core.jsontext import MAX_DEPTH

STRATEGIES = ("v1", "v2")
ALGORITHMS = ("sha256",)
#: Per-column digests (``input_records.COLUMN_DIGEST_HEX``: 16 hex characters, 64 bits of SHA-256) are plenty to
#: say *which* columns differ, at a quarter of the size on the wire.
_V2_HEADER = b"dqhash:v2\n"
#: column orders kept per hasher (one per distinct set of row columns)
_ORDERS_KEPT = 256
#: a scalar's tag as bytes
_TAG_BYTES = {tag: tag.encode() for tag in "sibfdtDTuxa"}


class HashConfigError(ValueError):
    """A strategy, algorithm, field list or type declaration that cannot work."""


class RowHasher:
    """Hashes rows (column name → value) under one strategy and column selection.

    ``fields`` None hashes every column of the row. A selected column absent
    from the row hashes as null. ``types`` maps column names to CQL type names;
    undeclared columns infer their type from the Python value. ``compiled`` None hashes v2 dict rows on the
    compiled path where it is built (``compiled_hasher``), True requires it, False keeps to this reference.
    """

    def __init__(
        self,
        strategy: str = "v2",
        fields: Sequence[str] | None = None,
        types: Mapping[str, str] | None = None,
        algorithm: str = "sha256",
        compiled: bool | None = None,
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
        if compiled and not compiled_hasher.AVAILABLE:
            raise HashConfigError(
                "the compiled hasher is not built in this install (no C compiler at install time); reinstall "
                "with gcc and the Python headers, or use the pure-Python hasher"
            )
        _deep_enough()
        self.strategy = strategy
        self.fields = sorted(fields, key=_name_order) if fields is not None else None
        self.types: dict[str, ColumnType] = {name: parse_type(text) for name, text in (types or {}).items()}
        #: each column name's v2 encoding, and each set of row columns' hashing order, worked out once
        self._encoded_names: dict[str, bytes] = {}
        self._orders: dict[tuple[str, ...], list[str]] = {}
        #: v2 on the compiled path: a plan per set of row columns, as the orders above
        self.compiled = strategy == "v2" and compiled_hasher.AVAILABLE and compiled is not False
        self._plans: dict[tuple[str, ...] | None, compiled_hasher.RowPlan] = {}

    def hash(self, row: Mapping[str, Any]) -> HashRef:
        if self.compiled and type(row) is dict:
            return HashRef(self.strategy, compiled_hasher.hash_row(row, self._plan_of(row), _V2_HEADER, 0)[0])
        return HashRef(self.strategy, hashlib.sha256(self.preimage(row)).hexdigest())

    def preimage(self, row: Mapping[str, Any]) -> bytes:
        """The exact bytes that are hashed: what an implementer diffs when a hash disagrees."""
        columns = self._canon_columns(row)
        if self.strategy == "v2":
            body = b"".join(encode(("s", name)) + encode(c) for name, c in columns)
            return _V2_HEADER + b"%d:" % len(columns) + body
        return "|".join(render_v1(c) for _, c in columns).encode()

    def column_digests(self, row: Mapping[str, Any]) -> dict[str, str]:
        """A short digest per hashed column, so a MISMATCH can name the columns that differ."""
        return self.hash_and_digests(row)[1]

    def hash_and_digests(self, row: Mapping[str, Any]) -> tuple[HashRef, dict[str, str]]:
        """``hash(row)`` and ``column_digests(row)``, normalising each value once."""
        if self.compiled and type(row) is dict:
            row_hex, digests = compiled_hasher.hash_row(row, self._plan_of(row), _V2_HEADER, COLUMN_DIGEST_HEX)
            return HashRef(self.strategy, row_hex), digests
        columns = self._canon_columns(row)
        digests = {}
        parts = []
        sha256, names = hashlib.sha256, self._encoded_names
        v2 = self.strategy == "v2"
        for name, c in columns:
            if v2:
                encoded_name = names.get(name)
                if encoded_name is None:
                    encoded_name = names[name] = encode(("s", name))
                tag, payload = c
                if type(payload) is str and tag != "n":  # a scalar, inline: most values of most rows
                    text = payload.encode()
                    data = b"%s%s%d:%s" % (encoded_name, _TAG_BYTES.get(tag) or tag.encode(), len(text), text)
                else:
                    data = encoded_name + encode(c)
            else:
                data = render_v1(c).encode()
            parts.append(data)
            digests[name] = sha256(data).hexdigest()[:COLUMN_DIGEST_HEX]
        if v2:
            preimage = _V2_HEADER + b"%d:" % len(columns) + b"".join(parts)
        else:
            preimage = b"|".join(parts)
        return HashRef(self.strategy, sha256(preimage).hexdigest()), digests

    def _canon_columns(self, row: Mapping[str, Any]) -> list[tuple[str, Canon]]:
        names = self.fields if self.fields is not None else self._order_of(row)
        types = self.types
        return [(name, canon(row.get(name), types.get(name))) for name in names]

    def _plan_of(self, row: Mapping[str, Any]) -> compiled_hasher.RowPlan:
        names = tuple(row) if self.fields is None else None
        row_plan = self._plans.get(names)
        if row_plan is None:
            row_plan = compiled_hasher.plan(self.fields or self._order_of(row), self.types)
            if len(self._plans) < _ORDERS_KEPT:
                self._plans[names] = row_plan
        return row_plan

    def _order_of(self, row: Mapping[str, Any]) -> list[str]:
        """A row's columns in hashing order; rows of one table share their columns, so the order is kept per set
        of names (a few hundred sets at most, then worked out each time)."""
        names = tuple(row)
        order = self._orders.get(names)
        if order is None:
            order = sorted(row, key=_name_order)
            if len(self._orders) < _ORDERS_KEPT:
                self._orders[names] = order
        return order


def _name_order(name: str) -> bytes:
    """Columns sort by their UTF-8 bytes: the same order in every language."""
    try:
        return name.encode()
    except UnicodeEncodeError:
        raise CanonicalError(f"column name {name[:40]!r} holds a lone UTF-16 surrogate, which is not text") from None


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
        return _bounded_v1(orjson.dumps([render_v1(item) for item in payload]).decode())
    if tag == "m":
        return _bounded_v1(orjson.dumps({render_v1(k): render_v1(v) for k, v in payload}).decode())
    if tag == "f":
        return _float_text(payload)
    if tag == "t":
        return _iso_timestamp(int(payload))
    if tag == "D":
        return _iso_date(int(payload))
    if tag == "T":
        seconds, nanos = divmod(int(payload), 1_000_000_000)
        return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}.{nanos:09d}"
    return str(payload)


def _civil(days: int) -> date:
    """The calendar date ``days`` after 1970-01-01; v1 writes four-digit years, so only 0001-9999."""
    ordinal = EPOCH_ORDINAL + days
    if not date.min.toordinal() <= ordinal <= date.max.toordinal():
        raise CanonicalError(f"v1 writes years 0001-9999 only; day {days} since 1970 is outside them (use v2)")
    return date.fromordinal(ordinal)


def _iso_date(days: int) -> str:
    day = _civil(days)
    return f"{day.year:04d}-{day.month:02d}-{day.day:02d}"


def _iso_timestamp(ms: int) -> str:
    days, ms_of_day = divmod(ms, 86_400_000)
    seconds, millis = divmod(ms_of_day, 1000)
    return f"{_iso_date(days)}T{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}.{millis:03d}Z"


def _float_text(bits_hex: str) -> str:
    value = struct.unpack(">d", bytes.fromhex(bits_hex))[0]
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)


def parse_type_declarations(text: str | None) -> dict[str, str]:
    """``a=timestamp,b=map<text,int>``: commas inside <> belong to the type; each type must parse."""
    if not text:
        return {}
    declarations: dict[str, str] = {}
    depth, current = 0, ""
    for char in text + ",":
        if char == "," and depth == 0:
            name, sep, ctype = current.partition("=")
            name, ctype = name.strip(), ctype.strip()
            if not sep or not name or not ctype:
                raise HashConfigError(f"bad type declaration {current!r}; expected column=type")
            if name in declarations:
                raise HashConfigError(f"column {name!r} is declared twice ({declarations[name]} and {ctype})")
            try:
                parse_type(ctype)
            except CanonicalError as exc:
                raise HashConfigError(f"bad type for column {name!r}: {exc}") from None
            declarations[name] = ctype
            current = ""
            continue
        depth += {"<": 1, ">": -1}.get(char, 0)
        if depth < 0:
            raise HashConfigError(f"unbalanced '>' in type declaration {(current + char)!r}")
        current += char
    if depth:
        raise HashConfigError(f"unclosed '<' in type declaration {current.rstrip(',')!r}")
    return declarations


#: Python frames the canonical form and the encoders use per nesting level, at most (``canon`` → ``_infer`` →
#: ``_collection`` → its generator, then the encoder's own recursion)
_FRAMES_PER_LEVEL = 8


def _deep_enough() -> None:
    """Let the recursive normaliser and encoders reach every depth the spec allows (512): Python's default
    recursion limit (1,000 frames) stops them at about 250 levels. Raised once, never lowered."""
    needed = MAX_DEPTH * _FRAMES_PER_LEVEL + 1_000
    if sys.getrecursionlimit() < needed:
        sys.setrecursionlimit(needed)


#: The longest v1 text of one collection value, in characters: v1 quotes each nested level's text again, so its
#: size doubles with depth (28 levels took 1 GB); a longer one is refused, level by level, before it grows
MAX_V1_TEXT_CHARS = 1 << 20


def _bounded_v1(text: str) -> str:
    if len(text) > MAX_V1_TEXT_CHARS:
        raise CanonicalError(
            f"v1 text of a collection longer than {MAX_V1_TEXT_CHARS:,} characters (v1 re-quotes every nesting "
            "level); hash such rows with v2"
        )
    return text
