"""Ownership epochs in a changelog: state written by an owner that has been fenced never wins.

A worker frozen past its lease can still have changelog records in its producer's buffer; they reach the
broker when it thaws, after the records of the member that took over. Replayed in offset order (a
recovery, a standby, a wipe-and-recover) they would overwrite the new owner's state with older state.

So each owner of a changelog partition claims an epoch for it once it has recovered the partition: one
more than the newest epoch the partition's changelog holds. It writes a marker record with that epoch
before anything else, and stamps each of its records with the epoch in a header. Whoever replays the
changelog admits a record only if its epoch is not older than the newest epoch seen so far in that
partition: a fenced owner's late records come after the new owner's marker and are refused.

The epoch is the partition's own count, not the consumer group's generation: a broker may reset a
group's generation when the group empties, and an epoch must never go back.
Records without the header (written before epochs existed) are admitted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

#: the header carrying a changelog record's epoch, as ASCII digits
EPOCH_HEADER = "dqhash-epoch"

#: the marker's key prefix: 0xFE never occurs in UTF-8 (no PK has it) and differs from window keys' 0xFF
EPOCH_PREFIX = b"\xfe"


def epoch_key(partition: int) -> bytes:
    """Where a partition's newest epoch lives, in the table and in its changelog (one key per partition)."""
    return EPOCH_PREFIX + str(partition).encode()


def is_epoch_key(key: bytes) -> bool:
    return key[:1] == EPOCH_PREFIX


def epoch_header(epoch: int) -> tuple[str, bytes]:
    return (EPOCH_HEADER, str(epoch).encode())


def epoch_of(headers: Iterable[tuple[str, bytes]] | dict[str, bytes] | None) -> int | None:
    """The epoch a changelog record was written under; None if it carries none (or an unreadable one)."""
    if not headers:
        return None
    items = headers.items() if isinstance(headers, dict) else headers
    for name, value in items:
        if name == EPOCH_HEADER:
            try:
                return int(value)
            except (TypeError, ValueError):
                return None
    return None


def decode_epoch(raw: bytes | None) -> int:
    try:
        return int(raw) if raw else 0
    except ValueError:
        return 0


class EpochGate:
    """Per partition: the newest epoch seen in its changelog, and the epoch this worker claimed, if it owns it.

    ``stored(partition)`` reads the newest epoch a partition's local state holds (its marker key), for a
    replay that resumes from a persisted offset rather than from the start of the changelog.
    """

    def __init__(self, stored: Callable[[int], int]) -> None:
        self._stored = stored
        self._newest: dict[int, int] = {}
        self._claimed: dict[int, int] = {}
        #: records refused, per partition, since start (a fenced owner's late writes)
        self.refused: dict[int, int] = {}

    def newest(self, partition: int) -> int:
        newest = self._newest.get(partition)
        if newest is None:
            newest = self._newest[partition] = self._stored(partition)
        return newest

    def admits(self, partition: int, epoch: int | None) -> bool:
        """A replayed record: admitted unless an owner with a newer epoch has written to the partition before it."""
        if epoch is None:
            return True
        newest = self.newest(partition)
        if epoch < newest:
            self.refused[partition] = self.refused.get(partition, 0) + 1
            return False
        if epoch > newest:
            self._newest[partition] = epoch
        return True

    def claim(self, partition: int) -> int:
        """This worker owns the recovered partition: its epoch, one more than any its changelog holds."""
        epoch = self._newest[partition] = self.newest(partition) + 1
        self._claimed[partition] = epoch
        return epoch

    def claimed(self, partition: int) -> int | None:
        return self._claimed.get(partition)

    def release(self, partition: int) -> None:
        """The partition moved away: this worker writes no more under its epoch."""
        self._claimed.pop(partition, None)

    def forget(self, partition: int) -> None:
        """The partition's local state was wiped: its newest epoch is read again from the replay."""
        self._claimed.pop(partition, None)
        self._newest.pop(partition, None)
