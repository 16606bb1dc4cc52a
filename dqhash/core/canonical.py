"""Type-first normalisation of row values, shared by every hash strategy.

A value is first reduced to a :data:`Canon` — a tag naming its logical type
and a payload in one agreed textual form — and only then encoded by a
strategy. That is what keeps ``.71`` and ``0.710``, a naive-UTC datetime from
cassandra-driver and an ISO string with ``Z``, or a set in any order, equal on
both sides. Tags and payload rules are specified in ``docs/hashing.md``.

Column types can be declared (CQL names: ``decimal``, ``timestamp``,
``list<timestamp>``, ``map<text,int>``, ``frozen<...>``); without a
declaration the type is inferred from the Python value, which is exact for
cassandra-driver results but ambiguous for JSON (a timestamp in JSON is just a
string), so JSON callers declare such columns.
"""

from __future__ import annotations

import ipaddress
import re
import struct
from collections.abc import Mapping, Set
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple
from uuid import UUID

from dqhash.core.timeutil import TimestampError, datetime_to_ms, parse_timestamp


class CanonicalError(ValueError):
    """A value that cannot be normalised as its (declared or inferred) type."""


class ColumnType(NamedTuple):
    name: str
    params: tuple[ColumnType, ...] = ()

    def __str__(self) -> str:
        if not self.params:
            return self.name
        return f"{self.name}<{','.join(map(str, self.params))}>"


#: (tag, payload): payload is text for scalars, a tuple of Canon for list/set
#: (a set's already sorted), a tuple of (key, value) Canon pairs for maps.
Canon = tuple[str, str | tuple[Any, ...]]

NULL: Canon = ("n", "")

_INTEGER_TYPES = {"int", "bigint", "smallint", "tinyint", "varint", "counter"}
_TEXT_TYPES = {"text", "ascii", "varchar"}
_SCALAR_TYPES = (
    _INTEGER_TYPES
    | _TEXT_TYPES
    | {
        "float",
        "double",
        "decimal",
        "boolean",
        "timestamp",
        "date",
        "time",
        "uuid",
        "timeuuid",
        "blob",
        "inet",
    }
)
_COLLECTION_ARITY = {"list": 1, "set": 1, "map": 2}
_TOKEN = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*|<|>|,)")


def parse_type(text: str) -> ColumnType:
    """Parse a CQL type name such as ``map<text, frozen<list<int>>>``.

    ``frozen<>`` is unwrapped (it changes storage, not value); ``tuple<...>``
    takes any number of element types; ``list``/``set``/``map``/``tuple``
    without parameters infer their elements.
    """
    tokens = [t for t in _TOKEN.findall(text)]
    if "".join(tokens) != re.sub(r"\s+", "", text):
        raise CanonicalError(f"cannot parse column type {text!r}")
    parsed, rest = _parse_tokens(tokens, text)
    if rest:
        raise CanonicalError(f"trailing characters in column type {text!r}")
    return parsed


def _parse_tokens(tokens: list[str], text: str) -> tuple[ColumnType, list[str]]:
    if not tokens or tokens[0] in "<>,":
        raise CanonicalError(f"cannot parse column type {text!r}")
    name, rest = tokens[0].lower(), tokens[1:]
    params: list[ColumnType] = []
    if rest and rest[0] == "<":
        rest = rest[1:]
        while True:
            param, rest = _parse_tokens(rest, text)
            params.append(param)
            if not rest:
                raise CanonicalError(f"unclosed '<' in column type {text!r}")
            if rest[0] == ">":
                rest = rest[1:]
                break
            if rest[0] != ",":
                raise CanonicalError(f"expected ',' or '>' in column type {text!r}")
            rest = rest[1:]
    if name == "frozen":
        if len(params) != 1:
            raise CanonicalError(f"frozen<> takes one type in {text!r}")
        return params[0], rest
    if name in _SCALAR_TYPES:
        if params:
            raise CanonicalError(f"{name} takes no type parameters in {text!r}")
    elif name in _COLLECTION_ARITY:
        if params and len(params) != _COLLECTION_ARITY[name]:
            raise CanonicalError(f"{name} takes {_COLLECTION_ARITY[name]} type parameter(s) in {text!r}")
    elif name not in {"tuple", "udt"}:
        raise CanonicalError(
            f"unsupported column type {name!r}; supported: {sorted(_SCALAR_TYPES | set(_COLLECTION_ARITY) | {'tuple', 'udt', 'frozen'})}"
        )
    return ColumnType(name, tuple(params)), rest


