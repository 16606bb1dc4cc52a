"""The cloud copy in Cassandra: point reads by primary key through cassandra-driver, retried in place.

Prepared once, token- and DC-aware, never downgraded; the driver's ResponseFuture callbacks are bridged
into asyncio.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from cassandra import (
    ConsistencyLevel,
    OperationTimedOut,
    ReadFailure,
    ReadTimeout,
    Unavailable,
)
from cassandra.cluster import NoHostAvailable

from dqhash.cloud.store import LookupFailed, StoreConfigError, pk_texts

log = logging.getLogger(__name__)

#: Errors worth retrying in place: the replica set may answer next time.
RETRYABLE = (OperationTimedOut, ReadTimeout, Unavailable, ReadFailure, NoHostAvailable)


_INTEGER_CQL = {"int", "bigint", "smallint", "tinyint", "varint", "counter"}


def _typed(text: str, cql_type: str) -> Any:
    if cql_type in _INTEGER_CQL:
        try:
            return int(text)
        except ValueError:
            raise LookupFailed("INVALID_PK", f"key value {text[:40]!r} is not an integer ({cql_type})") from None
    if cql_type in ("uuid", "timeuuid"):
        from uuid import UUID

        try:
            return UUID(text)
        except ValueError:
            raise LookupFailed("INVALID_PK", f"key value {text[:40]!r} is not a uuid") from None
    return text


class CassandraStore:
    """Point reads through a prepared, idempotent statement, bridged into asyncio.

    ``session`` is a cassandra-driver Session (or anything with its API:
    ``prepare``, ``execute_async`` returning a ResponseFuture with
    ``add_callbacks``, ``cluster.metadata``). In-flight requests are bounded by a
    semaphore; timeouts and unavailability are retried with exponential backoff,
    then raise :class:`LookupFailed`. Consistency is never downgraded.
    """

    def __init__(
        self,
        session,
        keyspace: str,
        table: str,
        consistency: str = "LOCAL_QUORUM",
        timeout_s: float = 2.0,
        retries: int = 3,
        backoff_s: float = 0.1,
        max_in_flight: int = 128,
        execution_profile: Any = None,
        limit: asyncio.Semaphore | None = None,
    ) -> None:
        """``limit``: an in-flight bound shared with other tables' stores (one per producer, not per table)."""
        self.session = session
        self.keyspace, self.table = keyspace, table
        self.timeout_s, self.retries, self.backoff_s = timeout_s, retries, backoff_s
        self.execution_profile = execution_profile
        self._limit = limit or asyncio.Semaphore(max_in_flight)
        meta = table_meta(session, keyspace, table)
        self.key_columns = tuple(c.name for c in meta.primary_key)
        self._key_types = tuple(meta.columns[name].cql_type for name in self.key_columns)
        where = " AND ".join(f'"{c}" = ?' for c in self.key_columns)
        self.statement = prepared(session, f'SELECT * FROM "{keyspace}"."{table}" WHERE {where}', consistency)

    def columns(self) -> tuple[str, ...]:
        return tuple(table_meta(self.session, self.keyspace, self.table).columns)  # refreshed on schema changes

    def key_from_pk(self, pk: str) -> tuple:
        texts = pk_texts(pk, len(self.key_columns))
        return tuple(_typed(t, cql) for t, cql in zip(texts, self._key_types))

    async def fetch(self, key: Sequence[Any]) -> dict | None:
        async def read():
            async with self._limit:
                return await self._execute(key)

        try:
            rows = await retrying(read, self.retries, self.backoff_s)
        except RetriesExhausted as exc:
            unavailable = isinstance(exc.last, (Unavailable, NoHostAvailable))
            raise LookupFailed("CASSANDRA_UNAVAILABLE" if unavailable else "CASSANDRA_TIMEOUT", str(exc)) from exc
        except Exception as exc:
            raise LookupFailed("CASSANDRA_ERROR", f"{type(exc).__name__}: {exc}") from exc
        row = next(iter(rows), None)
        if row is None:
            return None
        return dict(row) if isinstance(row, dict) else row._asdict()

    def _execute(self, key: Sequence[Any]) -> asyncio.Future:
        kwargs = {"timeout": self.timeout_s}
        if self.execution_profile is not None:
            kwargs["execution_profile"] = self.execution_profile
        return bridge(self.session.execute_async(self.statement.bind(list(key)), **kwargs))

    def close(self) -> None:
        cluster = getattr(self.session, "cluster", None)
        if cluster is not None and hasattr(cluster, "shutdown"):
            cluster.shutdown()


def table_meta(session: Any, keyspace: str, table: str) -> Any:
    """The driver's metadata of the table, or a StoreConfigError naming what is missing."""
    keyspaces = session.cluster.metadata.keyspaces
    if keyspace not in keyspaces:
        raise StoreConfigError(f"keyspace {keyspace!r} not found in the cluster")
    tables = keyspaces[keyspace].tables
    if table not in tables:
        raise StoreConfigError(f"table {keyspace}.{table} not found")
    return tables[table]


def prepared(session: Any, query: str, consistency: str) -> Any:
    """A read prepared at ``consistency`` (never downgraded), idempotent: the driver may retry and speculate."""
    if consistency not in ConsistencyLevel.name_to_value:
        raise StoreConfigError(f"unknown consistency level {consistency!r}")
    statement = session.prepare(query)
    statement.consistency_level = ConsistencyLevel.name_to_value[consistency]
    statement.is_idempotent = True
    return statement


class RetriesExhausted(Exception):
    def __init__(self, attempts: int, last: Exception) -> None:
        super().__init__(f"{attempts} attempts failed; last: {type(last).__name__}: {last}")
        self.last = last


async def retrying(call: Callable[[], Awaitable[Any]], retries: int, backoff_s: float) -> Any:
    """``call()``, retried in place on the driver's transient errors with exponential backoff.

    Any other error propagates at once; consistency is never downgraded to make a retry succeed.
    """
    last: Exception | None = None
    for attempt in range(retries + 1):
        if attempt:
            await asyncio.sleep(backoff_s * 2 ** (attempt - 1))
        try:
            return await call()
        except RETRYABLE as exc:
            last = exc
            log.debug("cassandra request attempt %d failed: %r", attempt + 1, exc)
    raise RetriesExhausted(retries + 1, last)


def bridge(response) -> asyncio.Future:
    """An asyncio future for a driver ResponseFuture, whose callbacks run on the driver's IO thread."""
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    response.add_callbacks(
        callback=lambda rows: loop.call_soon_threadsafe(_settle, future, rows, None),
        errback=lambda exc: loop.call_soon_threadsafe(_settle, future, None, exc),
    )
    return future


def _settle(future: asyncio.Future, rows, exc) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(rows)


def connect_cassandra(
    contact_points: Sequence[str],
    port: int,
    local_dc: str | None,
    consistency: str,
    timeout_s: float,
    username: str | None = None,
    password: str | None = None,
    tls_ca: str | None = None,
):
    """A Session with the profile dqhash reads with: token-aware + DC-aware, dict rows."""
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy
    from cassandra.query import dict_factory

    profile = ExecutionProfile(
        load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=local_dc)),
        consistency_level=ConsistencyLevel.name_to_value[consistency],
        request_timeout=timeout_s,
        row_factory=dict_factory,
    )
    ssl_context = None
    if tls_ca:
        import ssl

        ssl_context = ssl.create_default_context(cafile=tls_ca)
    cluster = Cluster(
        list(contact_points),
        port=port,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        auth_provider=PlainTextAuthProvider(username, password) if username else None,
        ssl_context=ssl_context,
    )
    return cluster.connect()
