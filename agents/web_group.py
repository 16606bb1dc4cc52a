"""What the list views gather from the whole group: every worker holds only its own partitions, so a view asks
its peers (``?local=1``) and merges their answers with its own, naming the peers that did not answer."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any, NamedTuple

import aiohttp
import orjson

from dqhash.core.timeutil import now_ms
from dqhash.core.window_keys import window_key
from dqhash.ops import access, table_views

log = logging.getLogger("dqhash.web")

PEER_TIMEOUT_S = 5.0


class Group(NamedTuple):
    """The group's answers, merged: window records, suspended tables, verified-through times, missing changes."""

    records: list[tuple[int, dict]]
    suspended: dict[str, list[int]]  # table → partitions where it is suspended at its failure cap
    failed: list[str]  # peers that did not answer
    verified: dict[str, dict[int, int | None]]  # table → partition → verified-through time (core.progress)
    shortfalls: dict[str, int]  # table → changes missing from committed transactions (core.transactions)


class GroupReads:
    """A worker's reads of the group; the web context gives it the app, settings, table and books."""

    app: Any
    settings: Any
    pairs: Any
    book: Any
    verified: Any
    catalog: Any
    recent: Any
    triage_book: Any
    parts: dict[str, Any]

    def self_url(self) -> str:
        return str(self.app.conf.canonical_url).rstrip("/")

    def peers(self) -> list[str]:
        """The other workers of the group, by their canonical URLs (from the partition assignor)."""
        try:
            hosts = self.app.router.tables_metadata().keys()
        except Exception:  # not assigned yet
            return []
        me = self.self_url()
        return sorted(h.rstrip("/") for h in hosts if h.rstrip("/") != me)

    async def gather(self, path: str) -> tuple[list[dict], list[str]]:
        """``GET path`` (with ``local=1``) asked of every peer: their JSON answers and the peers that failed."""
        headers = access.bearer(self.settings.web_token)

        async def ask(peer: str) -> dict:
            timeout = aiohttp.ClientTimeout(total=PEER_TIMEOUT_S)
            request = self.app.http_client.get(f"{peer}{path}", timeout=timeout, headers=headers)
            async with request as response:
                if response.status != 200:
                    raise RuntimeError(f"{peer} answered {response.status}")
                answer: dict = orjson.loads(await response.read())
                return answer

        peers = self.peers()
        results = await asyncio.gather(*(ask(p) for p in peers), return_exceptions=True)
        answers, failed = [], []
        for peer, result in zip(peers, results):
            if isinstance(result, BaseException):
                log.warning("peer %s did not answer %s: %s", peer, path, result)
                failed.append(peer)
            else:
                answers.append(result)
        return answers, failed

    async def group_windows(self, local: list[tuple[int, dict]]) -> Group:
        """What every worker answers for its partitions (this one's ``local`` windows and its peers'), merged."""
        answers, failed = await self.gather("/dq/windows?local=1")
        suspended = self.book.caps.suspended_tables()
        verified = self.local_verified()
        shortfalls = Counter(self.local_shortfalls())
        for answer in answers:
            shortfalls.update(answer.get("shortfalls", {}))
            for table, partitions in answer.get("suspended", {}).items():
                suspended[table] = sorted({*suspended.get(table, ()), *partitions})
            for table, times in answer.get("verified", {}).items():
                verified.setdefault(table, {}).update({int(p): t for p, t in times.items()})
        records = [*local, *((start, window) for answer in answers for start, window in answer["items"])]
        return Group(records, suspended, failed, verified, dict(shortfalls))

    def local_shortfalls(self) -> dict[str, int]:
        """table → changes this worker's Debezium reader found missing from committed transactions."""
        reader = self.parts.get("debezium_reader")
        return dict(reader.shortfalls) if reader is not None else {}

    def local_verified(self) -> dict[str, dict[int, int | None]]:
        """table → partition → its verified-through time there, for this worker's partitions (``core.progress``)."""
        book = self.verified
        times: dict[str, dict[int, int | None]] = {}
        for partition in sorted(book.partitions()):
            for table, through in book.through(partition).items():
                times.setdefault(table, {})[partition] = through
        return times

    async def group_tables(self, table: str | None = None) -> tuple[list[dict], list[tuple[int, dict]], list[str]]:
        """Every table's row (``ops.table_views``), the group's window records they come from, and the peers that
        did not answer; the problems counted are ``table``'s only, when one is named."""
        group = await self.group_windows(self.local_windows())
        problems = self.triage_book.annotate(list(self.recent.problems))
        if table is not None:
            problems = [p for p in problems if p.get("table") == table]
        rows = table_views.table_rows(group.records, problems, self.catalog, self.settings.window_ms, group.suspended)
        table_views.add_verified(rows, group.verified, self.settings.partitions, now_ms())
        for row in rows:  # changes committed in a transaction that never reached dqhash (core.transactions)
            row["missing_changes"] = group.shortfalls.get(row["table"], 0)
        return rows, group.records, group.failed

    def local_windows(self) -> list[tuple[int, dict]]:
        """(window start, window record) for every window of this worker's partitions."""
        records = []
        book, pairs = self.book, self.pairs
        for partition in sorted(book.partitions()):
            for start in book.starts(partition):
                raw = pairs.get(window_key(partition, start))
                if raw is not None:
                    records.append((start, orjson.loads(raw)))
        return records