def canon(value: Any, ctype: ColumnType | None = None) -> Canon:
    """Normalise one value; ``ctype`` None infers the type from the Python value."""
    if value is None:
        return NULL
    if ctype is None:
        return _infer(value)
    name = ctype.name
    try:
        if name in _TEXT_TYPES:
            if not isinstance(value, str):
                raise CanonicalError(f"expected text, got {type(value).__name__}")
            return ("s", value)
        if name in _INTEGER_TYPES:
            return ("i", _integer(value))
        if name in ("float", "double"):
            return ("f", _float_payload(_to_float(value)))
        if name == "decimal":
            return ("d", _decimal_payload(_to_decimal(value)))
        if name == "boolean":
            return ("b", _boolean(value))
        if name == "timestamp":
            return ("t", str(_timestamp_ms(value)))
        if name == "date":
            return ("D", str(_date_days(value)))
        if name == "time":
            return ("T", str(_time_ns(value)))
        if name in ("uuid", "timeuuid"):
            return ("u", str(value if isinstance(value, UUID) else UUID(str(value))))
        if name == "blob":
            return ("x", _blob_hex(value))
        if name == "inet":
            return ("a", str(ipaddress.ip_address(value)))
    except (ValueError, TypeError, InvalidOperation, TimestampError) as exc:
        if isinstance(exc, CanonicalError):
            raise
        raise CanonicalError(f"{value!r:.60} is not a valid {name}: {exc}") from None
    return _collection(value, ctype)


def _infer(value: Any) -> Canon:
    if isinstance(value, str):
        return ("s", value)
    if isinstance(value, bool):
        return ("b", "true" if value else "false")
    if isinstance(value, int):
        return ("i", str(value))
    if isinstance(value, float):
        return ("f", _float_payload(value))
    if isinstance(value, Decimal):
        return ("d", _decimal_payload(value))
    if isinstance(value, datetime):
        return ("t", str(datetime_to_ms(value)))
    if isinstance(value, date):
        return ("D", str(_date_days(value)))
    if isinstance(value, time):
        return ("T", str(_time_ns(value)))
    if isinstance(value, UUID):
        return ("u", str(value))
    if isinstance(value, (bytes, bytearray, memoryview)):
        return ("x", bytes(value).hex())
    if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return ("a", str(value))
    if hasattr(value, "days_from_epoch"):  # cassandra.util.Date
        return ("D", str(value.days_from_epoch))
    if hasattr(value, "nanosecond_time"):  # cassandra.util.Time
        return ("T", str(value.nanosecond_time))
    return _collection(value, None)


def _is_driver_set(value: Any) -> bool:
    """cassandra-driver's ``SortedSet`` (a set column's value) is no ``collections.abc.Set``; recognised by
    name so that this module needs no driver installed (``dqhash hash`` runs without it)."""
    kind = type(value)
    return kind.__name__ == "SortedSet" and kind.__module__.startswith("cassandra")


def _collection(value: Any, ctype: ColumnType | None) -> Canon:
    name = ctype.name if ctype else None
    params = ctype.params if ctype else ()
    if hasattr(value, "_fields") and name in (None, "udt", "map"):  # UDT as a namedtuple
        value = {field: getattr(value, field) for field in value._fields}
    if isinstance(value, Mapping) and name in (None, "map", "udt"):
        key_type, value_type = params if len(params) == 2 else (None, None)
        pairs = tuple(
            sorted(((canon(k, key_type), canon(v, value_type)) for k, v in value.items()), key=lambda kv: encode(kv[0]))
        )
        return ("m", pairs) if pairs else NULL
    is_set = isinstance(value, Set) or _is_driver_set(value)
    if name == "set" and isinstance(value, (list, tuple)) or is_set and name in (None, "set"):
        element_type = params[0] if params else None
        items = tuple(sorted((canon(v, element_type) for v in value), key=encode))
        return ("e", items) if items else NULL
    if isinstance(value, (list, tuple)) and name in (None, "list", "tuple"):
        if name == "tuple" and params:
            if len(params) != len(value):
                raise CanonicalError(f"tuple of {len(params)} expected, got {len(value)} elements")
            items = tuple(canon(v, t) for v, t in zip(value, params))
        else:
            element_type = params[0] if name == "list" and params else None
            items = tuple(canon(v, element_type) for v in value)
        return ("l", items) if items else NULL
    raise CanonicalError(f"cannot hash a value of type {type(value).__name__}" + (f" as {ctype}" if ctype else ""))


