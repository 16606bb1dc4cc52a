"""Per-table failure caps: a table whose problems pile up is suspended instead of flooding (docs/catalog.md).

A table's cap (``failure_cap`` in the catalog) bounds its problem verdicts in the retained windows. Pairs are
spread over the partitions by their key, so each partition holds an even share of the cap, and a partition
suspends the table once the table's problems in its retained windows reach that share: the whole table is
suspended after about ``failure_cap`` problems, without the partitions agreeing on anything. The counts come
from the window records, which are exact under redelivery and failover (``WindowBook.fold``), and are rebuilt
with them on assignment; a window that expires takes its problems with it, so a table resumes by itself once
its problems age out of retention, or at once when its cap is raised.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping

from dqhash.core.catalog import Catalog
from dqhash.core.statuses import PROBLEMS
from dqhash.core.table_keys import SEPARATOR

log = logging.getLogger("dqhash.engine.reconciler")

#: the counters of problem verdicts, on time and late (``core.statuses``)
PROBLEM_COUNTERS = frozenset({*(p.value for p in PROBLEMS), *(f"LATE_{p.value}" for p in PROBLEMS)})
#: the window counter of the changes of a suspended table: counted, not compared
SUSPENDED = "SUSPENDED"


class FailureCaps:
    def __init__(self, catalog: Catalog | None, partitions: int) -> None:
        """Tables without a cap (``failure_cap`` 0) are never suspended; without a catalog, none is."""
        self.catalog, self.partitions = catalog, partitions
        self.default_table = catalog.default if catalog is not None else ""
        self.capped = catalog is not None and catalog.has_caps()
        #: table → its share of the cap in one partition (0: no cap)
        self._shares: dict[str, int] = {}
        #: partition → table → problem verdicts in the partition's retained windows
        self.problems: dict[int, Counter[str]] = {}
        #: (partition, table) pairs suspended now, so that each change is said once
        self.suspended_now: set[tuple[int, str]] = set()

    def counted(self, partition: int, counts: Mapping[str, int], sign: int = 1) -> None:
        """Window counts folded in (``sign`` 1) or expired (-1): the problems among them, per table."""
        if not self.capped:
            return
        for name, n in counts.items():
            table, sep, status = name.partition(SEPARATOR)
            if not sep:
                table, status = self.default_table, name
            if status in PROBLEM_COUNTERS and self.share(table):
                self.problems.setdefault(partition, Counter())[table] += sign * n

    def share(self, table: str) -> int:
        """The table's share of its cap in one partition; 0 when it has none."""
        share = self._shares.get(table)
        if share is None:
            spec = self.catalog.get(table) if self.catalog is not None else None
            cap = spec.failure_cap if spec is not None else 0
            share = self._shares[table] = -(-cap // self.partitions) if cap > 0 else 0
        return share

    def suspended(self, partition: int, table: str) -> bool:
        """Whether the table is suspended in this partition now; says so once when that changes."""
        if not self.capped:
            return False
        share = self.share(table)
        if not share:
            return False
        held = self.problems.get(partition)
        problems = held[table] if held is not None else 0
        now = problems >= share
        key = (partition, table)
        if now != (key in self.suspended_now):
            (self.suspended_now.add if now else self.suspended_now.discard)(key)
            if now:
                log.warning(
                    "table %s suspended in partition %d: %d problem verdicts reached its share of failure_cap "
                    "(%d of %d across %d partitions). Its changes are counted SUSPENDED and not compared until its "
                    "problems age out of retention; fix the table (see /dq/tables/%s) or raise failure_cap in the "
                    "catalog and restart",
                    table, partition, problems, share, share * self.partitions, self.partitions, table,
                )  # fmt: skip
            else:
                log.info("table %s resumed in partition %d: its problems fell below its failure cap", table, partition)
        return now

    def suspended_tables(self) -> dict[str, list[int]]:
        """table → the partitions of this worker where it is suspended."""
        out: dict[str, list[int]] = {}
        for partition, table in sorted(self.suspended_now):
            out.setdefault(table, []).append(partition)
        return out

    def forget(self, partition: int) -> None:
        self.problems.pop(partition, None)
        self.suspended_now = {(p, t) for p, t in self.suspended_now if p != partition}
