"""The connector's replication slot in PostgreSQL: how far it has confirmed what it put in Kafka (``core.idle_time``).

Two questions, asked in order on one connection: the source's clock, then its WAL insert position (so every
transaction committed before that time ends before that position), and the slot's ``confirmed_flush_lsn``. The
connection is made once and kept; a failure says what to check, and the next question connects again.
"""

from __future__ import annotations

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import SQLAlchemyError

from dqhash.core.idle_time import parse_lsn
from dqhash.source.database import SourceError, first_line, shown


class ReplicationSlot:
    def __init__(self, url: URL, slot: str) -> None:
        self.url, self.slot = url, slot
        self.engine: Engine | None = None

    def read(self) -> tuple[int, int, int | None]:
        """(the WAL insert position, the source's clock before it in epoch ms, the slot's confirmed flush position;
        None if the slot has confirmed nothing)."""
        try:
            if self.engine is None:
                self.engine = create_engine(self.url, pool_size=1, max_overflow=0, pool_pre_ping=True)
            with self.engine.connect() as connection:
                at_ms = connection.execute(
                    text("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint")
                ).scalar_one()
                lsn = connection.execute(text("SELECT pg_current_wal_insert_lsn()::text")).scalar_one()
                found = connection.execute(
                    text("SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = :slot"),
                    {"slot": self.slot},
                ).first()
        except SQLAlchemyError as exc:
            self.close()
            raise SourceError(
                f"cannot read the replication slot's position from {shown(self.url)}: "
                f"{first_line(exc)} (check DQHASH_SOURCE_URL and DQHASH_SOURCE_PASSWORD; the "
                "user needs to read pg_replication_slots)"
            ) from None
        if found is None:
            raise SourceError(
                f"{shown(self.url)} has no replication slot {self.slot!r}: set DQHASH_DEBEZIUM_SLOT to the connector's "
                "slot.name"
            )
        return parse_lsn(lsn), int(at_ms), parse_lsn(found[0]) if found[0] else None

    def close(self) -> None:
        if self.engine is not None:
            self.engine.dispose()
            self.engine = None
