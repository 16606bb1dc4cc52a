"""Logs an operator can read during an outage: a repeated warning once per interval with a count, and an
unreachable DogStatsD agent named once, then quiet until it answers again.

With the broker gone, aiokafka and Faust log a warning or an error per reconnect attempt and per partition:
hundreds a second, burying everything else. With no DataDog agent, the DogStatsD client logs "Error submitting
packet" every few seconds without saying it is about metrics, which reads like a Kafka failure. Both are
logging filters (the standard library's hook), so no client is patched.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

#: the loggers whose repeated warnings are limited: the Kafka client, Faust and its service library
NOISY = ("aiokafka", "faust", "mode", "kafka")


class RepeatLimiter(logging.Filter):
    """Passes a warning (or worse) of a noisy logger once per ``interval_s`` per message template; the next one
    through says how many like it were held back."""

    def __init__(
        self, interval_s: float = 10.0, prefixes: tuple[str, ...] = NOISY, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.interval_s, self.prefixes, self.clock = interval_s, prefixes, clock
        #: (logger, template) → (when one was last let through, how many were held back since)
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or not record.name.startswith(self.prefixes):
            return True
        key = (record.name, str(record.msg))
        now = self.clock()
        seen = self._seen.get(key)
        if seen is not None and now - seen[0] < self.interval_s:
            self._seen[key] = (seen[0], seen[1] + 1)
            return False
        held = seen[1] if seen is not None else 0
        self._seen[key] = (now, 0)
        if held:
            record.msg = f"{record.msg} [and {held} more like it in the last {now - seen[0]:.0f} s]"  # type: ignore[index]
        return True


#: known crashes, by exception type name → what the operator should do (prepended to the crash's log record)
HINTS = {
    "ConsistencyError": (
        "dqhash: the local state in DQHASH_DATA_DIR is ahead of its changelog topic: the topics were recreated "
        "(the embedded broker keeps everything in memory, so restarting it empties them). Stop every worker, delete "
        "DQHASH_DATA_DIR (each worker's), run `dqhash topics create` and start the workers again: their state is "
        'rebuilt from the topics. docs/runbook.md, "The broker\'s topics were recreated".'
    ),
}


class KnownCrashes(logging.Filter):
    """A crash whose cause is known gets the operator's next step in front of its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        # the exception being handled, or one passed as an argument ("Crashed reason=%r", exc)
        args = record.args if isinstance(record.args, tuple) else ()
        raised = [record.exc_info[1]] if record.exc_info and record.exc_info[1] is not None else []
        for error in [*raised, *(a for a in args if isinstance(a, BaseException))]:
            hint = HINTS.get(type(error).__name__)
            if hint is not None and not str(record.msg).startswith(hint):
                record.msg = f"{hint}\n{record.msg}"
                break
        return True


def install(interval_s: float = 10.0) -> RepeatLimiter:
    """A :class:`RepeatLimiter` and :class:`KnownCrashes` on every handler of the root logger (call once logging
    is set up)."""
    limiter, crashes = RepeatLimiter(interval_s), KnownCrashes()
    for handler in logging.getLogger().handlers:
        handler.addFilter(limiter)
        handler.addFilter(crashes)
    return limiter


class AgentUnreachable(logging.Filter):
    """On the DogStatsD client's logger: its first "Error submitting packet" becomes one line naming DogStatsD,
    its address and the settings to check; the rest are dropped until :meth:`check` finds it quiet again."""

    PACKET_ERROR = "Error submitting packet"

    def __init__(self, address: str, quiet_s: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.address, self.quiet_s, self.clock = address, quiet_s, clock
        self.failing = False
        self.dropped = 0
        self._last_error = 0.0

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith(self.PACKET_ERROR):
            return True
        self._last_error = self.clock()
        if self.failing:
            self.dropped += 1
            return False
        self.failing = True
        error = record.args[0] if isinstance(record.args, tuple) and record.args else "unknown error"
        record.msg = (
            f"DogStatsD at {self.address} does not answer ({error}): metrics are dropped until it does. Check "
            "DD_AGENT_HOST and DD_DOGSTATSD_PORT, or set DQHASH_METRICS_ENABLED=false to run without DataDog"
        )
        record.args = ()
        return True

    def check(self, log: logging.Logger) -> None:
        """Call now and then: says once that the agent answers again after ``quiet_s`` without an error."""
        if self.failing and self.clock() - self._last_error >= self.quiet_s:
            log.info(
                "DogStatsD at %s: no send error for %.0f s, metrics flow again (%d error(s) not logged)",
                self.address,
                self.quiet_s,
                self.dropped,
            )
            self.failing, self.dropped = False, 0
