"""What the table-inspection web views show, without the web server: input checks, shapes, paging.

The Faust pages (dqhash/agents/web.py) only fetch and route; everything a
response contains is built here and tested directly. JSON shapes are
documented in docs/web.md.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Mapping, Sequence

import orjson

from dqhash.core.catalog import Catalog
from dqhash.core.hashing import differing_columns
from dqhash.core.outputs import (
    DLQ_HEADERS,
    DLQ_MESSAGE,
    DLQ_OFFSET,
    DLQ_PARTITION,
    DLQ_REASON,
    DLQ_TOPIC,
)
from dqhash.core.pair_state import AWAITING_SNAPSHOT, PairState
from dqhash.core.table_keys import pair_key, split_key
from dqhash.core.tally import by_table, compared_and_match_rate
from dqhash.core.timeutil import format_ms

MAX_PK_CHARS = 1024
DEFAULT_LIMIT, MAX_LIMIT = 50, 500
#: Header marking a record re-injected from the DLQ (value: the DLQ id it came from).
REPLAY_HEADER = "dq.replay"


class BadRequest(ValueError):
    """Input a client must fix: answered with 400 and this message."""


def pair_key_of(pk: str, table: str | None, catalog: Catalog) -> str:
    """The pair key of ``pk`` in ``table`` (None: the default table), for a table of the catalog."""
    if table is None or table == catalog.default:
        if not catalog.default:
            raise BadRequest(f"name the table: ?table=<one of {', '.join(catalog.known()[:10])}>")
        return pk
    if catalog.get(table) is None:
        raise BadRequest(f"no table {table[:64]!r} in the catalog; known: {', '.join(catalog.known()[:10])}")
    return pair_key(table, pk, catalog.default)


def parse_pk(raw: str) -> str:
    if not raw:
        raise BadRequest("empty pk: use /dq/pairs/<pk> (a composite key is its JSON array, URL-encoded)")
    if len(raw) > MAX_PK_CHARS:
        raise BadRequest(f"pk longer than {MAX_PK_CHARS} characters")
    if any(ord(c) < 0x20 for c in raw):
        raise BadRequest("pk contains control characters")
    if raw.startswith("["):
        try:
            parts = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise BadRequest("a pk starting with '[' must be a composite key: a JSON array of texts") from None
        if not isinstance(parts, list) or not parts or not all(isinstance(p, str) for p in parts):
            raise BadRequest('a composite pk is a non-empty JSON array of texts, e.g. ["a","1"]')
    return raw


def parse_paging(query: Mapping[str, str]) -> tuple[int, int]:
    """``limit`` (1..500, default 50) and ``offset`` (>= 0, default 0) from a query string."""
    return (_int_param(query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT), _int_param(query, "offset", 0, 0, 10**9))


def _int_param(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise BadRequest(f"{name} must be between {low} and {high}, got {value}")
    return value


def page(items: Sequence, limit: int, offset: int) -> dict:
    chunk = list(items[offset : offset + limit])
    more = offset + limit < len(items)
    return {
        "items": chunk,
        "total": len(items),
        "limit": limit,
        "offset": offset,
        "next_offset": offset + limit if more else None,
    }


def pair_view(key: str, partition: int, state: PairState | None, served_by: str, default_table: str = "") -> dict:
    """Both sides of the pair ``key`` (``core.table_keys``): its table and PK apart."""
    table, pk = split_key(key, default_table)
    view: dict = {"pk": pk, "table": table, "partition": partition, "served_by": served_by, "found": state is not None}
    if state is None:
        return view
    tracked, cloud = state.tracked, state.cloud
    view["status"] = tracked.status if tracked else "CLOUD_ONLY"
    view["onprem"] = (
        None
        if tracked is None
        else {
            "event_id": tracked.event_id,
            "event_ts": format_ms(tracked.event_ts),
            "action": tracked.action,
            "hash": _hash(tracked.hash_version, tracked.hash_digest),
            "arrived_at": format_ms(tracked.arrived_ms),
            "deadline": format_ms(tracked.deadline_ms) if tracked.deadline_ms < AWAITING_SNAPSHOT else None,
            "snapshot_id": tracked.snapshot_id,
            "reverifying": tracked.reverify,
            "column_digests": tracked.column_digests,
            "decided_at_deadline": tracked.by_deadline,
            "rechecks": tracked.rechecks,
            "recheck_results": list(tracked.recheck_results),
            "awaiting_cloud_read_since": format_ms(tracked.awaiting_ms) if tracked.awaiting_ms is not None else None,
        }
    )
    view["cloud"] = (
        None
        if cloud is None
        else {
            "hash": _hash(cloud.hash_version, cloud.hash_digest),
            "row_found": cloud.hash_digest is not None,
            "cloud_ts": format_ms(cloud.cloud_ts),
            "arrived_at": format_ms(cloud.arrived_ms),
            "columns_removed": list(cloud.columns_removed),
            "snapshot_id": cloud.snapshot_id,
            "column_digests": cloud.column_digests,
        }
    )
    view["differing_columns"] = (
        differing_columns(tracked.column_digests, cloud.column_digests)
        if tracked is not None and cloud is not None and tracked.hash_digest != cloud.hash_digest
        else []
    )
    member = state.snapshot
    view["snapshot"] = (
        None
        if member is None
        else {
            "snapshot_id": member.snapshot_id,
            "onprem": member.onprem,
            "cloud": member.cloud,
            "token_range": member.token_range,
            "judged": member.judged,
        }
    )
    view["history"] = [
        {"status": status, "late": late, "event_id": event_id, "classified_at": format_ms(at), "reason": reason}
        for status, late, event_id, at, reason in reversed(state.history)
    ]
    view["updated_at"] = format_ms(state.updated_ms)
    return view


def _hash(version: str | None, digest: str | None) -> str | None:
    return f"{version}:{digest}" if digest is not None else None


def window_rows(
    windows: Iterable[tuple[int, dict]], window_ms: int, default_table: str = "", table: str | None = None
) -> list[dict]:
    """Per-partition window records (from every worker) summed per window, newest first, with the match rate:
    over every table, or of ``table`` only (``tally.by_table``)."""
    by_start: dict[int, dict] = {}
    for start, window in windows:
        row = by_start.setdefault(start, {"counts": Counter(), "partitions": 0, "closed": True})
        totals, tables = by_table(window["counts"], default_table)
        row["counts"].update(totals if table is None else tables.get(table, {}))
        row["partitions"] += 1
        row["closed"] = row["closed"] and window["closed"]
    rows = []
    for start in sorted(by_start, reverse=True):
        row = by_start[start]
        counts = dict(row["counts"])
        compared, match_rate = compared_and_match_rate(counts)
        rows.append(
            {
                "window_start": format_ms(start),
                "window_end": format_ms(start + window_ms),
                "closed": row["closed"],
                "partitions": row["partitions"],
                "counts": counts,
                "compared": compared,
                "match_rate": match_rate,
            }
        )
    return rows


class RecentOutputs:
    """The newest confirmed problems and dead letters of the whole group, bounded in memory, for the web views.

    Fed by following the repair topic (every confirmed problem, and ``repair: cancel`` when one is withdrawn) and
    the DLQ topic from a while back (``agents.web``): a restarted worker reads them again, so the views survive a
    restart and every worker answers for the group. The topics stay the record of truth.
    """

    def __init__(self, capacity: int = 1000) -> None:
        self.problems: deque[dict] = deque(maxlen=capacity)
        self.dead_letters: deque[dict] = deque(maxlen=capacity)
        self._listed: set[str] = set()
        self._dead_ids: set[str] = set()
        #: audit ids withdrawn, newest last (bounded): a record of one read again is not listed again
        self._withdrawn: dict[str, None] = {}

    def saw_repair(self, value: bytes | None) -> None:
        """A repair record: a problem to list (once per audit id, a takeover may publish it again), or the
        withdrawal of one (a newer on-prem event explained it)."""
        if value is None:
            return
        record = orjson.loads(value)
        withdrawn = record.get("withdraws")
        if withdrawn:
            if withdrawn in self._listed:
                self.problems = deque((p for p in self.problems if p["audit_id"] != withdrawn), self.problems.maxlen)
                self._listed.discard(withdrawn)
            self._withdrawn[withdrawn] = None
            if len(self._withdrawn) > (self.problems.maxlen or 0):
                del self._withdrawn[next(iter(self._withdrawn))]
            return
        audit_id = record.get("audit_id")
        if audit_id is None or audit_id in self._listed or audit_id in self._withdrawn:
            return
        if len(self.problems) == self.problems.maxlen:
            self._listed.discard(self.problems[0]["audit_id"])
        self.problems.append(record)
        self._listed.add(audit_id)

    def saw_dead_letter(self, key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes]]) -> None:
        """A DLQ record, once per id (its source coordinates: a follower that reconnects reads some again)."""
        if value is None:
            return
        entry = dlq_entry(key, value, headers)
        if entry["id"] in self._dead_ids:
            return
        if len(self.dead_letters) == self.dead_letters.maxlen:
            self._dead_ids.discard(self.dead_letters[0]["id"])
        self.dead_letters.append(entry)
        self._dead_ids.add(entry["id"])

    def find_dead_letter(self, dlq_id: str) -> dict | None:
        return next((e for e in reversed(self.dead_letters) if e["id"] == dlq_id), None)


def dlq_entry(key: bytes | None, value: bytes, headers: Sequence[tuple[str, bytes]]) -> dict:
    h = {k: v for k, v in headers}
    topic = h.get(DLQ_TOPIC, b"").decode()
    partition, offset = h.get(DLQ_PARTITION, b"-1").decode(), h.get(DLQ_OFFSET, b"-1").decode()
    return {
        "id": f"{topic}:{partition}:{offset}",
        "reason": h.get(DLQ_REASON, b"").decode(),
        "message": h.get(DLQ_MESSAGE, b"").decode(errors="replace"),
        "topic": topic,
        "partition": int(partition),
        "offset": int(offset),
        "key": key.decode(errors="replace") if key is not None else None,
        "value_preview": value[:200].decode(errors="replace"),
        "_key": key,
        "_value": value,
        "_headers": list(headers),
    }


def public(entry: dict) -> dict:
    """A DLQ entry without its raw bytes (what the JSON view shows)."""
    return {k: v for k, v in entry.items() if not k.startswith("_")}


def parse_replay_ids(body: bytes) -> list[str]:
    try:
        doc = orjson.loads(body or b"null")
    except orjson.JSONDecodeError:
        raise BadRequest('body must be JSON: {"ids": ["<topic>:<partition>:<offset>", ...]}') from None
    ids = doc.get("ids") if isinstance(doc, dict) else None
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids) or len(ids) > MAX_LIMIT:
        raise BadRequest(f'body must be {{"ids": [...]}} with 1..{MAX_LIMIT} DLQ ids as shown by GET /dq/dlq')
    return ids


def replay_target(entry: dict, onprem_topic: str, cloud_topic: str, rekey_topic: str) -> str:
    """The source topic to re-inject into: a re-keyed record goes back to its side's input topic."""
    if entry["topic"] != rekey_topic:
        return entry["topic"]
    side = dict(entry["_headers"]).get("dq.side", b"").decode()
    return onprem_topic if side == "onprem" else cloud_topic


def replay_headers(entry: dict) -> list[tuple[str, bytes]]:
    """The record's own headers, never the error headers, plus a replay marker naming the DLQ id."""
    kept = [(k, v) for k, v in entry["_headers"] if k not in DLQ_HEADERS and k not in (REPLAY_HEADER, "dq.side")]
    return [*kept, (REPLAY_HEADER, entry["id"].encode())]
