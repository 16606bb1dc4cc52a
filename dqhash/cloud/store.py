"""Where the cloud copy lives: the store protocol every backend implements, and its errors.

``dqhash.cloud.cassandra`` is the product (cassandra-driver); ``dqhash.cloud.sqlite`` backs the embedded
demo with the same interface. Both return a row as a dict (column → value as the driver gives it) or None
when the row does not exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import orjson


class LookupFailed(Exception):
    """A read that failed for good; ``reason`` becomes the DLQ reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class StoreConfigError(ValueError):
    """A keyspace, table or column set-up the producer cannot work with."""


class CloudStore(Protocol):
    key_columns: tuple[str, ...]

    def columns(self) -> tuple[str, ...]:
        """The table's columns as the store knows them now (schema drift shows here)."""

    async def fetch(self, key: Sequence[Any]) -> dict | None: ...

    def key_from_pk(self, pk: str) -> tuple: ...

    def close(self) -> None: ...


def pk_texts(pk: str, key_columns: int) -> list[str]:
    """Invert record_keys.canonical_pk: one column → the text; several → the JSON array."""
    if key_columns == 1:
        return [pk]
    try:
        texts = orjson.loads(pk)
    except orjson.JSONDecodeError:
        texts = None
    if not isinstance(texts, list) or len(texts) != key_columns:
        raise LookupFailed("INVALID_PK", f"pk {pk[:80]!r} does not have {key_columns} key components")
    return [str(t) for t in texts]
