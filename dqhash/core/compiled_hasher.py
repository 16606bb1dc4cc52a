"""The v2 hasher's compiled path: each column's encoder chosen once per column list, the row encoded and hashed
in C (``_fasthash.c``).

The pure-Python hasher (``hashing.RowHasher``) stays the reference. The compiled path encodes only the values
whose canonical form is plain to compute, and hands every other value (a collection, a ``float`` column, a
refused value) to the reference's own encoder, so its preimage is the reference's byte for byte and a refused
value raises the reference's error. It is built by the install where a C compiler is at hand; without one,
``AVAILABLE`` is False and the reference hashes every row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, NamedTuple

from dqhash.core.canonical import _INTEGER_BITS, _TEXT_TYPES, ColumnType, canon, encode

try:
    from dqhash.core import _fasthash  # type: ignore[attr-defined]
except ImportError:  # built without a C compiler: the reference hashes every row
    _fasthash = None

AVAILABLE = _fasthash is not None

#: the compiled encoders, by the column's declared type (``_fasthash.c``'s enum Kind, in its order); an
#: undeclared column infers its type from the value, and a type not named here is the reference's
INFER, TEXT, INT8, INT16, INT32, INT64, VARINT, DOUBLE, DECIMAL, BOOLEAN, TIMESTAMP, DATE, REFERENCE = range(13)
_INTEGER_KINDS = {8: INT8, 16: INT16, 32: INT32, 64: INT64}
_KINDS = {
    **dict.fromkeys(_TEXT_TYPES, TEXT),
    **{name: _INTEGER_KINDS[bits] for name, bits in _INTEGER_BITS.items()},
    "varint": VARINT,
    "double": DOUBLE,
    "decimal": DECIMAL,
    "boolean": BOOLEAN,
    "timestamp": TIMESTAMP,
    "date": DATE,
}


def sha256_backend(portable: bool = False) -> str | None:
    """Which SHA-256 the compiled path uses ('openssl', found at run time, or 'portable'); None when it is not
    built. ``portable`` True makes it use its own SHA-256 even where OpenSSL's is found (for the tests)."""
    if _fasthash is None:
        return None
    backend: str = _fasthash.configure(Decimal, portable)
    return backend


def kind_of(ctype: ColumnType | None) -> int:
    """The compiled encoder of a column of this declared type (None: undeclared)."""
    if ctype is None:
        return INFER
    return _KINDS.get(ctype.name, REFERENCE) if not ctype.params else REFERENCE


class RowPlan(NamedTuple):
    """One column list's hashing order, the v2 encoding of each name, and each column's encoder."""

    names: tuple[str, ...]
    encoded_names: tuple[bytes, ...]
    kinds: bytes
    reference: Callable[[int, Any], bytes]


def plan(names: Sequence[str], types: dict[str, ColumnType]) -> RowPlan:
    """The plan for rows hashed over ``names`` (already in hashing order)."""
    ctypes = [types.get(name) for name in names]

    def reference(index: int, value: Any) -> bytes:
        return encode(canon(value, ctypes[index]))

    return RowPlan(
        tuple(names),
        tuple(encode(("s", name)) for name in names),
        bytes(kind_of(ctype) for ctype in ctypes),
        reference,
    )


def hash_row(row: dict[str, Any], row_plan: RowPlan, header: bytes, digest_hex: int) -> tuple[str, dict[str, str]]:
    """The row's v2 hash and each column's digest (``digest_hex`` characters; none when 0)."""
    assert _fasthash is not None
    names, encoded_names, kinds, reference = row_plan
    result: tuple[str, dict[str, str]] = _fasthash.v2_row(
        row, names, encoded_names, kinds, reference, header, digest_hex
    )
    return result


if _fasthash is not None:
    sha256_backend()  # hands the compiled path the Decimal type it encodes
