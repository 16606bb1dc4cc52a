"""A worker's start-up checks: its web port is free, the broker answers, and the existing topics match the plan.

A worker on a Topic-1 with fewer partitions than DQHASH_PARTITIONS would run for hours pairing nothing across
partitions, so it refuses to start instead, with the message ``dqhash topics create`` gives. A broker that is
not up yet (a compose stack starting) is waited for, with one line per interval naming DQHASH_BROKER, rather
than a traceback per reconnect.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import time
from collections.abc import Awaitable, Callable

from dqhash.kafka.topics import verify_topics
from dqhash.settings import Settings

log = logging.getLogger("dqhash.preflight")

#: seconds between two "still waiting for the broker" lines
REPORT_EVERY_S = 10.0
#: seconds between two attempts
RETRY_S = 2.0


async def wait_for_topics(
    settings: Settings,
    verify: Callable[[Settings], Awaitable[list[str]]] = verify_topics,
    retry_s: float = RETRY_S,
    report_every_s: float = REPORT_EVERY_S,
) -> list[str]:
    """What is wrong with the existing topics, once the broker answers (waits for it as long as it takes)."""
    started = time.monotonic()
    reported_at: float | None = None
    attempts = 0
    while True:
        try:
            wrong = await verify(settings)
        except Exception as exc:
            attempts += 1
            now = time.monotonic()
            if reported_at is None or now - reported_at >= report_every_s:
                reported_at = now
                log.warning(
                    "cannot reach the broker at %s (%s), %d attempt(s) in %.0f s; is DQHASH_BROKER right, and is the "
                    "broker up? Waiting for it.",
                    settings.broker,
                    type(exc).__name__,
                    attempts,
                    now - started,
                )
            await asyncio.sleep(retry_s)
            continue
        if attempts:
            log.info("the broker at %s answers after %d failed attempt(s)", settings.broker, attempts)
        return wrong


def web_port_problem(settings: Settings) -> str | None:
    """Why the worker's web server could not listen on DQHASH_WEB_BIND:DQHASH_WEB_PORT, or None if it can."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp listens: a closing socket is no obstacle
    try:
        probe.bind((settings.web_bind, settings.web_port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return (
                f"port {settings.web_port} on {settings.web_bind} is in use (another worker on this host?): set "
                "DQHASH_WEB_PORT to a free port (and DQHASH_WEB_HOST, if other workers reach this one by another name)"
            )
        return f"cannot listen on {settings.web_bind}:{settings.web_port} ({exc.strerror}): check DQHASH_WEB_BIND"
    finally:
        probe.close()
    return None
