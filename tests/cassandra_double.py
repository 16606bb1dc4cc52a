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


class Prepared:
    def __init__(self, query: str) -> None:
        self.query_string = query
        self.consistency_level = None
        self.is_idempotent = False

    def bind(self, values):
        return Bound(self, tuple(values))


@dataclass
class Bound:
    prepared: Prepared
    values: tuple


class ResponseFuture:
    """Callbacks run on a separate thread, like the driver's IO thread."""

    def __init__(self, outcome, delay_s: float) -> None:
        self.outcome, self.delay_s = outcome, delay_s

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

    def __post_init__(self) -> None:
        self.prepared: list[Prepared] = []
        self.schema: list[str] = []
        self.writes: list[tuple[str, tuple]] = []
        self.executed: list[tuple] = []
        self.execute_kwargs: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        table = Table(
            {n: Column(n, t) for n, t in self.columns.items()}, [Column(n, self.columns[n]) for n in self.key]
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

    def execute_async(self, bound: Bound, timeout=None, execution_profile=None):
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.executed.append(bound.values)
        self.execute_kwargs.append({"timeout": timeout})
        pending = self.failures.get(bound.values)
        if self.fail_next:
            outcome = self.fail_next.pop(0)
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

        return Tracked(outcome, self.delay_s)


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
