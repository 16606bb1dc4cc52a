"""The slot's confirmed position against the probes: the time before which every committed change is in Kafka."""

import pytest

from dqhash.core.idle_time import KafkaThrough, LsnError, parse_lsn


def test_an_lsn_reads_as_its_position():
    assert parse_lsn("16/B374D848") == (0x16 << 32) | 0xB374D848 and parse_lsn("0/0") == 0
    for bad in ("16B374D848", "x/1", ""):
        with pytest.raises(LsnError):
            parse_lsn(bad)


def test_a_time_is_confirmed_once_the_slot_has_passed_its_probe_and_never_goes_back():
    kafka = KafkaThrough(kept=3)
    kafka.probe(100, 1_000)
    kafka.probe(200, 2_000)
    assert kafka.confirmed(99) is None
    assert kafka.confirmed(150) == 1_000  # passed the first probe only
    assert kafka.confirmed(150) is None  # nothing new
    kafka.probe(300, 3_000)
    assert kafka.confirmed(1_000) == 3_000 and kafka.through_ms == 3_000
    for i in range(10):  # a stalled slot: only the newest probes are kept
        kafka.probe(1_000 + i, 4_000 + i)
    assert kafka.confirmed(10**9) == 4_009
