"""A TRUNCATE as the DELETE of every row changed shortly before it, so none of their verdicts is a false alarm.

A truncate names no key. Its run (``core.debezium_runs``) proves the cloud table empty once scanned; but a
change committed just before it may still wait for its cloud read when the cloud has truncated too, and would
read "not found": MISSING_CLOUD for a row that is gone on both sides. The reader reads each table's stream in
commit order, so it knows the keys it sent in the last while: at a truncate it sends each of them a DELETE as of
the truncate's commit time. A pending change is then SUPERSEDED by its DELETE, and a verdict already given on a
cloud read after the truncate is withdrawn (classification rows 9 and 35).

Bounded: a key is kept ``horizon_ms`` of commit time after its change (as long as a change can wait for its
verdict: the window, the grace, the lookup delay, the rechecks and the wait for an answer), and at most
``KEPT_PER_TABLE`` keys a table. A truncate after more recent changes than that is covered for the newest, and
says how many it could not cover.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any, NamedTuple

#: keys remembered per table for a truncate
KEPT_PER_TABLE = 5_000


class Recent(NamedTuple):
    key: tuple[Any, ...]  # the key values, in the catalog's key order
    commit_ts: int


class RecentKeys:
    """The keys each table's stream changed in the last ``horizon_ms`` of commit time, newest last."""

    def __init__(self, horizon_ms: int, kept_per_table: int = KEPT_PER_TABLE) -> None:
        self.horizon_ms, self.kept = horizon_ms, kept_per_table
        self._tables: dict[str, OrderedDict[str, Recent]] = {}
        #: table → keys dropped for the cap since its last truncate (a truncate cannot cover them)
        self.dropped: dict[str, int] = {}

    def note(self, table: str, pk: str, key: tuple[Any, ...], commit_ts: int) -> None:
        recent = self._tables.get(table)
        if recent is None:
            recent = self._tables[table] = OrderedDict()
        recent[pk] = Recent(key, commit_ts)
        recent.move_to_end(pk)
        while recent:
            _, oldest = next(iter(recent.items()))
            if len(recent) <= self.kept and oldest.commit_ts >= commit_ts - self.horizon_ms:
                break
            if len(recent) > self.kept:
                self.dropped[table] = self.dropped.get(table, 0) + 1
            recent.popitem(last=False)

    def truncated(self, table: str, at_ts: int) -> tuple[list[tuple[str, Recent]], int]:
        """The keys a truncate at ``at_ts`` deletes, forgotten now, and how many it could not cover."""
        recent = self._tables.pop(table, OrderedDict())
        covered = [(pk, r) for pk, r in recent.items() if r.commit_ts <= at_ts]
        for pk, r in recent.items():  # changes committed after it (a later transaction read before it) stay
            if r.commit_ts > at_ts:
                self.note(table, pk, r.key, r.commit_ts)
        return covered, self.dropped.pop(table, 0)


def delete_record(table: str, position: str, key: tuple[Any, ...], at_ts: int) -> dict[str, Any]:
    """The Topic-1 DELETE a truncate at ``position`` makes of one key: the same event however often it is read."""
    identity = f"{table}\x1f{position}\x1ft\x1f{list(key)}"
    return {
        "event_id": "dbz-" + hashlib.sha256(identity.encode()).hexdigest()[:32],
        "table": table,
        "partitionColumns": [{"type": "PK", "value": v} for v in key],
        "event_ts": at_ts,
        "action": "DELETE",
    }
