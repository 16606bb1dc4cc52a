"""Timestamps as integer epoch milliseconds (UTC).

Everything inside dqhash carries time as ``int`` milliseconds since the Unix
epoch: it is what Cassandra stores (millisecond precision), it compares and
subtracts without time-zone surprises, and it serialises compactly.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from functools import lru_cache

#: Integers outside this range are refused: they are almost always epoch
#: *seconds* or microseconds sent by mistake, which would silently land in 1970
#: or the far future and poison window arithmetic.
MIN_EPOCH_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
MAX_EPOCH_MS = 4_102_444_800_000  # 2100-01-01T00:00:00Z

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class TimestampError(ValueError):
    """A value that cannot be read as a UTC instant; the message says why."""


def parse_timestamp(value: object, bounded: bool = True) -> int:
    """Read an ISO-8601 string with a zone, or integer epoch millis, as UTC ms.

    A naive ISO string (no zone) is refused rather than guessed: the on-prem
    and cloud sides may sit in different zones and a guess would turn into
    false mismatches hours later. ``bounded`` applies the 2000..2100 sanity
    range meant for event times; row values (hashing) may be any instant.
    """
    check = _check_range if bounded else int
    if isinstance(value, bool):
        raise TimestampError("a boolean is not a timestamp")
    if isinstance(value, int):
        return check(value)
    if isinstance(value, float):
        if not value.is_integer():
            raise TimestampError(f"epoch milliseconds must be a whole number, got {value!r}")
        return check(int(value))
    if isinstance(value, str):
        return check(_parse_iso(value))
    raise TimestampError(f"expected ISO-8601 string or epoch milliseconds, got {type(value).__name__}")


def _parse_iso(text: str) -> int:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise TimestampError(f"not an ISO-8601 timestamp: {text[:64]!r}") from None
    if parsed.tzinfo is None:
        raise TimestampError(f"ISO-8601 timestamp has no time zone: {text[:64]!r} (add 'Z' or an offset)")
    return datetime_to_ms(parsed)


def _check_range(ms: int) -> int:
    if not MIN_EPOCH_MS <= ms < MAX_EPOCH_MS:
        raise TimestampError(f"epoch milliseconds {ms} outside 2000..2100 (seconds or microseconds sent by mistake?)")
    return ms


def datetime_to_ms(value: datetime) -> int:
    """UTC epoch milliseconds, flooring sub-millisecond parts; naive means UTC.

    Naive-as-UTC is how cassandra-driver returns ``timestamp`` columns.
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def format_ms(ms: int) -> str:
    """ISO-8601 UTC with milliseconds and a ``Z`` suffix, e.g. ``2024-05-01T12:00:00.250Z``.

    Every audit record formats several timestamps, mostly of the same few seconds: the
    second is formatted once (cached) and the milliseconds appended.
    """
    seconds, millis = divmod(ms, 1000)
    return _format_second(seconds) + _MILLIS[millis]


#: ".000Z" ... ".999Z": a list index is a third of the cost of formatting the milliseconds
_MILLIS = [f".{millis:03d}Z" for millis in range(1000)]


@lru_cache(maxsize=4096)
def _format_second(seconds: int) -> str:
    return (_EPOCH + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S")


def now_ms() -> int:
    """Wall-clock UTC epoch milliseconds."""
    return time.time_ns() // 1_000_000


def lease_clock() -> float:
    """Seconds on a clock that keeps running while the process is stopped or the machine suspended.

    An ownership lease (``dqhash.core.lease``) must age while the worker is frozen; Linux's boot-time
    clock also counts suspended time, which the monotonic clock does not.
    """
    return time.clock_gettime(_LEASE_CLOCK)


_LEASE_CLOCK = getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC)
