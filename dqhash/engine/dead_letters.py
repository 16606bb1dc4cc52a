"""Rejected records → the dead-letter topic, with their reason, counted in their arrival window."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from dqhash.core.input_records import Reason, Rejection
from dqhash.core.outputs import dlq_headers, named_table
from dqhash.core.records import Out
from dqhash.core.windows import WindowSpec
from dqhash.engine.effects import Effects
from dqhash.engine.ports import Clock, MetricsSink

log = logging.getLogger("dqhash.engine.reconciler")


class DeadLetters:
    def __init__(self, dlq_topic: str, windows: WindowSpec, metrics: MetricsSink, clock: Clock) -> None:
        self.dlq_topic, self.windows, self.metrics, self.clock = dlq_topic, windows, metrics, clock

    def reject(
        self,
        effects: Effects,
        rejection: Rejection,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Iterable[tuple[str, bytes]] | None,
        timestamp_ms: int | None,
    ) -> Out:
        self.metrics.dead_lettered(rejection.reason.value, topic)
        effects.count(self.windows.start(timestamp_ms or self.clock()), f"DLQ_{rejection.reason.value}")
        log.debug("dead-lettered %s[%d]@%d: %s", topic, effects.partition, effects.offset, rejection.message)
        return Out(
            self.dlq_topic,
            key,
            value if value is not None else b"",
            dlq_headers(
                rejection.reason.value,
                rejection.message,
                topic,
                effects.partition,
                effects.offset,
                headers,
                named_table(value),
            ),
        )


def processing_error(exc: BaseException) -> Rejection:
    """An unexpected error while processing one record, as the reason it is dead-lettered with."""
    return Rejection(Reason.PROCESSING_ERROR, f"{type(exc).__name__}: {exc}"[:500])
