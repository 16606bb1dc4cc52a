"""Columns a command is told to hash, checked against what its input really has, before anything is written.

A column named in ``--fields`` or ``--types`` that the input lacks would be hashed as null on every row: a
typo (``amout``) turns a whole export into false MISMATCHes. A key column the input lacks fails every row
one by one. So the names are compared with the CSV header, or the keys of the first JSON rows, first, and
refused in one message that names each, with the nearest name the input has.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence

#: JSON rows read ahead to learn the columns: a column absent from all of them is taken as absent
JSON_ROWS_SAMPLED = 1_000


def absent_columns(available: Iterable[str], named: Mapping[str, Sequence[str] | None], where: str) -> str | None:
    """The error for columns in ``named`` (flag → columns it names) that ``available`` lacks, or None.

    ``where`` says what was read: "the CSV header", "the first 1,000 JSON rows".
    """
    have = list(dict.fromkeys(available))
    known = set(have)
    problems = []
    for flag, columns in named.items():
        for column in dict.fromkeys(columns or ()):
            if column in known:
                continue
            near = difflib.get_close_matches(column, have, n=1, cutoff=0.6)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            problems.append(f"{flag} names {column!r}, which {where} does not have{hint}")
    if not problems:
        return None
    shown = ", ".join(have[:40]) + (f", ... ({len(have)} in all)" if len(have) > 40 else "")
    return "; ".join(problems) + f". Columns in {where}: {shown or '(none)'}"
