"""The Faust worker class dqhash runs (``faust -A dqhash.app worker``), with a bounded shutdown.

Fenced here: it overrides two private hooks of ``faust.Worker`` (``_setup_spinner_handler``,
``_schedule_shutdown``) and reads ``_signal_stop_time`` (see ``dqhash.internals.symbols``).

Faust stops gracefully on SIGTERM: agents finish their record, offsets are
committed, the producer and DogStatsD buffers are flushed. When the broker
is gone, that flush and commit can wait forever, and an orchestrator's
SIGKILL would follow anyway. So the signal also arms a watchdog: after
DQHASH_SHUTDOWN_SECONDS the process exits (code 75, "try again") and says so.
Nothing is lost: records whose offsets were not committed are redelivered to
whichever worker owns their partition next, and their outputs are idempotent.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import threading

import faust

from dqhash.core import compiled_engine
from dqhash.kafka.preflight import wait_for_topics, web_port_problem
from dqhash.kafka.topics import mismatch_error
from dqhash.ops import log_limits
from dqhash.settings import Settings

log = logging.getLogger("dqhash.internals.worker")

#: Exit code of a shutdown cut short by the watchdog (EX_TEMPFAIL).
EXIT_SHUTDOWN_TIMEOUT = 75
#: Exit code of a worker refused at start (a usage error): its topics do not match DQHASH_PARTITIONS or lost their
#: compaction, or its web port is taken.
EXIT_REFUSED = 2


class Worker(faust.Worker):
    async def on_first_start(self) -> None:
        await super().on_first_start()  # logging is set up, the app and its modules are loaded
        settings = self._settings()
        log_limits.install()  # a broker outage: one line per interval and message; known crashes: a next step
        tune_garbage_collector(settings.gc_threshold)
        log.info('engine: %s (docs/performance.md, "The compiled engine")', compiled_engine.describe())
        busy = web_port_problem(settings)
        if busy is not None:
            _refuse(busy)
        wrong = await wait_for_topics(settings)
        if wrong:  # the same message as ``dqhash topics create``; nothing has started yet
            _refuse(str(mismatch_error(wrong)))

    def _setup_spinner_handler(self, logger: logging.Logger, level: int) -> None:
        """No terminal spinner: Faust's sets the root logger to DEBUG for it (at -l warn), and building a
        debug record per produced message costs a busy worker CPU for nothing (docs/performance.md)."""

    def _schedule_shutdown(self, signum: signal.Signals) -> None:
        if not self._signal_stop_time:
            _arm_watchdog(self._settings().shutdown_seconds)
        super()._schedule_shutdown(signum)

    def _settings(self) -> Settings:
        """The settings the runtime was built with (``dqhash.runtime`` puts them on the app)."""
        settings: Settings = self.app.dqhash_settings
        return settings


def _refuse(problem: str) -> None:
    """Stops the worker before anything started, with one line that says what to change (exit 2)."""
    message = f"dqhash: refusing to start: {problem}"
    log.error(message)
    print(message, file=sys.stderr, flush=True)
    raise SystemExit(EXIT_REFUSED)


def tune_garbage_collector(threshold: int) -> None:
    """Fewer young-generation collections, and none of them scanning what start-up built.

    The reconciler makes a few dozen short-lived tuples per record (inputs, parsed records, states, outputs);
    with Python's default threshold (700 allocations) the collector runs many times a second and takes a large
    share of a busy worker (docs/performance.md, "The garbage collector"). Almost nothing here is cyclic
    garbage: reference counting frees it the moment it is dropped, so the collector finds little either way. ``gc.freeze`` moves the objects alive at start-up (modules,
    Faust's app) out of every later collection.
    """
    if threshold <= 0:
        return
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(threshold, older, oldest)
    log.info(
        "garbage collector: young-generation threshold %d, %d start-up objects frozen", threshold, gc.get_freeze_count()
    )


def _arm_watchdog(seconds: float) -> None:
    def expire() -> None:
        message = (
            f"dqhash: shutdown did not finish within {seconds:g} s (DQHASH_SHUTDOWN_SECONDS); exiting now. "
            "Records not committed yet are redelivered to the next owner of their partitions."
        )
        log.error(message)
        print(message, file=sys.stderr, flush=True)
        os._exit(EXIT_SHUTDOWN_TIMEOUT)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
