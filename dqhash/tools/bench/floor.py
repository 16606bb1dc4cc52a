"""The Faust floor for ``dqhash bench``: a bare Faust agent that only parses each input record.

Run as ``faust -A dqhash.tools.bench.floor worker`` by the benchmark, on the same topics and broker as the
dqhash worker, so ``ratio_faust`` compares dqhash with Faust itself. It writes
``{"n", "first", "last"}`` (wall-clock seconds of the first and last record processed) to
``BENCH_FLOOR_OUT`` once it has seen ``BENCH_FLOOR_TOTAL`` records.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from typing import Any

import faust
import orjson


def build(env: Mapping[str, str]) -> faust.App:
    """The floor's app, from the ``BENCH_FLOOR_*`` variables the benchmark sets."""
    app = faust.App(
        env["BENCH_FLOOR_APP"],
        broker=env["BENCH_FLOOR_BROKER"],
        store="memory://",
        datadir=env["BENCH_FLOOR_DATADIR"],
        broker_session_timeout=6,
        broker_heartbeat_interval=0.6,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        stream_wait_empty=False,
        topic_allow_declare=False,
    )
    total, out_path = int(env["BENCH_FLOOR_TOTAL"]), env["BENCH_FLOOR_OUT"]
    state: dict[str, Any] = {"n": 0, "first": None, "last": None}

    def topic(name: str) -> Any:
        return app.topic(name, key_serializer="raw", value_serializer="raw")

    async def count(stream: Any) -> None:
        async for value in stream:
            try:
                orjson.loads(value)
            except orjson.JSONDecodeError:  # the bench's bad records: the floor parses, nothing more
                pass
            now = time.time()
            state["first"] = state["first"] or now
            state["n"] += 1
            if state["n"] == total:
                state["last"] = now
                with open(out_path, "w") as out:
                    json.dump(state, out)

    app.agent(topic(env["BENCH_FLOOR_ONPREM"]), name="floor.onprem", concurrency=1)(count)
    app.agent(topic(env["BENCH_FLOOR_CLOUD"]), name="floor.cloud", concurrency=1)(count)
    return app


def __getattr__(name: str) -> Any:
    """``app`` for ``faust -A``, built on first access: importing the module builds nothing."""
    if name == "app":
        app = globals()["app"] = build(os.environ)
        return app
    raise AttributeError(name)
