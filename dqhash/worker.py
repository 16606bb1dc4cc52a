"""The Faust worker class dqhash runs (``faust -A dqhash.app worker``), with a bounded shutdown.

Faust stops gracefully on SIGTERM: agents finish their record, offsets are
committed, the producer and DogStatsD buffers are flushed. When the broker
is gone, that flush and commit can wait forever, and an orchestrator's
SIGKILL would follow anyway. So the signal also arms a watchdog: after
DQHASH_SHUTDOWN_SECONDS the process exits (code 75, "try again") and says so.
Nothing is lost: records whose offsets were not committed are redelivered to
whichever worker owns their partition next, and their outputs are idempotent.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading

import faust

log = logging.getLogger("dqhash.worker")

#: Exit code of a shutdown cut short by the watchdog (EX_TEMPFAIL).
EXIT_SHUTDOWN_TIMEOUT = 75


class Worker(faust.Worker):
    def _setup_spinner_handler(self, logger: logging.Logger, level: int) -> None:
        """No terminal spinner: Faust's sets the root logger to DEBUG for it (at -l warn), and building a
        debug record per produced message cost ~5 % of a busy worker's CPU (py-spy, ``dqhash bench``)."""

    def _schedule_shutdown(self, signum: signal.Signals) -> None:
        if not self._signal_stop_time:
            _arm_watchdog(_shutdown_seconds())
        super()._schedule_shutdown(signum)


def _shutdown_seconds() -> float:
    from dqhash.app import settings

    return settings.shutdown_seconds


def _arm_watchdog(seconds: float) -> None:
    def expire() -> None:
        message = (f"dqhash: shutdown did not finish within {seconds:g} s (DQHASH_SHUTDOWN_SECONDS); exiting now. "
                   "Records not committed yet are redelivered to the next owner of their partitions.")
        log.error(message)
        print(message, file=sys.stderr, flush=True)
        os._exit(EXIT_SHUTDOWN_TIMEOUT)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
