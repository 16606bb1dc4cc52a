"""``build(Cls, (every field, ...))``: a NamedTuple made past its Python-level constructor.

A NamedTuple's ``__new__`` is a Python function, several times the cost of ``tuple.__new__``, and the
hot path builds several per record (parsed record, tracked event, pair state, step, verdict, outputs). It checks
no arity and fills no defaults: give every field, in order. ``tests/unit/core/test_fast_paths.py`` checks every kind
built this way at full length. Off the hot path, the constructors stay.
"""

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    T = TypeVar("T", bound=tuple[Any, ...])

    def build(cls: type[T], fields: Iterable[Any], /) -> T: ...
else:
    build = tuple.__new__