def encode(c: Canon) -> bytes:
    """The v2 byte encoding: self-delimiting, so concatenations never collide."""
    tag, payload = c
    if tag == "n":
        return b"n"
    if isinstance(payload, str):
        data = payload.encode()
        return b"%s%d:%s" % (tag.encode(), len(data), data)
    if tag == "m":
        body = b"".join(encode(k) + encode(v) for k, v in payload)
    else:
        body = b"".join(encode(item) for item in payload)
    return b"%s%d:%s" % (tag.encode(), len(payload), body)


def _integer(value: Any) -> str:
    if isinstance(value, bool):
        raise CanonicalError("a boolean is not an integer")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str) and re.fullmatch(r"[+-]?[0-9]+", value.strip()):
        return str(int(value))
    raise CanonicalError(f"{value!r:.60} is not an integer")


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise CanonicalError("a boolean is not a number")
    if isinstance(value, (int, float, Decimal, str)):
        return float(value)
    raise CanonicalError(f"{type(value).__name__} is not a number")


def _float_payload(value: float) -> str:
    """IEEE-754 binary64 bits as 16 hex digits: exact, locale- and language-free."""
    if value != value:
        return "7ff8000000000000"  # one canonical NaN
    if value == 0.0:
        value = 0.0  # -0.0 equals 0.0
    return struct.pack(">d", value).hex()


def _to_decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise CanonicalError("a boolean is not a decimal")
    if isinstance(value, float):
        return Decimal(repr(value))  # the shortest text that reads back as this float
    return Decimal(value if isinstance(value, (int, Decimal)) else str(value).strip())


def _decimal_payload(value: Decimal) -> str:
    """Plain notation, no exponent, no trailing fractional zeros: ``0.71``, ``100``, ``-3.5``."""
    if value.is_nan():
        return "NaN"
    if value.is_infinite():
        return "-Infinity" if value < 0 else "Infinity"
    if value == 0:
        return "0"
    sign, digit_tuple, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # a finite value's exponent (NaN and infinities returned above)
    digits = list(digit_tuple)
    while exponent < 0 and digits and digits[-1] == 0:
        digits.pop()
        exponent += 1
    return format(Decimal((sign, tuple(digits), exponent)), "f")


def _boolean(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower()
    raise CanonicalError(f"{value!r:.60} is not a boolean")


def _timestamp_ms(value: Any) -> int:
    if isinstance(value, datetime):
        return datetime_to_ms(value)
    return parse_timestamp(value, bounded=False)


def _date_days(value: Any) -> int:
    if hasattr(value, "days_from_epoch"):
        return int(value.days_from_epoch)
    if isinstance(value, datetime):
        raise CanonicalError("a datetime is not a date")
    if isinstance(value, str):
        value = date.fromisoformat(value)
    if isinstance(value, date):
        return value.toordinal() - _EPOCH_ORDINAL
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise CanonicalError(f"{value!r:.60} is not a date")


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def _time_ns(value: Any) -> int:
    if hasattr(value, "nanosecond_time"):
        return int(value.nanosecond_time)
    if isinstance(value, str):
        match = re.fullmatch(r"(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?", value.strip())
        if not match:
            raise CanonicalError(f"{value!r:.60} is not HH:MM:SS[.fffffffff]")
        hours, minutes, seconds, fraction = match.groups()
        nanos = int((fraction or "0").ljust(9, "0"))
        return ((int(hours) * 60 + int(minutes)) * 60 + int(seconds)) * 1_000_000_000 + nanos
    if isinstance(value, time):
        return ((value.hour * 60 + value.minute) * 60 + value.second) * 1_000_000_000 + value.microsecond * 1000
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise CanonicalError(f"{value!r:.60} is not a time")


def _blob_hex(value: Any) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, str):
        text = value[2:] if value[:2].lower() == "0x" else value
        return bytes.fromhex(text).hex()
    raise CanonicalError(f"{type(value).__name__} is not a blob")
