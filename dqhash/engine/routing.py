"""Routing: a record is applied in its PK's partition; one read elsewhere is forwarded there once.

Topic-1 keys need not be the PK (and producers elsewhere may partition differently), so a record found
in another partition than its PK's goes through the re-key topic, with headers naming its side and where
it was read (``side:partition:offset``): a redelivered original forwarded again is recognised by that
origin and counted once.
"""

from __future__ import annotations

from collections.abc import Sequence

from dqhash.core.partitioning import partition_for
from dqhash.core.records import Out
from dqhash.core.tuples import build

ONPREM, CLOUD = "onprem", "cloud"
_SIDES = {ONPREM: ONPREM.encode(), CLOUD: CLOUD.encode()}
#: Header naming the side of a record forwarded through the re-key topic.
SIDE_HEADER = "dq.side"
#: Header naming where a forwarded record was read: "side:partition:offset" of its input topic.
ORIGIN_HEADER = "dq.origin"


class Routing:
    def __init__(self, partitions: int, rekey_topic: str) -> None:
        self.partitions, self.rekey_topic = partitions, rekey_topic

    def home(self, pk: str) -> int:
        return partition_for(pk, self.partitions)

    def forward(
        self,
        side: str,
        pk: str,
        home: int,
        partition: int,
        offset: int,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes]] | None,
    ) -> Out:
        """The record as sent to its PK's partition through the re-key topic."""
        forwarded = [(SIDE_HEADER, _SIDES[side]), (ORIGIN_HEADER, f"{side}:{partition}:{offset}".encode())]
        if headers:
            forwarded += [(k, v) for k, v in headers if k not in (SIDE_HEADER, ORIGIN_HEADER)]
        return build(Out, (self.rekey_topic, pk.encode(), value, forwarded, home))


def forwarded_from(headers: Sequence[tuple[str, bytes]] | None) -> tuple[str, str | None]:
    """(side, origin) of a record read from the re-key topic; side is "" when the header is missing."""
    found = dict(headers or ())
    return found.get(SIDE_HEADER, b"").decode(), found.get(ORIGIN_HEADER, b"").decode() or None
