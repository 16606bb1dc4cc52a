"""``dqhash report``'s "verified through": each table's time from the metrics topic's ``verified`` records, and
the ``--verified-within`` gate a cut-over decision rests on (``core.progress``)."""

from __future__ import annotations

from typing import Any

from dqhash.core.jsontext import load_object
from dqhash.core.progress import table_through
from dqhash.core.timeutil import format_ms


def verified_tables(records: list[bytes | None], partitions: int, now_ms: int) -> dict[str, dict[str, Any]]:
    """table → its verified-through time (the oldest of its partitions' newest), age and partitions without one."""
    newest: dict[int, dict[str, Any]] = {}
    for raw in records:
        record = load_object(raw)
        if record is None or record.get("type") != "verified" or type(record.get("partition")) is not int:
            continue
        known = newest.get(record["partition"])
        if known is None or record.get("emitted_at", "") >= known.get("emitted_at", ""):
            newest[record["partition"]] = record
    by_table: dict[str, dict[int, int | None]] = {}
    for partition, record in newest.items():
        for table, entry in (record.get("tables") or {}).items():
            by_table.setdefault(table, {})[partition] = entry.get("through_ms")
    out = {}
    for table, times in sorted(by_table.items()):
        through = table_through(times, partitions)
        out[table] = {
            "verified_through": format_ms(through) if through is not None else None,
            "verified_age_s": round(max(0, now_ms - through) / 1000, 1) if through is not None else None,
            "unverified_partitions": [p for p in range(partitions) if times.get(p) is None],
        }
    return out


def verified_breaches(verified: dict[str, dict[str, Any]], tables: list[str], within_s: float) -> list[str]:
    """Each table in scope whose verified-through time is unknown or older than ``within_s`` seconds."""
    if not tables:
        return ["no table has a verified-through time: no progress mark was published in the period (docs/debezium.md)"]
    breaches = []
    for table in tables:
        entry = verified.get(table)
        if entry is None or entry["verified_through"] is None:
            missing = entry["unverified_partitions"] if entry is not None else "all"
            breaches.append(f"table {table}: no verified-through time (partitions {missing} have none)")
        elif entry["verified_age_s"] > within_s:
            breaches.append(
                f"table {table}: verified through {entry['verified_through']}, {entry['verified_age_s']:.0f} s ago, "
                f"older than {within_s:.0f} s"
            )
    return breaches
