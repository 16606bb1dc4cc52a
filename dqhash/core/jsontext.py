"""JSON for row values, read exactly: the parser every hashing entry point shares.

orjson, the fast path elsewhere, turns integers beyond 64 bits into binary64
(two different varints would hash equal) and keeps the last of two equal keys
silently. Row values need the opposite: integers of any size stay exact, a
number with a fraction or exponent keeps its source text (so a ``decimal``
column reads ``0.1`` as exactly one tenth, and ``1e400`` is refused as a
double instead of becoming infinity), and anything ambiguous is refused:
duplicate keys, ``NaN``/``Infinity`` literals, invalid UTF-8, nesting deeper
than :data:`MAX_DEPTH`. The rules are part of the contract (docs/hashing.md §1).
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

#: Arrays and objects nested deeper than this are refused (the Java hasher uses the same limit).
MAX_DEPTH = 512


class JsonTextError(ValueError):
    """Text that is not one exact JSON value; the message says what is wrong."""


class JsonNumber(float):
    """A JSON number with a fraction or an exponent: its value as a double, and its source text.

    Hashing reads ``text`` wherever the double would lose information: a declared decimal or
    integer column, and the range check (``1e400`` parses, as a double, to infinity).
    """

    text: str

    def __new__(cls, text: str) -> JsonNumber:
        number = super().__new__(cls, text)
        number.text = text
        return number

    def __repr__(self) -> str:
        return self.text


def _refuse_constant(name: str) -> Any:
    raise JsonTextError(f'{name} is not JSON (write it as a string, e.g. "{name}", in a declared double column)')


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    doc = dict(pairs)
    if len(doc) != len(pairs):
        seen: set[str] = set()
        duplicate = next(key for key, _ in pairs if key in seen or seen.add(key))  # type: ignore[func-returns-value]
        raise JsonTextError(f"duplicate key {duplicate[:64]!r} in a JSON object")
    return doc


_DECODER = json.JSONDecoder(
    parse_float=JsonNumber, parse_constant=_refuse_constant, object_pairs_hook=_unique_keys, strict=True
)
_WHITESPACE = re.compile(r"[ \t\n\r]*")


def loads_exact(data: bytes | str) -> Any:
    """Parse one JSON value exactly; raise :class:`JsonTextError` with the reason otherwise."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JsonTextError(f"not valid UTF-8 at byte {exc.start}") from None
    else:
        text = data
    try:
        start = _WHITESPACE.match(text, 0).end()  # type: ignore[union-attr]  # the pattern matches the empty string
        value, end = _DECODER.raw_decode(text, start)
        end = _WHITESPACE.match(text, end).end()  # type: ignore[union-attr]
    except RecursionError:
        raise JsonTextError(f"nested deeper than {MAX_DEPTH} levels") from None
    except json.JSONDecodeError as exc:
        raise JsonTextError(f"not valid JSON: {exc}") from None
    except ValueError as exc:  # an integer with more digits than Python converts, a refused constant
        if isinstance(exc, JsonTextError):
            raise
        raise JsonTextError(f"not valid JSON: {exc}") from None
    if end != len(text):
        raise JsonTextError(f"not valid JSON: extra data at character {end}")
    if _depth_exceeds(value, MAX_DEPTH):
        raise JsonTextError(f"nested deeper than {MAX_DEPTH} levels")
    return value


def _depth_exceeds(value: Any, limit: int) -> bool:
    """True when arrays/objects nest deeper than ``limit``; iterative, so it never recurses itself."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def load_object(raw: bytes | None) -> dict[str, Any] | None:
    """A record read back as a JSON object; None for an absent, unreadable or non-object value (reports skip it)."""
    if raw is None:
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def dumps_kept(value: Any) -> bytes:
    """``orjson.dumps(value)`` right-sized, for bytes kept in memory for a while.

    orjson (3.12 and later) returns its output in a buffer of at least 4 KiB however short the JSON, and never
    shrinks it: a million kept records of 200 bytes hold 4 GB. The copy costs a fraction of a microsecond.
    """
    return bytes(memoryview(orjson.dumps(value)))
