"""The Faust app class dqhash runs: Faust's own, consuming through dqhash's transport on every scheme."""

from __future__ import annotations

from typing import Any

import faust

from dqhash.internals import tansu


class App(faust.App):
    """Consumes through dqhash's transport on every scheme. ``kafka://`` and ``aiokafka://`` get the same
    one as ``tansu://`` (``dqhash.internals.tansu``): a broker whose ListOffsets answer is short (the
    embedded one) would otherwise make recovery stop early and lose table values, or crash a restarted
    worker with Faust's misleading ConsistencyError. On a correct broker the check is one small fetch per
    partition at recovery, and changes nothing."""

    #: what the runtime was built with; the worker reads its own settings here (``dqhash.runtime``)
    dqhash_settings: Any = None

    def _new_transport(self) -> Any:
        url = self.conf.broker_consumer[0]
        if url.scheme in ("kafka", "aiokafka"):
            return tansu.Transport(self.conf.broker_consumer, self)
        return super()._new_transport()
