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
import math
import re
import struct
from collections.abc import Mapping, Set
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, NamedTuple
from uuid import UUID

from dqhash.core.jsontext import JsonNumber
from dqhash.core.timeutil import TimestampError, datetime_to_ms


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
    elif name == "udt":
        if params:
            raise CanonicalError(f"udt takes no type parameters (its fields' types are inferred) in {text!r}")
    elif name != "tuple":
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
            return ("s", _text(value))
        if name in _INTEGER_TYPES:
            return ("i", _integer(value, name))
        if name == "double":
            return ("f", _float_payload(_double(value)))
        if name == "float":
            return ("f", _float_payload(_binary32(_double(value))))
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
            return ("u", _uuid(value, name))
        if name == "blob":
            return ("x", _blob_hex(value))
        if name == "inet":
            return ("a", _inet(value))
    except (ValueError, TypeError, ArithmeticError, TimestampError) as exc:
        if isinstance(exc, CanonicalError):
            raise
        raise CanonicalError(f"{_shown(value)} is not a valid {name}: {exc}") from None
    return _collection(value, ctype)


def _shown(value: Any) -> str:
    """A bounded rendering of a refused value for an error message."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _infer(value: Any) -> Canon:
    if isinstance(value, str):
        return ("s", _text(value))
    if isinstance(value, bool):
        return ("b", "true" if value else "false")
    if isinstance(value, int):
        return ("i", _integer(value, "varint"))
    if isinstance(value, float):
        return ("f", _float_payload(_double(value)))
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
        return ("a", _inet(value))
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


#: collection columns, in which an empty collection of either JSON shape (``[]``, ``{}``) is null, as Cassandra
#: stores it; a tuple is not one (its arity is fixed: ``[]`` is refused)
_EMPTY_IS_NULL = frozenset({"list", "set", "map", "udt"})


def _collection(value: Any, ctype: ColumnType | None) -> Canon:
    name = ctype.name if ctype else None
    params = ctype.params if ctype else ()
    if name in _EMPTY_IS_NULL and isinstance(value, (Mapping, list, tuple, Set)) and not value:
        return NULL
    if hasattr(value, "_fields") and name in (None, "udt", "map"):  # UDT as a namedtuple
        value = {field: getattr(value, field) for field in value._fields}
    if isinstance(value, Mapping) and name in (None, "map", "udt"):
        return _map(value, params)
    if _is_set_of(value, name):
        return _set(value, params[0] if params else None)
    if isinstance(value, (list, tuple)) and name in (None, "list", "tuple"):
        return _sequence(value, name, params)
    raise CanonicalError(f"cannot hash a value of type {type(value).__name__}" + (f" as {ctype}" if ctype else ""))


def _is_set_of(value: Any, name: str | None) -> bool:
    """Hashed as a set: a JSON array declared ``set``, or a set (Python's or the driver's) not declared otherwise."""
    if name == "set" and isinstance(value, (list, tuple)):
        return True
    return name in (None, "set") and (isinstance(value, Set) or _is_driver_set(value))


def _map(value: Mapping[Any, Any], params: tuple[ColumnType, ...]) -> Canon:
    """(key, value) pairs sorted by the key's encoding; two keys equal after normalisation are refused."""
    key_type, value_type = params if len(params) == 2 else (None, None)
    pairs = sorted(((canon(k, key_type), canon(v, value_type)) for k, v in value.items()), key=_key_encoding)
    for (left, _), (right, _) in zip(pairs, pairs[1:]):
        if encode(left) == encode(right):
            raise CanonicalError(
                f"two map keys are equal as {key_type or 'text'} after normalisation ({_shown(left[1])});"
                " a Cassandra map holds each key once, so the row cannot be hashed unambiguously"
            )
    return ("m", tuple(pairs)) if pairs else NULL


def _set(value: Any, element_type: ColumnType | None) -> Canon:
    """The distinct elements sorted by their encoding: a set holds each once."""
    encoded = {encode(item): item for item in (canon(v, element_type) for v in value)}
    items = tuple(encoded[key] for key in sorted(encoded))
    return ("e", items) if items else NULL


def _sequence(value: list[Any] | tuple[Any, ...], name: str | None, params: tuple[ColumnType, ...]) -> Canon:
    """A list's elements in order; a declared tuple's, each of its own type, at exactly its arity."""
    if name == "tuple" and params:
        if len(params) != len(value):
            raise CanonicalError(f"tuple of {len(params)} expected, got {len(value)} elements")
        items = tuple(canon(v, t) for v, t in zip(value, params))
    else:
        element_type = params[0] if name == "list" and params else None
        items = tuple(canon(v, element_type) for v in value)
    return ("l", items) if items else NULL


def _key_encoding(pair: tuple[Canon, Canon]) -> bytes:
    return encode(pair[0])


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


