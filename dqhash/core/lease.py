"""Ownership of partitions is a lease, not a fact.

A consumer-group member owns its partitions only while the group coordinator still counts it as a member.
The coordinator drops a member whose heartbeats stop for a session timeout, and another member takes over;
a worker frozen that long (a GC pause, a VM live migration, SIGSTOP) wakes up believing it still owns them,
and its timers may fire before its heartbeat learns otherwise. So a worker trusts ownership only until a
fixed time after the *send* time of its last heartbeat the coordinator answered (the coordinator received it
no earlier, so it counts the member until at least that plus the session timeout), on a clock that keeps
running while the process is stopped. Nothing about the partitions is emitted outside the lease.

A lapse (a stretch of time with no valid lease) is remembered: state the worker applied but may not have
published, or published after a new owner took over, must not be trusted once the partitions come back.
A heartbeat answered under the generation the partitions were assigned in proves that no rebalance took
place meanwhile, so no other member owned them: the lapse is forgiven.
"""

from __future__ import annotations

#: the share of the session timeout a lease lasts: the rest is margin for clock rates and request latency
LEASE_SHARE_OF_SESSION = 0.6


class Lease:
    def __init__(self, duration_s: float) -> None:
        if duration_s <= 0:
            raise ValueError(f"a lease must last a positive time, got {duration_s}")
        self.duration_s = duration_s
        self._valid_until: float | None = None
        #: the generation of the assignment the lease covers
        self.generation: int | None = None
        #: the lease ran out at some moment since the assignment (and no heartbeat of that generation forgave it)
        self.lapsed = False

    @classmethod
    def for_session(cls, session_timeout_s: float) -> Lease:
        return cls(session_timeout_s * LEASE_SHARE_OF_SESSION)

    def assigned(self, now: float, generation: int) -> None:
        """The coordinator has just handed out an assignment under ``generation``: a fresh lease."""
        self.held(now)  # a lapse before the assignment is seen before the new lease starts
        self.generation = generation
        self._valid_until = now + self.duration_s

    def renewed(self, sent_at: float, generation: int) -> None:
        """A heartbeat sent at ``sent_at`` under ``generation`` was answered without error."""
        if self._valid_until is None or generation != self.generation:
            return  # not the assignment this lease covers: the coordinator's rebalance decides
        if sent_at >= self._valid_until:
            self.lapsed = False  # the same generation, still a member: no one else owned the partitions
        self._valid_until = max(self._valid_until, sent_at + self.duration_s)

    def held(self, now: float) -> bool:
        valid_until = self._valid_until
        if valid_until is None:
            return False
        if now >= valid_until:
            self.lapsed = True
            return False
        return True

    def revoked(self, now: float) -> bool:
        """The partitions were taken away: no lease until the next assignment. Returns whether it had lapsed."""
        self.held(now)
        lapsed = self.lapsed
        self._valid_until, self.generation, self.lapsed = None, None, False
        return lapsed
