"""Tumbling windows on event time, and the deadline each on-prem event gets."""

from __future__ import annotations

from typing import NamedTuple


class WindowSpec(NamedTuple):
    """Window length and grace period, in milliseconds."""

    size_ms: int = 60_000
    grace_ms: int = 30_000

    def start(self, event_ts: int) -> int:
        return event_ts - event_ts % self.size_ms

    def end(self, event_ts: int) -> int:
        return self.start(event_ts) + self.size_ms

    def deadline(self, event_ts: int, arrived_ms: int) -> int:
        """When a still-unconfirmed event becomes MISSING_CLOUD.

        Window end + grace, but never earlier than arrival + grace: a replay or
        a backfill of old events must get its full grace period too, or every
        backfilled row would be declared missing on arrival.
        """
        return max(self.end(event_ts), arrived_ms) + self.grace_ms