def _text(value: str) -> str:
    """Text must be encodable as UTF-8: a lone surrogate (JSON allows ``"\\ud800"``) has no UTF-8 form."""
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:
            raise CanonicalError(f"{_shown(value)} holds a lone UTF-16 surrogate, which is not text") from None
    return value


#: Numeric payloads (``i`` and ``d``) longer than this are refused: a guard against a value that
#: would take gigabytes to write out (``1E+999999999``), identical in every implementation.
MAX_NUMBER_CHARS = 1000
_INTEGER_BITS = {"tinyint": 8, "smallint": 16, "int": 32, "bigint": 64, "counter": 64}
_INTEGER_TEXT = re.compile(r"-?[0-9]+", re.ASCII)
_TOO_BIG = 10**MAX_NUMBER_CHARS


def _integral(value: Any) -> int:
    """An integer from an int, a number with an integral value, or a string of ASCII digits."""
    if isinstance(value, bool):
        raise CanonicalError("a boolean is not an integer")
    if isinstance(value, int):
        if not -_TOO_BIG < value < _TOO_BIG:
            raise CanonicalError(f"integer longer than {MAX_NUMBER_CHARS} digits")
        return value
    if isinstance(value, str):
        if not _INTEGER_TEXT.fullmatch(value):
            raise CanonicalError(f"{_shown(value)} is not an integer (ASCII digits with an optional '-' only)")
        if len(value) - value.startswith("-") > MAX_NUMBER_CHARS:  # whatever its value: a bounded cost
            raise CanonicalError(f"integer longer than {MAX_NUMBER_CHARS} digits")
        return int(value)
    if isinstance(value, (float, Decimal)):  # a JsonNumber keeps its text: read that, not the double
        if isinstance(value, JsonNumber):
            return _integral_number(value.text, value)
        number = Decimal(value)
        if not number.is_finite():
            raise CanonicalError(f"{_shown(value)} is not an integer")
        sign, digits, exponent = number.as_tuple()
        return _integral_parts(sign, "".join(map(str, digits)), int(exponent), value)
    raise CanonicalError(f"{type(value).__name__} is not an integer")


_NUMBER_PARTS = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?(?:[eE]([+-]?[0-9]+))?", re.ASCII)


def _integral_number(text: str, shown: Any) -> int:
    """The integer a JSON number's text spells (``5.0``, ``1e2``, ``-1e999``), read from its digits and
    exponent, never through a bounded decimal context: a zero is 0 whatever its exponent (``0e2147483648``)."""
    match = _NUMBER_PARTS.fullmatch(text)
    if match is None:
        raise CanonicalError(f"{_shown(shown)} is not an integer")
    sign, whole, fraction, exponent = match.groups()
    fraction = fraction or ""
    return _integral_parts(1 if sign else 0, whole + fraction, int(exponent or 0) - len(fraction), shown)


def _integral_parts(sign: int, digits: str, exponent: int, shown: Any) -> int:
    """sign × digits × 10^exponent if that is an integer of at most MAX_NUMBER_CHARS digits (sign not counted)."""
    significant = digits.lstrip("0")
    if not significant:
        return 0
    trimmed = significant.rstrip("0")
    exponent += len(significant) - len(trimmed)
    if exponent < 0:
        raise CanonicalError(f"{_shown(shown)} is not an integer")
    if len(trimmed) + exponent > MAX_NUMBER_CHARS:
        raise CanonicalError(f"integer longer than {MAX_NUMBER_CHARS} digits")
    number: int = int(trimmed) * 10**exponent
    return -number if sign else number


def _integer(value: Any, name: str) -> str:
    number = _integral(value)
    bits = _INTEGER_BITS.get(name)
    if bits is not None and not -(1 << (bits - 1)) <= number < 1 << (bits - 1):
        raise CanonicalError(f"{number} is outside the {name} range [{-(1 << (bits - 1))}, {(1 << (bits - 1)) - 1}]")
    text = str(number)
    if len(text.lstrip("-")) > MAX_NUMBER_CHARS:
        raise CanonicalError(f"integer longer than {MAX_NUMBER_CHARS} digits")
    return text


