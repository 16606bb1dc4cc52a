"""Lag and backpressure of this worker's input partitions: gauges every few seconds, and ``GET /dq/status``.

The numbers come from the consumer (each partition's high watermark, Faust's public ``Consumer.highwater``),
from what the agents processed (``Outputs.progress``) and from the agents' taps and batches; the logic is
``dqhash.ops.status``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dqhash.core.timeutil import format_ms, now_ms
from dqhash.ops.status import Health, PartitionLag, partition_lag, readiness, worker_status

if TYPE_CHECKING:
    from dqhash.runtime import Runtime

#: Seconds between two lag and backpressure reports.
STATUS_INTERVAL_S = 5.0


class StatusCollector:
    def __init__(self, runtime: Runtime) -> None:
        self.app, self.settings, self.outputs, self.metrics = (
            runtime.app,
            runtime.settings,
            runtime.outputs,
            runtime.metrics,
        )
        self.agents = runtime.parts["reconciler"]
        settings = self.settings
        self.inputs = (settings.onprem_topic, settings.cloud_topic, settings.rekey_topic)
        self.app.timer(interval=STATUS_INTERVAL_S, name=f"{__name__}.report")(self.report)

    def lags(self) -> list[PartitionLag]:
        consumer, now = self.app.consumer, now_ms()
        if consumer is None:
            return []
        progress = self.outputs.progress
        lags = []
        for tp in self.app.assignor.assigned_actives():
            if tp.topic in self.inputs:
                highwater = consumer.highwater(tp)
                lags.append(
                    partition_lag(tp.topic, tp.partition, highwater, progress.get((tp.topic, tp.partition)), now)
                )
        return lags

    def collect(self, take_batches: bool = False) -> dict[str, Any]:
        """This worker's status; ``take_batches`` starts the batch counts again (the periodic report does)."""
        agents = self.agents
        taps = {topic: (tap.size, tap.maxsize) for topic, tap in agents.taps.items()}
        batches = {
            topic: (stats.take() if take_batches else stats.view()) for topic, stats in agents.batch_stats.items()
        }
        lags = self.lags()
        return worker_status(
            str(self.app.conf.canonical_url).rstrip("/"),
            lags,
            taps,
            batches,
            agents.checkpoint.owns(),
            bool(self.app.rebalancing),
            format_ms(now_ms()),
            self.readiness(lags),
        )

    def readiness(self, lags: list[PartitionLag] | None = None) -> dict[str, Any]:
        """Whether this worker can be trusted to classify now (``GET /readyz``), and why not."""
        ownership = self.agents.checkpoint.ownership
        lags = self.lags() if lags is None else lags
        return readiness(
            Health(
                ownership.heartbeat_age() if ownership.attached else 0.0,
                ownership.lease.duration_s,
                ownership.assigned_now,
                self.agents.checkpoint.owns(),
                bool(self.app.rebalancing),
                max((lag.seconds or 0.0 for lag in lags), default=0.0),
                self.settings.ready_max_behind_s,
            )
        )

    async def report(self) -> None:
        self.metrics.check_agent()
        status = self.collect(take_batches=True)
        for lag in status["lag"]:
            self.metrics.lag(lag["topic"], lag["partition"], lag["records"], lag["seconds"])
        pressure = status["backpressure"]
        for topic, tap in pressure["taps"].items():
            self.metrics.backpressure("tap_fill", topic, tap["fill"])
        for topic, counts in pressure["batches"].items():
            self.metrics.backpressure("full_batch_share", topic, counts["full_batch_share"])


def register(runtime: Runtime) -> StatusCollector:
    return StatusCollector(runtime)
