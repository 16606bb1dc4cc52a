"""A PK's part in its newest snapshot run: which sides have shown it, and when it counts as judged.

A run's judging sweep (``dqhash.core.classify.on_snapshot_complete``) gives a member the verdicts a whole-table
run alone can give; a member that could get none from it is marked judged as soon as that is known, so the sweep
passes over it.
"""

from __future__ import annotations

from typing import TypeGuard

from dqhash.core.pair_state import PENDING, Membership, Tracked
from dqhash.core.tuples import build

_JUDGED = Membership._fields.index("judged")


def judgement(member: Membership | None, tracked: Tracked | None) -> Membership | None:
    """The member judged as soon as its completed snapshot could add nothing (``on_snapshot_complete``'s
    "nothing" outcome): its on-prem row is in and no row of this run is pending. The sweep then skips the pair
    instead of writing it again only to mark it; an on-prem row of the run pending again (sent again) unmarks it.
    """
    if member is None or not member.onprem:
        return member
    judged = not pending_in_run(tracked, member)
    return member if member.judged is judged else build(Membership, (*member[:_JUDGED], judged))


def pending_in_run(tracked: Tracked | None, member: Membership) -> TypeGuard[Tracked]:
    """The tracked event is the member's on-prem row of its run, still without a verdict: what a completed run
    judges. A snapshot row that matched, being read again (re-verification), was judged already."""
    return (
        tracked is not None
        and tracked.snapshot_id == member.snapshot_id
        and tracked.status == PENDING
        and not tracked.reverify
    )


def joined(member: Membership | None, snapshot_id: str, onprem: bool, token_range: int | None) -> Membership:
    """The pk's membership once one side of ``snapshot_id`` has shown it (a newer run starts afresh)."""
    if member is None or member.snapshot_id != snapshot_id:
        return build(Membership, (snapshot_id, onprem, not onprem, token_range, False))
    _, was_onprem, was_cloud, was_range, judged = member
    if token_range is None:
        token_range = was_range
    # built with ``build``, not ``_replace``: every snapshot row joins (docs/performance.md, "Per-record constant
    # costs")
    return build(Membership, (snapshot_id, was_onprem or onprem, was_cloud or not onprem, token_range, judged))