_JSON_NUMBER_TEXT = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?", re.ASCII)
_SPECIAL_DOUBLES = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _double(value: Any) -> float:
    """A binary64 value; a number written in finite digits must be finite (``1e400`` is refused)."""
    if isinstance(value, bool):
        raise CanonicalError("a boolean is not a number")
    if isinstance(value, JsonNumber):
        number = float(value.text)
    elif isinstance(value, float):
        return value  # a driver value: any binary64, infinities included
    elif isinstance(value, str):
        if value in _SPECIAL_DOUBLES:
            return _SPECIAL_DOUBLES[value]
        if not _JSON_NUMBER_TEXT.fullmatch(value):
            raise CanonicalError(
                f"{_shown(value)} is not a number (JSON number syntax, or exactly NaN, Infinity, -Infinity)"
            )
        number = float(value)
    elif isinstance(value, int):
        try:
            number = float(value)
        except OverflowError:
            raise CanonicalError(f"{_shown(value)} is outside the double range") from None
    elif isinstance(value, Decimal):
        if not value.is_finite():
            return float(value)
        number = float(value)
    else:
        raise CanonicalError(f"{type(value).__name__} is not a number")
    if math.isinf(number):
        raise CanonicalError(f"{_shown(value)} is outside the double range")
    return number


def _binary32(value: float) -> float:
    """Round a binary64 to binary32 (nearest, ties to even) and widen it back exactly: a float column."""
    if value != value or math.isinf(value):
        return value
    try:
        return float(struct.unpack(">f", struct.pack(">f", value))[0])
    except OverflowError:
        raise CanonicalError(f"{value!r} is outside the float (binary32) range") from None


def _float_payload(value: float) -> str:
    """IEEE-754 binary64 bits as 16 hex digits: exact, locale- and language-free."""
    if value != value:
        return "7ff8000000000000"  # one canonical NaN
    if value == 0.0:
        value = 0.0  # -0.0 equals 0.0
    return struct.pack(">d", value).hex()


_DECIMAL_TEXT = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
_SPECIAL_DECIMALS = ("NaN", "Infinity", "-Infinity")


def _to_decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise CanonicalError("a boolean is not a decimal")
    if isinstance(value, JsonNumber):
        return Decimal(value.text)  # exact: the digits as written
    if isinstance(value, float):
        return Decimal(repr(value))  # the shortest text that reads back as this float
    if isinstance(value, (int, Decimal)):
        return Decimal(value)
    if isinstance(value, str):
        if value in _SPECIAL_DECIMALS or _DECIMAL_TEXT.fullmatch(value):
            return Decimal(value)
        raise CanonicalError(
            f"{_shown(value)} is not a decimal (digits with an optional '-', '.' and exponent;"
            " or exactly NaN, Infinity, -Infinity)"
        )
    raise CanonicalError(f"{type(value).__name__} is not a decimal")


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
    while len(digits) > 1 and digits[0] == 0:
        digits.pop(0)
    if exponent >= 0:
        length = len(digits) + exponent
    else:
        length = len(digits) + 1 if len(digits) > -exponent else 2 - exponent
    if length + sign > MAX_NUMBER_CHARS:
        raise CanonicalError(f"decimal longer than {MAX_NUMBER_CHARS} characters in plain notation")
    return format(Decimal((sign, tuple(digits), exponent)), "f")


def _boolean(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.isascii() and value.lower() in ("true", "false"):
        return value.lower()
    raise CanonicalError(f"{_shown(value)} is not a boolean")


_TIMESTAMP_TEXT = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?(Z|[+-][0-9]{2}:[0-9]{2})",
    re.ASCII,
)
_MIN_INT64, _MAX_INT64 = -(1 << 63), (1 << 63) - 1


def _timestamp_ms(value: Any) -> int:
    if isinstance(value, datetime):
        return datetime_to_ms(value)
    if isinstance(value, str):
        match = _TIMESTAMP_TEXT.fullmatch(value)
        if not match:
            raise CanonicalError(
                f"{_shown(value)} is not a timestamp (YYYY-MM-DDTHH:MM:SS[.fffffffff] with Z or ±HH:MM)"
            )
        year, month, day, hour, minute, second, fraction, zone = match.groups()
        days = _civil_days(year, month, day)
        _check_clock(hour, minute, second)
        offset = 0
        if zone != "Z":
            if int(zone[1:3]) > 23 or int(zone[4:6]) > 59:
                raise CanonicalError(f"{_shown(value)} has a zone offset outside ±23:59")
            offset = (int(zone[1:3]) * 60 + int(zone[4:6])) * (1 if zone[0] == "+" else -1)
        seconds = days * 86_400 + int(hour) * 3600 + int(minute) * 60 + int(second) - offset * 60
        return seconds * 1000 + int((fraction or "0").ljust(3, "0")[:3])
    if isinstance(value, (int, float, Decimal)):
        ms = _integral(value)
        if not _MIN_INT64 <= ms <= _MAX_INT64:
            raise CanonicalError(f"{ms} epoch milliseconds is outside the signed 64-bit range")
        return ms
    raise CanonicalError(f"{type(value).__name__} is not a timestamp")


