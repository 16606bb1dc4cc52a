"""A stand-in for a cassandra-driver Session, speaking the driver's API.

It implements what dqhash uses — ``prepare`` returning a statement with
``bind``/``consistency_level``/``is_idempotent``, ``execute_async`` returning a
ResponseFuture-like object whose callbacks fire from another thread (as the
driver's event loop thread does), ``cluster.metadata.keyspaces[ks].tables[t]``
with ``columns``/``primary_key`` — and raises the driver's own exception types.
"""

from __future__ import annotations

import threading
from collections import namedtuple
from dataclasses import dataclass, field

from cassandra import InvalidRequest, OperationTimedOut, ReadTimeout, Unavailable


@dataclass
class Column:
    name: str
    cql_type: str


@dataclass
class Table:
    columns: dict
    primary_key: list
    partition_key: list = field(default_factory=list)


class Prepared:
    def __init__(self, query: str) -> None:
        self.query_string = query
        self.consistency_level = None
        self.is_idempotent = False
        self.fetch_size = None

    def bind(self, values):
        return Bound(self, tuple(values))


@dataclass
class Bound:
    prepared: Prepared
    values: tuple


class ResponseFuture:
    """Callbacks run on a separate thread, like the driver's IO thread."""

    def __init__(self, outcome, delay_s: float, paging_state=None) -> None:
        self.outcome, self.delay_s = outcome, delay_s
        self._next_page = paging_state

    @property
    def has_more_pages(self) -> bool:
        return self._next_page is not None

    def result(self):
        """Like the driver's: once the page is in, a ResultSet whose ``paging_state`` names the next page."""
        return type("ResultSet", (), {"paging_state": self._next_page, "current_rows": self.outcome})()

    def add_callbacks(self, callback, errback):
        def fire():
            if isinstance(self.outcome, BaseException):
                errback(self.outcome)
            else:
                callback(self.outcome)

        threading.Timer(self.delay_s, fire).start()


@dataclass
class FakeSession:
    keyspace: str
    table: str
    columns: dict  # name -> cql type, in table order
    key: list  # primary key column names
    rows: dict = field(default_factory=dict)  # key tuple -> row dict
    failures: dict = field(default_factory=dict)  # key tuple -> list of exceptions to raise first
    delay_s: float = 0.001
    named_tuple_rows: bool = False
    fail_next: list = field(default_factory=list)  # exceptions for the next executions, whatever the key
    partition_key: list | None = None  # partition key columns (default: the whole primary key)
    types: dict = field(default_factory=dict)  # column -> CQL type for the token of a row (default text)

    def __post_init__(self) -> None:
        self.prepared: list[Prepared] = []
        self.schema: list[str] = []
        self.writes: list[tuple[str, tuple]] = []
        self.executed: list[tuple] = []
        self.execute_kwargs: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self.partition_key = self.partition_key or list(self.key)
        table = Table(
            {n: Column(n, t) for n, t in self.columns.items()},
            [Column(n, self.columns[n]) for n in self.key],
            [Column(n, self.columns[n]) for n in self.partition_key],
        )
        metadata = type("Metadata", (), {"keyspaces": {self.keyspace: type("KS", (), {"tables": {self.table: table}})}})
        self.cluster = type("Cluster", (), {"metadata": metadata, "shutdown": lambda self: None})()

    def prepare(self, query: str) -> Prepared:
        statement = Prepared(query)
        self.prepared.append(statement)
        return statement

    def execute(self, statement: str):
        self.schema.append(statement)
        return []

    def token_rows(self, start: int, end: int) -> list[dict]:
        """The rows whose token is in (start, end], in token order, as a range query returns them."""
        from dqhash.cloud.tokens import token_of

        picked = [(token_of(row, self.partition_key, self.types), row) for row in self.rows.values()]
        return [dict(row) for token, row in sorted(picked, key=lambda p: p[0]) if start < token <= end]

    def execute_async(self, bound: Bound, timeout=None, execution_profile=None, paging_state=None):
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.executed.append(bound.values)
        self.execute_kwargs.append({"timeout": timeout, "paging_state": paging_state})
        try:
            pending = self.failures.get(bound.values)
        except TypeError:  # a list value (a list<text> column): not a point read's key, so no planned failure
            pending = None
        next_page = None
        if self.fail_next:
            outcome = self.fail_next.pop(0)
        elif "token(" in bound.prepared.query_string:
            rows = self.token_rows(*bound.values)
            first = paging_state or 0
            size = bound.prepared.fetch_size or 5000
            outcome = rows[first : first + size]
            next_page = first + size if first + size < len(rows) else None
        elif pending:
            outcome = pending.pop(0)
        elif bound.prepared.query_string.startswith("INSERT"):
            self.writes.append((bound.prepared.query_string, bound.values))
            outcome = []
        else:
            row = self.rows.get(bound.values)
            if row is None:
                outcome = []
            elif self.named_tuple_rows:
                outcome = [namedtuple("Row", row)(**row)]
            else:
                outcome = [dict(row)]
        session = self

        class Tracked(ResponseFuture):
            def add_callbacks(inner, callback, errback):
                def done(result):
                    with session._lock:
                        session.in_flight -= 1
                    callback(result)

                def failed(exc):
                    with session._lock:
                        session.in_flight -= 1
                    errback(exc)

                ResponseFuture.add_callbacks(inner, done, failed)

        return Tracked(outcome, self.delay_s, next_page)


def timeout() -> OperationTimedOut:
    return OperationTimedOut("client timeout")


def read_timeout() -> ReadTimeout:
    return ReadTimeout(
        "Operation timed out - received only 1 responses.", consistency=6, required_responses=2, received_responses=1
    )


def unavailable() -> Unavailable:
    return Unavailable(
        "Cannot achieve consistency level LOCAL_QUORUM", consistency=6, required_replicas=2, alive_replicas=1
    )


def invalid() -> InvalidRequest:
    return InvalidRequest("Undefined column name")
