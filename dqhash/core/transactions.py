"""Transaction completeness: every change a committed transaction made to a table reached dqhash.

With ``provide.transaction.metadata=true`` Debezium writes each transaction's BEGIN and END to
``<topic.prefix>.transaction``; an END counts the transaction's changes per table (``data_collections``), and
each change names its transaction (``transaction.id``). A table's change topic is in commit order, and so are the
ENDs, so once a table's stream shows a change of a transaction that ended *after* T, every change it had from T
has been read: if fewer were read than T's END counts, the rest never arrived. That is a shortfall, known before
it would turn into verdicts that never come (docs/debezium.md, "Transaction completeness").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from dqhash.core.jsontext import load_object

#: changes' (transaction, table) counts kept waiting for their END, at most (see ``Completeness._bound``)
KEPT = 100_000
#: ENDs kept waiting per table for its stream to pass them; the ENDs also name tables this reader never reads
WAITING_PER_TABLE = 1_000


class TransactionEvent(NamedTuple):
    status: str  # BEGIN or END
    id: str
    counts: dict[str, int]  # table → its changes in the transaction (END only)


class Shortfall(NamedTuple):
    table: str
    transaction: str
    expected: int
    seen: int


def read_transaction(doc: Mapping[str, Any]) -> TransactionEvent | None:
    """A record of the transaction topic (BEGIN / END), or None when ``doc`` is not one."""
    status, tx = doc.get("status"), doc.get("id")
    if status not in ("BEGIN", "END") or not isinstance(tx, str) or "op" in doc:
        return None
    counts = {}
    for entry in doc.get("data_collections") or ():
        if isinstance(entry, dict) and isinstance(entry.get("data_collection"), str):
            count = entry.get("event_count")
            counts[entry["data_collection"]] = count if type(count) is int else 0
    return TransactionEvent(status, tx, counts)


class Completeness:
    """Counts each (transaction, table)'s changes read, and judges them against the transactions' ENDs."""

    def __init__(self, kept: int = KEPT) -> None:
        self.kept = kept
        self._order: dict[str, int] = {}  # transaction → its place among the ENDs read (the latest ``kept``)
        self._ends = 0
        self._expected: dict[str, dict[str, int]] = {}  # table → transaction → the END's count, not yet judged
        self._seen: dict[tuple[str, str], int] = {}  # (transaction, table) → changes read
        self._reached: dict[str, int] = {}  # table → the latest END place its stream has shown a change of
        self._unplaced: dict[str, set[str]] = {}  # transaction whose END is not read yet → tables with its changes
        #: set when more than ``kept`` counts waited: no judging from then on (``_bound``)
        self.stopped = False

    def change(self, table: str, transaction: str | None) -> list[Shortfall]:
        """A change of ``table`` in ``transaction`` was read (in the table's commit order)."""
        if transaction is None or self.stopped:
            return []
        key = (transaction, table)
        self._seen[key] = self._seen.get(key, 0) + 1
        place = self._order.get(transaction)
        if place is None:
            self._unplaced.setdefault(transaction, set()).add(table)
            self._bound()
            return []
        return self._reached_place(table, place)

    def ended(self, event: TransactionEvent) -> list[Shortfall]:
        """A transaction's END: its counts wait until each table's stream is past it."""
        if event.status != "END" or event.id in self._order or self.stopped:
            return []
        place = self._order[event.id] = self._ends = self._ends + 1
        if len(self._order) > self.kept:  # the oldest ENDs' places: every table is long past them
            self._order.pop(next(iter(self._order)))
        for table, count in event.counts.items():
            waiting = self._expected.setdefault(table, {})
            waiting[event.id] = count
            if len(waiting) > WAITING_PER_TABLE:  # a table this reader does not read, or whose stream stopped:
                waiting.pop(next(iter(waiting)))  # its oldest END is never judged (no shortfall made up)
        found: list[Shortfall] = []
        for table in self._unplaced.pop(event.id, ()):
            found += self._reached_place(table, place)
        return found

    def _reached_place(self, table: str, place: int) -> list[Shortfall]:
        if place <= self._reached.get(table, -1):
            return []
        self._reached[table] = place
        waiting = self._expected.get(table, {})
        found = []
        for transaction in [t for t in waiting if self._order.get(t, -1) < place]:
            expected, seen = waiting.pop(transaction), self._seen.pop((transaction, table), 0)
            if seen < expected:
                found.append(Shortfall(table, transaction, expected, seen))
        return found

    def _bound(self) -> None:
        """Past ``kept`` changes waiting for their transaction's END (the transaction topic not read, or far
        behind), completeness stops judging rather than judge on counts it had to drop: it never makes up a
        shortfall. ``stopped`` says so."""
        if len(self._seen) > self.kept or len(self._unplaced) > self.kept:
            self.stopped = True
            self._seen.clear()
            self._unplaced.clear()
            self._expected.clear()


def shortfall_problems(records: list[bytes | None], table: str | None = None, most: int = 20) -> list[str]:
    """``dqhash report``'s problem lines for the metrics topic's ``completeness`` records (``table``'s only, when one
    is named): each names the table and the transaction; past ``most``, one line counts the rest."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for raw in records:
        record = load_object(raw)
        if record is None or record.get("type") != "completeness":
            continue
        if table is None or record.get("table") == table:
            found[str(record.get("table")), str(record.get("transaction"))] = record
    lines = [
        f"table {t}: transaction {tx} committed {r.get('expected')} change(s) to it and {r.get('seen')} reached "
        f"dqhash ({r.get('missing')} missing)"
        for (t, tx), r in sorted(found.items())
    ]
    return lines[:most] + ([f"{len(lines) - most} more transactions with changes missing"] if len(lines) > most else [])
