"""The Faust floor for ``dqhash bench``: a bare Faust agent that only parses each input record.

Run as ``faust -A dqhash.bench.floor worker`` by the benchmark, on the same topics and broker as the
dqhash worker, so ``ratio_faust`` compares dqhash with Faust itself. It writes
``{"n", "first", "last"}`` (wall-clock seconds of the first and last record processed) to
``BENCH_FLOOR_OUT`` once it has seen ``BENCH_FLOOR_TOTAL`` records.
"""

from __future__ import annotations

import json
import os
import time

import faust
import orjson

app = faust.App(
    os.environ["BENCH_FLOOR_APP"],
    broker=os.environ["BENCH_FLOOR_BROKER"],
    store="memory://",
    datadir=os.environ["BENCH_FLOOR_DATADIR"],
    broker_session_timeout=6,
    broker_heartbeat_interval=0.6,
    consumer_auto_offset_reset="earliest",
    web_enabled=False,
    stream_wait_empty=False,
    topic_allow_declare=False,
)
TOTAL = int(os.environ["BENCH_FLOOR_TOTAL"])
state = {"n": 0, "first": None, "last": None}


def _topic(name: str):
    return app.topic(name, key_serializer="raw", value_serializer="raw")


async def _count(stream) -> None:
    async for value in stream:
        try:
            orjson.loads(value)
        except orjson.JSONDecodeError:  # the bench's bad records: the floor parses, nothing more
            pass
        now = time.time()
        state["first"] = state["first"] or now
        state["n"] += 1
        if state["n"] == TOTAL:
            state["last"] = now
            with open(os.environ["BENCH_FLOOR_OUT"], "w") as out:
                json.dump(state, out)


@app.agent(_topic(os.environ["BENCH_FLOOR_ONPREM"]), concurrency=1)
async def onprem(stream):
    await _count(stream)


@app.agent(_topic(os.environ["BENCH_FLOOR_CLOUD"]), concurrency=1)
async def cloud(stream):
    await _count(stream)