def _civil_days(year: str, month: str, day: str) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date with a four-digit year 0001-9999."""
    try:
        return date(int(year), int(month), int(day)).toordinal() - EPOCH_ORDINAL
    except ValueError:
        raise CanonicalError(f"{year}-{month}-{day} is not a calendar date (years 0001-9999)") from None


def _check_clock(hour: str, minute: str, second: str) -> None:
    if int(hour) > 23 or int(minute) > 59 or int(second) > 59:
        raise CanonicalError(f"{hour}:{minute}:{second} is not a time of day (00:00:00 to 23:59:59)")


_DATE_TEXT = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})", re.ASCII)
#: Cassandra's ``date`` is an unsigned 32-bit day count centred on the epoch.
_MIN_DAYS, _MAX_DAYS = -(1 << 31), (1 << 31) - 1


def _date_days(value: Any) -> int:
    if hasattr(value, "days_from_epoch"):
        return int(value.days_from_epoch)
    if isinstance(value, datetime):
        raise CanonicalError("a datetime is not a date")
    if isinstance(value, date):
        return value.toordinal() - EPOCH_ORDINAL
    if isinstance(value, str):
        match = _DATE_TEXT.fullmatch(value)
        if not match:
            raise CanonicalError(f"{_shown(value)} is not a date (YYYY-MM-DD)")
        return _civil_days(*match.groups())
    if isinstance(value, (int, float, Decimal)):
        days = _integral(value)
        if not _MIN_DAYS <= days <= _MAX_DAYS:
            raise CanonicalError(f"{days} days is outside Cassandra's date range")
        return days
    raise CanonicalError(f"{type(value).__name__} is not a date")


#: The proleptic Gregorian ordinal of 1970-01-01: days since the epoch are ordinals minus this.
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_TIME_TEXT = re.compile(r"([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?", re.ASCII)
_NANOS_PER_DAY = 86_400 * 1_000_000_000


def _time_ns(value: Any) -> int:
    if hasattr(value, "nanosecond_time"):
        return int(value.nanosecond_time)
    if isinstance(value, str):
        match = _TIME_TEXT.fullmatch(value)
        if not match:
            raise CanonicalError(f"{_shown(value)} is not HH:MM:SS[.fffffffff]")
        hours, minutes, seconds, fraction = match.groups()
        _check_clock(hours, minutes, seconds)
        nanos = int((fraction or "0").ljust(9, "0"))
        return ((int(hours) * 60 + int(minutes)) * 60 + int(seconds)) * 1_000_000_000 + nanos
    if isinstance(value, time):
        return ((value.hour * 60 + value.minute) * 60 + value.second) * 1_000_000_000 + value.microsecond * 1000
    if isinstance(value, (int, float, Decimal)):
        nanos = _integral(value)
        if not 0 <= nanos < _NANOS_PER_DAY:
            raise CanonicalError(f"{nanos} nanoseconds is outside a day [0, {_NANOS_PER_DAY - 1}]")
        return nanos
    raise CanonicalError(f"{type(value).__name__} is not a time")


_UUID_TEXT = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}", re.ASCII)


def _uuid(value: Any, name: str) -> str:
    if isinstance(value, UUID):
        text = str(value)
    elif isinstance(value, str):
        hyphens = value.count("-")
        if not _UUID_TEXT.fullmatch(value) or hyphens not in (0, 4):
            raise CanonicalError(f"{_shown(value)} is not a UUID (8-4-4-4-12 hex digits, or 32 without hyphens)")
        text = str(UUID(value))
    else:
        raise CanonicalError(f"{type(value).__name__} is not a UUID")
    if name == "timeuuid" and text[14] != "1":
        raise CanonicalError(f"{text} is a version {text[14]} UUID; a timeuuid is version 1")
    return text


_BLOB_TEXT = re.compile(r"(?:0[xX])?(?:[0-9a-fA-F]{2})*", re.ASCII)


def _blob_hex(value: Any) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, str):
        if not _BLOB_TEXT.fullmatch(value):
            raise CanonicalError(f"{_shown(value)} is not a blob (pairs of hex digits, optionally after 0x)")
        return value[2:].lower() if value[:2] in ("0x", "0X") else value.lower()
    raise CanonicalError(f"{type(value).__name__} is not a blob")


_INET_TEXT = re.compile(r"[0-9A-Fa-f:.]+", re.ASCII)


def _inet(value: Any) -> str:
    """IPv4 dotted quad; IPv6 in RFC 5952 form, with IPv4-mapped addresses in its mixed form (§5)."""
    if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        address = value
    elif isinstance(value, str):
        if not _INET_TEXT.fullmatch(value):  # no zone id, prefix length, brackets or spaces
            raise CanonicalError(f"{_shown(value)} is not an IP address (no zone, prefix or brackets)")
        address = ipaddress.ip_address(value)
    else:
        raise CanonicalError(f"{type(value).__name__} is not an IP address")
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return f"::ffff:{address.ipv4_mapped}"
    return str(address)
