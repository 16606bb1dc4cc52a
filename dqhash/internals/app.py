"""The Faust app class dqhash runs: Faust's own, consuming through dqhash's transport on every scheme."""

from __future__ import annotations

from typing import Any

import faust

from dqhash.internals import transport


class App(faust.App):
    """Consumes through ``dqhash.internals.transport`` on ``kafka://`` and ``aiokafka://`` (other schemes: their
    registered transport, e.g. ``tansu://`` → ``dqhash.internals.tansu``, built on the same fix)."""

    #: what the runtime was built with; the worker reads its own settings here (``dqhash.runtime``)
    dqhash_settings: Any = None

    def _new_transport(self) -> Any:
        url = self.conf.broker_consumer[0]
        if url.scheme in ("kafka", "aiokafka"):
            return transport.Transport(self.conf.broker_consumer, self)
        return super()._new_transport()
