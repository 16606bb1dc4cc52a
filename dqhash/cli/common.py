"""What every command shares: exit statuses, loading the settings, and the environment its ``--help`` lists."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from dqhash import settings as settings_module

EXIT_OK, EXIT_BAD_INPUT, EXIT_USAGE = 0, 1, 2
#: ``dqhash report``: a gate breached or the report incomplete; no gate given (nothing was checked)
EXIT_BREACHED, EXIT_NO_GATES = 3, 4

#: the variables a command that talks to Kafka reads, as patterns over the settings' declarations
KAFKA = ("DQHASH_BROKER", "DQHASH_KAFKA_*")
#: ... that hashes rows by the shared spec
HASHING = ("DQHASH_HASH_*", "DQHASH_PARTITIONS")
#: ... that connects to Cassandra
CASSANDRA = (
    "DQHASH_CASSANDRA_CONTACT_POINTS",
    "DQHASH_CASSANDRA_PORT",
    "DQHASH_CASSANDRA_LOCAL_DC",
    "DQHASH_CASSANDRA_USERNAME",
    "DQHASH_CASSANDRA_PASSWORD",
    "DQHASH_CASSANDRA_TLS_CA",
)
#: ... that reads the cloud table
CLOUD_STORE = (
    "DQHASH_CLOUD_STORE",
    "DQHASH_SQLITE_*",
    *CASSANDRA,
    "DQHASH_CASSANDRA_KEYSPACE",
    "DQHASH_CASSANDRA_TABLE",
    "DQHASH_CASSANDRA_CONSISTENCY",
    "DQHASH_CASSANDRA_TIMEOUT_SECONDS",
    "DQHASH_CASSANDRA_RETRIES",
)


def command(
    commands: Any, name: str, help: str, reads: Sequence[str] = (), description: str | None = None
) -> argparse.ArgumentParser:
    """A subcommand whose ``--help`` ends with the environment variables it reads (from the settings' declarations)."""
    return commands.add_parser(
        name,
        help=help,
        description=description or help,
        epilog=settings_module.environment_help(reads) if reads else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def load_settings(command_name: str) -> settings_module.Settings | None:
    """The settings, or None after printing which variable is wrong (the command then exits with EXIT_USAGE)."""
    try:
        return settings_module.load()
    except settings_module.SettingsError as exc:
        print(f"dqhash {command_name}: {exc}", file=sys.stderr)
        return None


T = TypeVar("T")


class Interrupted(Exception):
    """SIGINT or SIGTERM stopped a command's event loop; it exits 128 + the signal's number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


def run_until_signal(work: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(work)``, where SIGINT and SIGTERM alike cancel the work in the event loop.

    A signal then lands at an ``await``, where the work's ``finally`` and ``except`` clauses run (a final
    status published, a client closed), never inside a callback a database library made into Python code.
    Raises :class:`Interrupted` once the work has unwound.
    """

    async def main() -> T:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        received: list[int] = []

        def stop(signum: int) -> None:
            received.append(signum)
            task.cancel()

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop, signum)
        try:
            return await work
        except asyncio.CancelledError:
            if received:
                raise Interrupted(received[0]) from None
            raise
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)

    return asyncio.run(main())


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def period_seconds(text: str, command_name: str, option: str = "--since") -> int | None:
    """A duration such as 90m, 24h or 7d, in seconds; None after saying what is wrong with it."""
    cleaned = text.strip().lower()
    if len(cleaned) < 2 or cleaned[-1] not in _UNITS or not cleaned[:-1].isdigit() or int(cleaned[:-1]) <= 0:
        fail(command_name, f"{option} {text!r}: expected a duration such as 90m, 24h or 7d", EXIT_USAGE)
        return None
    return int(cleaned[:-1]) * _UNITS[cleaned[-1]]


def split(text: str | None) -> list[str] | None:
    """A comma-separated option as a list (None when the option was not given)."""
    if text is None:
        return None
    return [part.strip() for part in text.split(",")]


def fail(command_name: str, message: str, status: int = EXIT_BAD_INPUT) -> int:
    print(f"dqhash {command_name}: {message}", file=sys.stderr)
    return status


def cassandra_unreachable(settings: Any, exc: Exception) -> str:
    """Why a command could not reach Cassandra, and the settings to check."""
    return (
        f"cannot reach Cassandra at {','.join(settings.cassandra_contact_points)}:{settings.cassandra_port} "
        f"({type(exc).__name__}); check DQHASH_CASSANDRA_CONTACT_POINTS, DQHASH_CASSANDRA_PORT and the "
        "DQHASH_CASSANDRA_USERNAME / PASSWORD / TLS settings"
    )
