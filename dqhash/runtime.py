"""The wiring root: settings → one runtime (the Faust app, metrics, outputs, tables, agents, views).

Everything a worker runs is built here, once, from a :class:`~dqhash.settings.Settings`, and handed down:
the agents (``dqhash.agents``), tables (``dqhash.tables``) and views take the runtime as an argument and
never import it back. ``dqhash.app`` builds one from the environment for ``faust -A dqhash.app worker``;
a test builds its own from the settings it wants.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any

import faust

from dqhash.agents import Outputs
from dqhash.internals.app import App
from dqhash.kafka.security import faust_credentials
from dqhash.ops.dogstatsd import Metrics
from dqhash.ops.memory import trimmer
from dqhash.settings import Settings

#: how often a worker hands its batches' metric tallies to the DogStatsD client, which sends them within 0.3 s;
#: the agent aggregates counters over 10 s, so a second's delay shows nowhere, and it spares a busy worker a
#: line per (status, table) on every batch (docs/performance.md)
METRICS_HAND_OVER_S = 1.0


@dataclass
class Runtime:
    settings: Settings
    app: faust.App
    metrics: Metrics
    outputs: Outputs
    #: what the roles registered, by name: the pair table, the reconciler's agents, the web views, ...
    parts: dict[str, Any] = field(default_factory=dict)


def create_app(settings: Settings) -> App:
    web_host = settings.web_host or socket.gethostname()
    app = App(
        settings.faust_app_id,
        broker=settings.broker_urls,
        store=settings.store,
        datadir=str(settings.data_dir),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.session_timeout,
        broker_heartbeat_interval=max(0.5, settings.session_timeout / 10),
        broker_commit_interval=1.0,
        producer_linger_ms=5,
        # the agents produce a batch's records per topic-partition in one record batch (dqhash.kafka.batch_sender)
        producer_max_batch_size=256 * 1024,
        web_port=settings.web_port,
        web_host=web_host,
        web_bind=settings.web_bind,
        broker_credentials=faust_credentials(settings),
        canonical_url=f"http://{web_host}:{settings.web_port}",
        web_in_thread=False,
        processing_guarantee="at_least_once",
        stream_wait_empty=False,
        Worker="dqhash.internals.worker:Worker",
        # changelog records applied a fetched chunk at a time, not one by one (dqhash.internals.recovery)
        TableManager="dqhash.internals.recovery:TableManager",
    )
    app.dqhash_settings = settings
    app.web.production_blueprints = []  # "/" is dqhash's dashboard (dqhash.agents.web), not Faust's index
    return app


def build(settings: Settings) -> Runtime:
    """The runtime of one worker, with the tables, agents and views of its role (DQHASH_ROLE)."""
    from dqhash import tables
    from dqhash.agents import cassandra_audit, cloud_reader, debezium, reconciler, status, web

    app = create_app(settings)
    # SLO: an event is classified within its window + grace, plus scheduling slack (two ticks, at least 1 s).
    metrics = Metrics(
        settings.dd_host,
        settings.dd_port,
        settings.dd_tags(),
        settings.metrics_enabled,
        on_time_ms=settings.window_ms + settings.grace_ms + max(1000, int(2_000 * settings.tick_seconds)),
        columns=settings.catalog.hashed_columns(),
        max_tables=settings.metrics_max_tables,
        hand_over_s=METRICS_HAND_OVER_S,
    )
    runtime = Runtime(settings, app, metrics, Outputs(app, settings))
    if settings.store.startswith("rocksdb"):
        from dqhash.internals import rocksdb_memory

        rocksdb_memory.install(settings.rocksdb_memory_mb)
    _healthz(runtime)
    _trim_memory(runtime)
    reconciles = settings.role in ("all", "reconciler")
    if reconciles:
        runtime.parts["pairs"] = tables.register(runtime)
        runtime.parts["reconciler"] = reconciler.register(runtime)
        runtime.parts["status"] = status.register(runtime)
        runtime.parts["web"] = web.register(runtime)
    if reconciles and settings.debezium_topics:
        runtime.parts["debezium"] = debezium.register(runtime)
    if settings.role == "producer" or (settings.role == "all" and settings.lookups):
        runtime.parts["cloud_reader"] = cloud_reader.register(runtime)
    if settings.cassandra_audit and reconciles:
        runtime.parts["cassandra_audit"] = cassandra_audit.register(runtime)
    return runtime


def _trim_memory(runtime: Runtime) -> None:
    """Every DQHASH_MALLOC_TRIM_SECONDS, freed memory goes back to the system (``ops.memory``), in every role."""
    trim = trimmer() if runtime.settings.malloc_trim_s > 0 else None
    if trim is None:
        return

    async def trim_memory() -> None:
        trim()

    runtime.app.timer(interval=runtime.settings.malloc_trim_s, name="dqhash.runtime.trim_memory")(trim_memory)
    runtime.parts["trim_memory"] = trim_memory


def _healthz(runtime: Runtime) -> None:
    app, role = runtime.app, runtime.settings.role

    @app.page("/healthz")
    async def healthz(view: Any, request: Any) -> Any:
        """Liveness for container healthchecks, in every role: the web server answers once the worker runs."""
        return view.json({"ok": True, "role": role, "rebalancing": bool(app.rebalancing)})

    @app.page("/readyz")
    async def readyz(view: Any, request: Any) -> Any:
        """Readiness (docs/web.md): 503 with the reasons while the broker is unreachable, the ownership lease has
        lapsed or an input partition is too far behind; the producer role answers liveness only."""
        collector = runtime.parts.get("status")
        ready = collector.readiness() if collector is not None else {"ready": True, "reasons": []}
        return view.json({**ready, "role": role}, status=200 if ready["ready"] else 503)
