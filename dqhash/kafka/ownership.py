"""The worker's lease on the partitions it was assigned (``dqhash.core.lease``), kept by the group's heartbeats.

The consumer's thread reports every heartbeat the coordinator answered (``internals.transport``); the
checkpoint (``dqhash.delivery.checkpoint``) asks :meth:`Ownership.held` before a batch is applied or
published and before ticks are sent, and otherwise waits in :meth:`Ownership.settle`: until a heartbeat
confirms membership (the same generation, nothing was lost) or the assignment ends (revoked or replaced:
the batch is read again by whoever owns it now).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from dqhash.core.lease import Lease
from dqhash.core.timeutil import lease_clock

log = logging.getLogger(__name__)


class Ownership:
    def __init__(self, session_timeout_s: float, clock: Callable[[], float] = lease_clock) -> None:
        self.lease = Lease.for_session(session_timeout_s)
        self._clock = clock
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed: asyncio.Event | None = None
        #: the lease was found lapsed and not yet reported in the log
        self._warned = False
        #: lapses this worker waited out since start
        self.lapses = 0
        #: when (lease clock) the coordinator last answered a heartbeat, of any generation
        self.last_heartbeat: float | None = None
        #: the newest generation whose assignment was revoked (generations only grow)
        self._ended_through: int | None = None

    def attach(self, heartbeats: list) -> None:
        """Listens to the consumer's heartbeats; call from the event loop the agents run on."""
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        heartbeats.append(self._on_heartbeat)

    @property
    def attached(self) -> bool:
        return self._changed is not None

    def _on_heartbeat(self, sent_at: float, generation: int) -> None:  # in the consumer's thread
        self.last_heartbeat = sent_at
        self.lease.renewed(sent_at, generation)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        if self._changed is not None:
            self._changed.set()

    def assigned(self, generation: int) -> None:
        self.lease.assigned(self._clock(), generation)
        self._wake()

    def revoked(self) -> bool:
        """The partitions are taken away; returns whether the lease had lapsed while they were held."""
        if self.lease.generation is not None:
            self._ended_through = max(self.lease.generation, self._ended_through or self.lease.generation)
        lapsed = self.lease.revoked(self._clock())
        self._wake()
        return lapsed

    def heartbeat_age(self) -> float | None:
        """Seconds since the coordinator last answered a heartbeat (None: none answered yet)."""
        return None if self.last_heartbeat is None else max(0.0, self._clock() - self.last_heartbeat)

    @property
    def assigned_now(self) -> bool:
        return self.lease.generation is not None

    @property
    def lapsed(self) -> bool:
        return self.lease.lapsed

    def held(self) -> bool:
        if self.lease.held(self._clock()):
            self._warned = False
            return True
        return False

    async def wait_held(self) -> None:
        """Returns once the lease holds again; logs the first wait of a lapse."""
        if self.held():
            return
        self._warn_lapse()
        changed = self._changed
        while not self.held():
            if changed is None:  # not attached (no consumer group): nothing will renew it
                return
            changed.clear()
            await changed.wait()

    async def settle(self, generation: int) -> bool:
        """Whether what was done under ``generation`` may still be published: waits while the lease has lapsed,
        until a heartbeat of that generation renews it (True) or its assignment ends, revoked or replaced (False).
        """
        if not self.held():
            self._warn_lapse()
        changed = self._changed
        while True:
            if self._ended_through is not None and generation <= self._ended_through:
                return False
            if self.held():
                return self.lease.generation == generation
            if changed is None:  # not attached (no consumer group): nothing will renew it, nor revoke it
                return True
            changed.clear()
            await changed.wait()

    def _warn_lapse(self) -> None:
        if not self._warned and self.lease.generation is not None:
            self._warned = True
            self.lapses += 1
            log.warning(
                "no heartbeat answered for over %.1fs (was the worker paused?): it may have lost its partitions, "
                "so it emits nothing for them until the group coordinator confirms its membership or reassigns them",
                self.lease.duration_s,
            )
