"""How far an idle table is verified: the source's own word on what its connector has put in Kafka.

A table with no change since the reader started has no progress mark, so its "verified through" time is
unknown, and one whose stream went quiet stays at its last change. Debezium's heartbeat record cannot move it: it
carries the connector's wall-clock time and nothing of its position, and a heartbeat read from its own topic
says nothing of a change still in flight to another topic. What does say it is the replication slot. PostgreSQL
advances the slot's ``confirmed_flush_lsn`` only when the connector confirms it, and Debezium confirms a position
only once Kafka Connect has committed the offsets of everything up to it, which it does once Kafka has
acknowledged those records. The heartbeat (``heartbeat.interval.ms``) is what keeps the slot moving while the
captured tables are quiet.

So, every few seconds, the reader asks the source for its WAL end and its clock together (a **probe**: every
transaction committed before that time ends before that position), and for the slot's confirmed flush position.
Once the slot has passed a probe's position, every change committed before the probe's time is in Kafka, each in
its table's change topic; a change topic partition the reader has read and produced to the end of, by a high
watermark fetched after that moment, has then had every one of its changes committed before that time sent.
That is what a progress mark says (``core.progress``), so the partition's tables' marks move to that time.
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

#: probes kept while the slot has not passed them (one every few seconds: minutes of a stalled connector)
KEPT = 256


class LsnError(ValueError):
    """Not a PostgreSQL LSN (``16/B374D848``)."""


def parse_lsn(text: str) -> int:
    """``16/B374D848`` → its 64-bit position."""
    high, slash, low = text.strip().partition("/")
    if not slash:
        raise LsnError(f"not an LSN: {text[:40]!r}")
    try:
        return (int(high, 16) << 32) | int(low, 16)
    except ValueError:
        raise LsnError(f"not an LSN: {text[:40]!r}") from None


class Probe(NamedTuple):
    lsn: int  # the WAL end when asked: every transaction committed before ``at_ms`` ends before it
    at_ms: int  # the source's clock then, epoch ms


class KafkaThrough:
    """The newest time before which every committed change is in Kafka, as the slot has confirmed it."""

    def __init__(self, kept: int = KEPT) -> None:
        self._probes: deque[Probe] = deque(maxlen=kept)
        self.through_ms: int | None = None

    def probe(self, lsn: int, at_ms: int) -> None:
        self._probes.append(Probe(lsn, at_ms))

    def confirmed(self, flushed_lsn: int) -> int | None:
        """The slot's confirmed flush position: the time of the newest probe it has passed (the probes it passed
        are done with), or None if it has passed none since the last time."""
        passed = None
        while self._probes and self._probes[0].lsn <= flushed_lsn:
            passed = self._probes.popleft().at_ms
        if passed is not None and (self.through_ms is None or passed > self.through_ms):
            self.through_ms = passed
            return passed
        return None
