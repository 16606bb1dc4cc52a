"""The Faust app: ``faust -A dqhash.app worker -l info``.

Settings come from the environment (see dqhash/settings.py). Importing this
module registers the tables (dqhash.tables) and agents (dqhash.agents).
"""

from __future__ import annotations

import socket
import sys

import faust

from dqhash import settings as settings_module
from dqhash import transport
from dqhash.metrics import Metrics
from dqhash.settings import Settings, SettingsError


class App(faust.App):
    """Consumes through ``dqhash.transport`` on ``kafka://`` and ``aiokafka://`` (other schemes: their registered
    transport, e.g. ``tansu://`` → ``dqhash.tansu``, built on the same fix)."""

    def _new_transport(self):
        url = self.conf.broker_consumer[0]
        if url.scheme in ("kafka", "aiokafka"):
            return transport.Transport(self.conf.broker_consumer, self)
        return super()._new_transport()


def create_app(settings: Settings) -> faust.App:
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
        # the agents produce a batch's records per topic-partition in one record batch (dqhash.batchsend)
        producer_max_batch_size=256 * 1024,
        web_port=settings.web_port,
        web_host=web_host,
        canonical_url=f"http://{web_host}:{settings.web_port}",
        web_in_thread=False,
        processing_guarantee="at_least_once",
        stream_wait_empty=False,
        Worker="dqhash.worker:Worker",
    )
    app.web.production_blueprints = []  # "/" is dqhash's dashboard (dqhash/agents/web.py), not Faust's index
    return app


try:
    settings = settings_module.load()
except SettingsError as exc:
    print(f"dqhash: bad configuration: {exc}", file=sys.stderr)
    raise SystemExit(2) from None

app = create_app(settings)
#: SLO: an event is classified within its window + grace, plus scheduling slack (two ticks, at least 1 s).
metrics = Metrics(settings.dd_host, settings.dd_port, settings.dd_tags(), settings.metrics_enabled,
                  on_time_ms=settings.window_ms + settings.grace_ms + max(1000, int(2_000 * settings.tick_seconds)))



@app.page("/healthz")
async def healthz(view, request):
    """Liveness for container healthchecks, in every role: the web server answers once the worker runs."""
    return view.json({"ok": True, "role": settings.role, "rebalancing": bool(app.rebalancing)})


# Registering tables and agents by role (see DQHASH_ROLE in the README).
if settings.role in ("all", "reconciler"):
    import dqhash.tables  # noqa: E402,F401
    import dqhash.agents.reconciler  # noqa: E402,F401
    import dqhash.agents.web  # noqa: E402,F401
if settings.role == "producer" or (settings.role == "all" and settings.lookups):
    import dqhash.agents.producer  # noqa: E402,F401
if settings.cassandra_audit and settings.role in ("all", "reconciler"):
    import dqhash.agents.audit  # noqa: E402,F401
